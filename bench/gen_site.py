#!/usr/bin/env python3
"""Generates a Portolan site with N devices for the benchmark.

usage: gen_site.py DEVICES SHAPE > site.yaml
       gen_site.py DEVICES inventory DIR    (writes DIR/site.yaml and DIR/devices.csv)
  SHAPE  grouped: groups of 100 devices (the last one smaller), each listing its devices'
                  addresses, spread over 10 regions whose servers the groups bind;
         single:  one device per group (the worst case for per-group structures);
         plain:   one device per group, of the profiles an inventory row can name without
                  bindings (Izuma in mode device with its region, Oscar with a MAC), in YAML;
         inventory: the `plain` devices as rows of a CSV inventory the site names.

Devices are a mix of the catalog profiles (ThingPark LRR in two modes, Izuma, Oscar,
DIMENSION4, WCC Lite), each group in a zone of its own /16 of 10.0.0.0/8.
"""
import sys

REGIONS = 10

D4_FLOWS = """    flows:
      config-server-search: {protocol: udp, ports: 5000}
      boot-config-request: {protocol: udp, ports: 5001}
      boot-file-download: {protocol: tcp, ports: 5002}
      location-registration: {protocol: tcp, ports: 5003}
      location-config-distribution: {protocol: tcp, ports: 5004}
      status-location: {protocol: udp, ports: 5005}
      raw-udp: {ports: 5006}
      remote-ops: {protocol: tcp, ports: 5007}
      event-channel: {protocol: tcp, ports: 5008}
"""


def server(region, host):
    return f"172.16.{region}.{host}"


def profile_block(kind, region):
    s = lambda h: server(region, h)
    if kind == 0:
        return (f"    profile: thingpark-lrr\n    mode: ipsec\n    version: \"2.9\"\n"
                f"    bind:\n      slrc: [{s(10)}]\n      support: [{s(22)}]\n")
    if kind == 1:
        return (f"    profile: thingpark-lrr\n    mode: basics-station\n"
                f"    bind:\n      slrc: [{s(10)}]\n      proxy-http: [{s(80)}]\n")
    if kind == 2:
        return "    profile: izuma-device-management\n    mode: device\n"
    if kind == 3:
        return "    profile: oscar-templog-gateway\n"
    if kind == 4:
        roles = ["configuration-server", "boot-configuration-server", "boot-file-server",
                 "location-configuration-server", "configuration-distribution-server",
                 "location-sink", "dimension4-server", "dimension4-peer"]
        b = "".join(f"      {r}: [{s(40 + i % 3)}]\n" for i, r in enumerate(roles))
        return ("    profile: ubisense-dimension4-sensor\n    mode: static\n    bind:\n" + b
                + D4_FLOWS)
    return (f"    profile: elseta-wcc-lite\n    features: [telemetry, ser2net, snmp]\n"
            f"    params:\n      telemetry_port: 5140\n      ser2net_ports: \"4001-4004\"\n"
            f"    bind:\n      telemetry-server: [{s(50)}]\n      management: [zone:mgmt]\n"
            f"      ser2net-client: [zone:mgmt]\n")


def plain_devices(n):
    """(id, address, profile, mode, params, mac) of each one-device group of `plain`."""
    for d in range(n):
        addr = f"10.{(d >> 16) & 255}.{(d >> 8) & 255}.{d & 255}"
        if d % 2 == 0:
            yield (f"g{d}", addr, "izuma-device-management", "device", "region=us-east-1", "")
        else:
            mac = f"02:00:5e:{(d >> 16) & 255:02x}:{(d >> 8) & 255:02x}:{d & 255:02x}"
            yield (f"g{d}", addr, "oscar-templog-gateway", "", "", mac)


def head(out, name):
    out.write("portolan: 1\n")
    out.write(f"site: {name}\n")
    out.write("zones:\n  - id: field\n    interface: lan0\n    networks: [10.0.0.0/8]\n")
    out.write("  - id: mgmt\n    interface: mgmt0\n    networks: [172.16.0.0/12]\n")
    out.write("  - id: wan\n    interface: wan0\n")
    out.write("services:\n  dns: firewall\n  dhcp: firewall\n  ntp: [172.16.255.123]\n")


def plain(n, out):
    head(out, f"bench-plain-{n}")
    out.write("devices:\n")
    for (i, addr, profile, mode, params, mac) in plain_devices(n):
        out.write(f"  - id: {i}\n    profile: {profile}\n    zone: field\n")
        out.write(f"    addresses: [{addr}]\n")
        if mode:
            out.write(f"    mode: {mode}\n")
        if params:
            k, v = params.split("=")
            out.write(f"    params: {{{k}: {v}}}\n")
        if mac:
            out.write(f"    mac: \"{mac}\"\n")


def inventory(n, folder):
    with open(f"{folder}/site.yaml", "w") as out:
        head(out, f"bench-plain-{n}")
        out.write("inventory:\n  - csv: devices.csv\n")
    with open(f"{folder}/devices.csv", "w") as out:
        out.write("name,address,profile,mode,zone,params,mac\n")
        for (i, addr, profile, mode, params, mac) in plain_devices(n):
            out.write(f"{i},{addr},{profile},{mode},field,{params},{mac}\n")


def main():
    n = int(sys.argv[1])
    shape = sys.argv[2]
    if shape == "plain":
        return plain(n, sys.stdout)
    if shape == "inventory":
        return inventory(n, sys.argv[3])
    size = 100 if shape == "grouped" else 1
    out = sys.stdout
    out.write("portolan: 1\n")
    out.write(f"site: bench-{shape}-{n}\n")
    out.write("zones:\n  - id: field\n    interface: lan0\n    networks: [10.0.0.0/8]\n")
    out.write("  - id: mgmt\n    interface: mgmt0\n    networks: [172.16.0.0/12]\n")
    out.write("  - id: wan\n    interface: wan0\n")
    out.write("services:\n  dns: firewall\n  dhcp: firewall\n  ntp: [172.16.255.123]\n")
    out.write("devices:\n")
    done = 0
    g = 0
    while done < n:
        k = min(size, n - done)
        addrs = []
        for i in range(k):
            d = done + i
            addrs.append(f"10.{(d >> 16) & 255}.{(d >> 8) & 255}.{d & 255}")
        out.write(f"  - id: g{g}\n    zone: field\n")
        out.write("    addresses: [" + ", ".join(addrs) + "]\n")
        out.write(profile_block(g % 6, g % REGIONS))
        done += k
        g += 1


main()
