#!/usr/bin/env python3
"""Prints `LINES RULES ELEMENTS` of an nftables file: rules are the statements inside chain
blocks; elements are the entries of sets and maps (a comma-separated list per block)."""
import re
import sys

lines = rules = elements = 0
in_chain = in_elems = False
for line in open(sys.argv[1]):
    lines += 1
    s = line.strip()
    if re.match(r"^chain \S+ \{$", s):
        in_chain = True
        continue
    if in_chain:
        if s == "}":
            in_chain = False
        elif s and not s.startswith("type ") and not s.startswith("#"):
            rules += 1
        continue
    if s.startswith("elements = {") or in_elems:
        body = s.split("{", 1)[1] if s.startswith("elements = {") else s
        in_elems = not body.rstrip().endswith("}")
        elements += len([e for e in body.rstrip("} ").split(",") if e.strip()])
    elif s.startswith("add element "):
        elements += s.count(",") + 1
print(lines, rules, elements)
