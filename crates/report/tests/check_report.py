#!/usr/bin/env python3
"""Checks a `portolan report` page with real parsers from Python's standard library:
html.parser for the page, xml.etree for the diagram (an SVG must be well-formed XML).

usage: check_report.py PAGE.html EXPECT.json

EXPECT.json, written by the test from sources other than the report code (the IR that
`portolan compile --target ir` writes, the flows `portolan show --format json` lists, colours
stated by hand for the overlays given):
  {"flows": [{"anchor": "flow-G/F", "group": "G", "provenance": "P/F",
              "citations": ["doc: reference", ...]}, ...],
   "colors": {"flow-G/F": "green" | "red" | "grey" | "none", ...},
   "evidence": {"flow-G/F": ["text the row must show", ...], ...},
   "group_notes": {"G": ["text the group's section must show", ...]}}

Prints one line per failure and exits 1, else prints "ok: N flows checked" and exits 0.
"""
import json
import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = {}
        self.rows = {}  # anchor -> {"attrs":..., "text": str, "cites": [(doc, text)]}
        self.sections = {}  # group -> text
        self.links = []  # (tag, attr, value)
        self.stack = []  # open tags: (tag, row anchor or None, section or None)
        self.row = None
        self.section = None
        self.svg_count = 0
        self.scripts_with_src = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids[a["id"]] = self.ids.get(a["id"], 0) + 1
        for k in ("src", "href", "action", "poster", "data", "xlink:href"):
            if k in a:
                self.links.append((tag, k, a[k]))
        if tag == "link" or (tag == "script" and "src" in a):
            self.scripts_with_src += 1
        if tag == "svg":
            self.svg_count += 1
        if tag == "section" and "group" in a.get("class", ""):
            self.section = a.get("data-device")
            self.sections[self.section] = ""
        if tag == "tr" and "flow" in a.get("class", "").split():
            self.row = a["id"]
            self.rows[self.row] = {"attrs": a, "text": "", "cites": []}
        if tag == "span" and "cite" in a.get("class", "").split() and self.row:
            self.rows[self.row]["cites"].append((a.get("data-doc", ""), a.get("data-ref", "")))

    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
        if tag == "section":
            self.section = None

    def handle_data(self, data):
        if self.row:
            self.rows[self.row]["text"] += data
        if self.section:
            self.sections[self.section] += data


def main():
    page_path, expect_path = sys.argv[1], sys.argv[2]
    text = open(page_path, encoding="utf-8").read()
    expect = json.load(open(expect_path, encoding="utf-8"))
    p = Page()
    p.feed(text)
    p.close()
    bad = []

    # Every flow of every group, with its provenance and citations.
    for f in expect["flows"]:
        row = p.rows.get(f["anchor"])
        if row is None:
            bad.append(f"missing flow row #{f['anchor']}")
            continue
        if row["attrs"].get("data-device") != f["group"]:
            bad.append(f"#{f['anchor']}: data-device {row['attrs'].get('data-device')!r}, want {f['group']!r}")
        if f["provenance"] not in row["text"]:
            bad.append(f"#{f['anchor']}: provenance {f['provenance']} not shown")
        shown = {f"{doc}: {ref}" for doc, ref in row["cites"]}
        for c in f["citations"]:
            if c not in shown:
                bad.append(f"#{f['anchor']}: citation {c!r} not shown (shown: {sorted(shown)})")
            elif c.split(": ", 1)[1] not in row["text"]:
                bad.append(f"#{f['anchor']}: citation {c!r} not in the row's visible text")
    extra = set(p.rows) - {f["anchor"] for f in expect["flows"]}
    for a in sorted(extra):
        bad.append(f"a flow row the site does not have: #{a}")
    for i, n in p.ids.items():
        if n > 1:
            bad.append(f"id {i!r} used {n} times")

    # Overlay colours and evidence.
    for anchor, color in expect.get("colors", {}).items():
        row = p.rows.get(anchor)
        got = row["attrs"].get("data-status") if row else None
        if got != color:
            bad.append(f"#{anchor}: status {got!r}, want {color!r}")
    for anchor, texts in expect.get("evidence", {}).items():
        row = p.rows.get(anchor)
        for t in texts:
            if row is None or t not in row["text"]:
                bad.append(f"#{anchor}: evidence {t!r} not shown")
    for group, texts in expect.get("group_notes", {}).items():
        for t in texts:
            if t not in p.sections.get(group, ""):
                bad.append(f"group {group}: {t!r} not shown")

    # Nothing outside the page: no external resource, no link out of it.
    for tag, attr, value in p.links:
        v = value.strip().lower()
        if not v.startswith("#"):
            bad.append(f"<{tag} {attr}={value!r}>: only in-page links (#...) are allowed")
    if p.scripts_with_src:
        bad.append("external script or stylesheet")
    for m in re.finditer(r"url\(\s*['\"]?([^)'\"]*)", text):
        if not m.group(1).startswith("#"):
            bad.append(f"CSS url({m.group(1)}) points outside the page")
    if re.search(r"@import", text):
        bad.append("CSS @import")

    # The diagram: one SVG, well-formed XML, whose links name anchors on the page.
    if p.svg_count != 1:
        bad.append(f"{p.svg_count} <svg> elements, want 1")
    else:
        svg = text[text.index("<svg"): text.index("</svg>") + len("</svg>")]
        try:
            root = ET.fromstring(svg)
            ns = "{http://www.w3.org/2000/svg}"
            if root.tag != ns + "svg":
                bad.append(f"diagram root is {root.tag}")
            for a in root.iter(ns + "a"):
                href = a.get("href", "")
                if not href.startswith("#") or href[1:] not in p.ids:
                    bad.append(f"diagram link {href!r} names no anchor of the page")
            paths = [e for e in root.iter(ns + "path") if "edge" in (e.get("class") or "")]
            if not paths:
                bad.append("diagram has no edges")
        except ET.ParseError as e:
            bad.append(f"diagram is not well-formed XML: {e}")

    for b in bad:
        print(b)
    if bad:
        sys.exit(1)
    print(f"ok: {len(expect['flows'])} flows checked")


if __name__ == "__main__":
    main()
