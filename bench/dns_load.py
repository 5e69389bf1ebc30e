#!/usr/bin/env python3
"""DNS load for bench/enforce.sh: A queries over UDP to one server (port 53 unless given),
names n<I>.SUFFIX (default bench.example; other.example names are m<I>) for I in
[FIRST, FIRST+COUNT), each sent from one of the source addresses in turn, with at most
DEPTH queries outstanding. Prints one JSON object: answers, errors (timeouts, wrong replies,
rcode other than NOERROR), answers/s and the latency of each answer (send to receive) at p50,
p90, p99 and max, in microseconds. DEPTH 1 measures latency alone; more measures throughput.

Usage: dns_load.py SERVER[:PORT] FIRST COUNT DEPTH SRC[,SRC...] [SUFFIX]
"""
import json
import os
import select
import socket
import struct
import sys
import time


def query(qid, name):
    head = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return head + q + struct.pack(">HH", 1, 1)


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    server, first, count, depth, srcs = sys.argv[1:6]
    suffix = sys.argv[6] if len(sys.argv) > 6 else "bench.example"
    lead = "m" if suffix == "other.example" else "n"
    host, _, port = server.partition(":")
    port = int(port or 53)
    first, count, depth = int(first), int(count), int(depth)
    socks = []
    for s in srcs.split(","):
        k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        k.bind((s, 0))
        k.connect((host, port))
        k.setblocking(False)
        socks.append(k)
    pending = {}  # (sock index, qid) -> (sent at, name)
    lat = []
    errors = 0
    rcodes = {}
    sent = 0
    qid = int.from_bytes(os.urandom(2), "big")
    start = time.monotonic()
    deadline = start + 120
    while (sent < count or pending) and time.monotonic() < deadline:
        while sent < count and len(pending) < depth:
            i = sent % len(socks)
            qid = (qid + 1) & 0xFFFF
            name = "%s%d.%s" % (lead, first + sent, suffix)
            pending[(i, qid)] = (time.monotonic(), name)
            socks[i].send(query(qid, name))
            sent += 1
        r, _, _ = select.select(socks, [], [], 0.05)
        now = time.monotonic()
        for k in r:
            i = socks.index(k)
            while True:
                try:
                    data = k.recv(4096)
                except BlockingIOError:
                    break
                got = time.monotonic()
                if len(data) < 12:
                    continue
                rid, flags = struct.unpack(">HH", data[:4])
                p = pending.pop((i, rid), None)
                if p is None:
                    continue
                if flags & 0x000F != 0 or struct.unpack(">H", data[6:8])[0] == 0:
                    errors += 1
                    rcodes[flags & 0x000F] = rcodes.get(flags & 0x000F, 0) + 1
                else:
                    lat.append((got - p[0]) * 1e6)
        for key, (t, _) in list(pending.items()):
            if now - t > 3.0:
                del pending[key]
                errors += 1
    took = time.monotonic() - start
    errors += len(pending)
    print(
        json.dumps(
            {
                "answers": len(lat),
                "errors": errors,
                "error_rcodes": rcodes,
                "seconds": round(took, 3),
                "answers_per_s": round(len(lat) / took, 1) if took > 0 else None,
                "p50_us": pct(lat, 50),
                "p90_us": pct(lat, 90),
                "p99_us": pct(lat, 99),
                "max_us": max(lat) if lat else None,
            }
        )
    )


if __name__ == "__main__":
    main()
