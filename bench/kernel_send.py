#!/usr/bin/env python3
"""Sends UDP packets through the firewall namespace and times them (bench/kernel.sh).

usage: kernel_send.py SRC DST DPORT COUNT MODE
  MODE  fixed: one 5-tuple (after the first packet, conntrack's established path);
        vary:  a new source port for every packet (each a new connection, looked up in the
               ruleset's per-device maps).

The packets are built once (IPv4 + UDP, RFC 791 / RFC 768, UDP checksum 0: none) and sent on
a raw socket with IP_HDRINCL, so the sender's own work is the same in both modes. Prints
`packets=N wall_ns_per_packet=X sys_ns_per_packet=Y`: the wall time and the system CPU time
of the sending loop, per packet. On veth the forwarding through the next namespace runs in
the softirq raised by the send, on the sending CPU, and is part of both.
"""
import os
import socket
import struct
import sys
import time


def packet(src, dst, sport, dport):
    payload = b"portolan-bench"
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + udp


def main():
    src, dst, dport, count, mode = sys.argv[1:6]
    dport, count = int(dport), int(count)
    ports = range(1024, 1024 + 60000) if mode == "vary" else [40000]
    packets = [packet(src, dst, p, dport) for p in ports]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    to = (dst, 0)
    n = len(packets)
    send = s.sendto
    t0, c0 = time.perf_counter_ns(), os.times()
    for i in range(count):
        try:
            send(packets[i % n], to)
        except OSError:
            # ENOBUFS when a queue is full: the packet is lost, counted as sent.
            pass
    t1, c1 = time.perf_counter_ns(), os.times()
    print(f"packets={count} wall_ns_per_packet={(t1 - t0) / count:.0f} "
          f"sys_ns_per_packet={(c1.system - c0.system) * 1e9 / count:.0f}")


main()
