#!/usr/bin/env python3
"""The naive ruleset for a compiled site: one nftables rule per device, per flow, per
resolved peer address, per port range, in one flat chain — what MUD managers such as osMUD
emit. Reads Portolan's IR (`portolan compile SITE --target ir`) on stdin.

Hostnames are taken as resolving to two addresses each (MUD managers resolve names once, at
compile time); a wildcard domain, which cannot be resolved, counts as one address.
"""
import hashlib
import json
import sys

PROTO = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "icmpv6", 50: "esp", 51: "ah",
         47: "gre"}


def fake(name, i, v6):
    h = hashlib.sha256(f"{name}/{i}".encode()).digest()
    if v6:
        return "2001:db8:ff:%x::%x" % (h[0], h[1] + 1)
    return "203.0.113.%d" % (h[1] % 254 + 1)


def peers(r, v6):
    out = []
    for p in r["peers"]["prefixes"]:
        if (":" in p) == v6:
            out.append(p)
    for n in r["peers"]["names"]:
        out += [fake(n, 0, v6), fake(n, 1, v6)]
    for w in r["peers"]["wildcards"]:
        out.append(fake("*." + w, 0, v6))
    return out


def main():
    ir = json.load(sys.stdin)
    groups = {g["id"]: g for g in ir["groups"]}
    rules = []
    for r in ir["rules"]:
        g = groups[r["group"]]
        number = r["protocol"]["number"]  # the JSON contract's {"name", "number"}
        proto = PROTO.get(number, str(number))
        ports = [f'{p["lo"]}' if p["lo"] == p["hi"] else f'{p["lo"]}-{p["hi"]}'
                 for p in r["ports"]] or [None]
        cm = f'comment "{r["profile"]}/{r["flow"]}"'
        for dev in g["addresses"]:
            v6 = ":" in dev
            ip = "ip6" if v6 else "ip"
            if (number == 1 and v6) or (number == 58 and not v6):
                continue
            l4 = f"meta l4proto {proto}"
            for port in ports:
                dp = f" {proto} dport {port}" if port and proto in ("tcp", "udp", "sctp") else ""
                if r["peers"]["firewall"] and r["initiator"] == "device":
                    rules.append(("input", f"{ip} saddr {dev} {l4}{dp} accept {cm}"))
                for peer in peers(r, v6):
                    if r["initiator"] == "device":
                        m = f"{ip} saddr {dev} {ip} daddr {peer}"
                    else:
                        m = f"{ip} saddr {peer} {ip} daddr {dev}"
                    rules.append(("forward", f"{m} {l4}{dp} accept {cm}"))
    w = sys.stdout.write
    w("table inet naive {\n")
    for chain, hook, policy in (("forward", "forward", "drop"), ("input", "input", "accept")):
        w(f"\tchain {chain} {{\n\t\ttype filter hook {hook} priority filter; policy {policy};\n")
        w("\t\tct state established,related accept\n")
        for c, line in rules:
            if c == chain:
                w(f"\t\t{line}\n")
        w("\t}\n")
    w("}\n")


main()
