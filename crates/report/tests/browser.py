#!/usr/bin/env python3
"""Loads a `portolan report` page in a real headless Chromium and prints what it saw, as JSON.

Chromium is driven through the Chrome DevTools Protocol over `--remote-debugging-pipe` (the
browser reads commands from fd 3 and writes answers and events to fd 4, each message a JSON
text ended by a NUL byte): no port is opened, no WebDriver, no third-party module. Events
recorded while the page loads and runs:
  - Network.requestWillBeSent: every URL the page asked for (the page itself is file://, so
    anything else -- http(s), ws, data fetched from elsewhere -- is an external request);
  - Runtime.consoleAPICalled, Runtime.exceptionThrown, Log.entryAdded: console messages,
    uncaught exceptions and browser-side errors (CSP, failed loads, parse problems).
Then, per width asked for, the viewport is set, the page (re)loaded, its load time read from
the Navigation Timing API (loadEventEnd - startTime) and a full-page screenshot written.
Last, the DOM is read by a script in the page (flows, arrows with their computed geometry,
nodes) and the filter box is exercised by typing into it (Input.insertText, as a user would).

usage: browser.py PAGE.html --shots DIR [--width W ...] [--no-dom] [--filter TEXT ...]
Exit 0 with JSON on stdout; 2 when Chromium cannot be started or does not answer.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

T0 = time.monotonic()

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]

# Read in the page: every flow row, every arrow and node of the diagram with the rectangle the
# browser laid it out in, the SVG's own rectangle, and what the page computed for itself.
DOM_SCRIPT = r"""
(() => {
  const r = (el) => { const b = el.getBoundingClientRect(); return [b.left + scrollX, b.top + scrollY, b.width, b.height]; };
  const svg = document.querySelector("svg");
  const flows = [...document.querySelectorAll("tr.flow")].map((tr) => ({
    id: tr.id,
    status: tr.dataset.status,
    provenance: tr.querySelector("td code").textContent,
    visible: tr.getClientRects().length > 0,
    cites: [...tr.querySelectorAll(".cite")].map((c) => c.textContent),
    marks: [...tr.querySelectorAll(".mark")].map((m) => m.querySelector("b").textContent + ": " + m.className),
  }));
  const edges = [...document.querySelectorAll("svg g.edgeg")].map((g) => ({
    group: g.dataset.group,
    peer: g.dataset.peer,
    title: g.querySelector("title").textContent,
    label: g.querySelector("text").textContent,
    label_box: r(g.querySelector("text")),
    href: g.parentElement.getAttribute("href"),
    status: g.querySelector("path").getAttribute("class"),
    marker_end: g.querySelector("path").getAttribute("marker-end"),
    marker_start: g.querySelector("path").getAttribute("marker-start"),
  }));
  const nodes = [...document.querySelectorAll("svg g.node")].map((g) => ({
    texts: [...g.querySelectorAll("text")].map((t) => t.textContent),
    box: r(g.querySelector("rect")),
    text_boxes: [...g.querySelectorAll("text")].map(r),
  }));
  return JSON.stringify({
    title: document.title,
    svg_box: svg ? r(svg) : null,
    flows, edges, nodes,
    groups: [...document.querySelectorAll("section.group")].map((s) => s.id),
    // The innermost elements reaching past the window's right edge (why a page scrolls sideways).
    too_wide: [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5 && ![...e.children].some((c) => c.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)).slice(0, 5).map((e) => e.tagName.toLowerCase() + "." + e.className + ": " + e.textContent.slice(0, 80)),
    scroll_width: document.documentElement.scrollWidth,
    client_width: document.documentElement.clientWidth,
  });
})()
"""


class Pipe:
    """One CDP connection over the two pipes; events are kept in arrival order."""

    def __init__(self, proc, to_browser, from_browser):
        self.proc = proc
        self.w = to_browser
        self.r = from_browser
        self.buf = b""
        self.next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=30.0):
        # What was asked when, on stderr: a timeout names its step.
        print(f"browser.py: {time.monotonic() - T0:7.2f} s {method}", file=sys.stderr)
        self.next_id += 1
        mid = self.next_id
        m = {"id": mid, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        os.write(self.w, json.dumps(m).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, session, timeout=30.0):
        """Waits for `method` on `session`, keeping every other event."""
        deadline = time.monotonic() + timeout
        for i, e in enumerate(self.events):
            if e["method"] == method and e.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            msg = self._read_message(deadline)
            if msg.get("method") == method and msg.get("sessionId") == session:
                return msg
            if "method" in msg:
                self.events.append(msg)


def start(binary, profile_dir):
    # The browser's fd 3 (commands in) and fd 4 (answers out).
    cmd_r, cmd_w = os.pipe()
    out_r, out_w = os.pipe()

    def child():
        # Move the ends to 3 and 4 through free descriptors, so a pipe already numbered 3 or 4
        # is not closed under itself.
        a, b = os.dup(cmd_r), os.dup(out_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # os.pipe()'s descriptors are not inherited (PEP 446); only the two dup2'd are.
        close_fds=False,
        preexec_fn=child,
    )
    os.close(cmd_r)
    os.close(out_w)
    return Pipe(proc, cmd_w, out_r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--shots", required=True, help="folder for the screenshots")
    ap.add_argument("--width", type=int, action="append", default=[])
    ap.add_argument("--no-dom", action="store_true", help="timings and screenshots only")
    ap.add_argument("--filter", action="append", default=[], help="text typed in the filter box")
    ap.add_argument("--top-only", action="store_true", help="only the first screen's screenshot")
    ap.add_argument("--at", action="append", default=[], help="also a screenshot from this element id down")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"))
    a = ap.parse_args()
    widths = a.width or [1366, 800]
    binary = shutil.which(a.chromium)
    if not binary:
        print(f"browser.py: {a.chromium} not found (scripts/setup.sh installs chromium)", file=sys.stderr)
        return 2
    page = os.path.abspath(a.page)
    url = "file://" + page
    os.makedirs(a.shots, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="pl-chromium-")
    b = start(binary, profile)
    out = {"url": url, "chromium": None, "loads": [], "screenshots": []}
    try:
        out["chromium"] = b.send("Browser.getVersion")["product"]
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.send(f"{domain}.enable", session=s)
        for w in widths:
            b.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": w, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=s,
            )
            t0 = time.monotonic()
            b.send("Page.navigate", {"url": url}, session=s)
            b.wait_event("Page.loadEventFired", s, timeout=60)
            wall = time.monotonic() - t0
            timing = json.loads(
                b.send(
                    "Runtime.evaluate",
                    {
                        "expression": "JSON.stringify((() => { const n = performance.getEntriesByType('navigation')[0]; return {load_ms: n.loadEventEnd - n.startTime, dom_ms: n.domContentLoadedEventEnd - n.startTime}; })())",
                        "returnByValue": True,
                    },
                    session=s,
                )["result"]["value"]
            )
            # Layout settled: the full page's height, then one screenshot of all of it (up to
            # 16,000 px; not with --top-only, for big pages).
            m = b.send("Page.getLayoutMetrics", session=s)
            h = int(min(m["cssContentSize"]["height"], 16000))
            path = os.path.join(a.shots, f"{os.path.splitext(os.path.basename(page))[0]}-{w}.png")
            shot = None if a.top_only else b.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True,
                 "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}},
                session=s,
                timeout=120,
            )
            if shot:
                with open(path, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
                out["screenshots"].append(path)
            # And the first screen alone, what a reader sees on opening the page.
            top = b.send(
                "Page.captureScreenshot",
                {"format": "png", "clip": {"x": 0, "y": 0, "width": w, "height": min(h, 900), "scale": 1}},
                session=s,
            )
            first = path[: -len(".png")] + "-top.png"
            with open(first, "wb") as f:
                f.write(base64.b64decode(top["data"]))
            out["screenshots"].append(first)
            out["loads"].append({"width": w, "wall_s": round(wall, 3), **timing,
                                 "content_width": m["cssContentSize"]["width"], "content_height": h})
        # A screen's worth from an element down, by id (the last width): `--at group-wcc-lite`.
        for anchor in a.at:
            y = b.send("Runtime.evaluate", {"expression": f"document.getElementById({json.dumps(anchor)}).getBoundingClientRect().top + scrollY", "returnByValue": True}, session=s)["result"]["value"]
            shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {"x": 0, "y": y, "width": widths[-1], "height": 900, "scale": 1}}, session=s)
            path = os.path.join(a.shots, f"{os.path.splitext(os.path.basename(page))[0]}-{anchor.replace('/', '_')}.png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            out["screenshots"].append(path)
        if not a.no_dom:
            v = b.send("Runtime.evaluate", {"expression": DOM_SCRIPT, "returnByValue": True}, session=s)
            if "exceptionDetails" in v:
                raise RuntimeError(f"DOM script: {v['exceptionDetails']}")
            out["dom"] = json.loads(v["result"]["value"])
            out["filters"] = {}
            for text in a.filter:
                b.send("Runtime.evaluate", {"expression": "document.getElementById('q').focus()"}, session=s)
                b.send("Input.insertText", {"text": text}, session=s)
                shown = b.send(
                    "Runtime.evaluate",
                    {"expression": "JSON.stringify({rows: [...document.querySelectorAll('tr.flow')].filter(t => t.getClientRects().length > 0).map(t => t.id), count: document.getElementById('shown').textContent})", "returnByValue": True},
                    session=s,
                )
                out["filters"][text] = json.loads(shown["result"]["value"])
                # Clear the box for the next one, as a user would (select all, delete).
                b.send("Runtime.evaluate", {"expression": "document.getElementById('q').select()"}, session=s)
                b.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46}, session=s)
                b.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46}, session=s)
        # Events that arrived after the last command are read with one more round trip.
        b.send("Runtime.evaluate", {"expression": "1"}, session=s)
        requests, console = [], []
        for e in b.events:
            p = e.get("params", {})
            if e["method"] == "Network.requestWillBeSent":
                requests.append(p["request"]["url"])
            elif e["method"] == "Runtime.consoleAPICalled":
                console.append({"kind": "console." + p["type"],
                                "text": " ".join(str(x.get("value", x.get("description", ""))) for x in p.get("args", []))})
            elif e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                console.append({"kind": "exception", "text": d.get("exception", {}).get("description", d.get("text", ""))})
            elif e["method"] == "Log.entryAdded":
                console.append({"kind": "log." + p["entry"]["level"], "text": p["entry"]["text"], "url": p["entry"].get("url", "")})
        out["requests"] = requests
        out["console"] = console
        try:
            b.send("Browser.close", timeout=10)
        except (EOFError, TimeoutError, RuntimeError):
            pass
    finally:
        try:
            b.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            b.proc.kill()
            b.proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (EOFError, TimeoutError) as e:
        print(f"browser.py: {e}", file=sys.stderr)
        sys.exit(2)
