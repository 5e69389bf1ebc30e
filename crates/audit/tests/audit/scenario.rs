//! A test site and the traffic of its device, as IP packets with times; the tests wrap them in
//! every link type and file format. Addresses are private or documentation ranges: the packets
//! only ever exist inside capture files the tests write.

use std::net::IpAddr;

use portolan_audit::time::NANOS;
use portolan_audit::write::{self, dns_answer, L4};
use portolan_audit::{Collector, Observed};
use portolan_model::ir::Policy;
use portolan_model::validate::profile_text;
use portolan_model::Profile;

pub const PROFILE: &str = r#"portolan: 1
id: test-sensor
vendor: Test
product: Sensor
sources:
  - {id: doc, title: Test sensor network page, url: "https://example.com/sensor"}
endpoints:
  - {id: cloud, hosts: [api.vendor.example]}
  - {id: updates, domains: ["*.updates.example"]}
  - {id: dns, service: dns}
  - {id: ntp, service: ntp}
  - {id: vpn, role: true}
  - {id: mgmt, role: true}
flows:
  - {id: https, from: device, to: cloud, initiation: device, protocol: tcp, ports: 443, source: {doc: doc, ref: r1}}
  - {id: update, from: device, to: updates, initiation: device, protocol: tcp, ports: [80, 443], source: {doc: doc, ref: r2}}
  - {id: dns, from: device, to: dns, initiation: device, protocol: udp, ports: 53, source: {doc: doc, ref: r3}}
  - {id: ntp, from: device, to: ntp, initiation: device, protocol: udp, ports: 123, source: {doc: doc, ref: r4}}
  - {id: ike, from: device, to: vpn, initiation: device, protocol: udp, ports: [500, 4500], source: {doc: doc, ref: r5}}
  - {id: esp, from: device, to: vpn, initiation: either, protocol: esp, source: {doc: doc, ref: r6}}
  - {id: ping, from: device, to: vpn, initiation: device, protocol: icmp, icmp_type: echo-request, source: {doc: doc, ref: r7}}
  - {id: ssh, from: mgmt, to: device, initiation: peer, protocol: tcp, ports: 22, source: {doc: doc, ref: r8}}
  - {id: mqtt, from: device, to: cloud, initiation: device, protocol: tcp, ports: 8883, source: {doc: doc, ref: r9}}
listens:
  - {protocol: tcp, ports: 22, flow: ssh}
"#;

pub const SITE: &str = r#"portolan: 1
site: test-site
zones:
  - {id: field, interface: lan0, networks: [10.20.0.0/24, "fd00:20::/64"]}
  - {id: mgmt, interface: mgmt0, networks: [10.99.0.0/24]}
  - {id: wan, interface: wan0}
services:
  dns: [10.20.0.1, "fd00:20::1"]
  ntp: [10.99.0.123]
devices:
  - id: sensor
    profile: test-sensor
    zone: field
    addresses: [10.20.0.10, "fd00:20::10"]
    bind:
      vpn: [198.51.100.10]
      mgmt: [zone:mgmt]
"#;

pub fn profile(text: &str) -> Profile {
    match profile_text("test.yaml", text) {
        Ok(l) => l.value,
        Err(d) => panic!("profile does not validate: {d:?}"),
    }
}

pub fn compile(site: &str, profiles: Vec<Profile>) -> Policy {
    // Profiles by id: the test profile, plus any given.
    profiles
        .into_iter()
        .fold(portolan_testkit::Profiles::none(), |all, p| all.with(p))
        .compile("site.yaml", site)
}

pub fn policy() -> Policy {
    compile(SITE, vec![profile(PROFILE)])
}

pub fn a(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub const T0: i64 = 1_800_000_000 * NANOS;

/// Milliseconds after T0.
pub fn ms(n: i64) -> i64 {
    T0 + n * 1_000_000
}

/// IP packets with their times.
#[derive(Default, Clone)]
pub struct Traffic {
    pub packets: Vec<(i64, Vec<u8>)>,
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const PSH: u8 = 0x08;
pub const FIN: u8 = 0x01;

impl Traffic {
    pub fn ip(&mut self, t: i64, src: &str, dst: &str, l4: L4<'_>) -> &mut Self {
        self.packets.push((t, write::ip(a(src), a(dst), &l4)));
        self
    }

    /// A whole TCP connection: handshake, one request and answer, close; 8 packets.
    pub fn tcp(&mut self, t: i64, c: (&str, u16), s: (&str, u16)) -> &mut Self {
        let seq: [(bool, u8, &[u8]); 8] = [
            (true, SYN, b""),
            (false, SYN | ACK, b""),
            (true, ACK, b""),
            (true, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n"),
            (false, PSH | ACK, b"HTTP/1.1 204 No Content\r\n\r\n"),
            (true, FIN | ACK, b""),
            (false, FIN | ACK, b""),
            (true, ACK, b""),
        ];
        for (i, (fwd, flags, payload)) in seq.into_iter().enumerate() {
            let (src, sp, dst, dp) = if fwd {
                (c.0, c.1, s.0, s.1)
            } else {
                (s.0, s.1, c.0, c.1)
            };
            self.ip(
                t + i as i64 * 1_000_000,
                src,
                dst,
                L4::Tcp {
                    sport: sp,
                    dport: dp,
                    flags,
                    payload,
                },
            );
        }
        self
    }

    /// A UDP request and its answer.
    pub fn udp(&mut self, t: i64, c: (&str, u16), s: (&str, u16)) -> &mut Self {
        self.ip(
            t,
            c.0,
            s.0,
            L4::Udp {
                sport: c.1,
                dport: s.1,
                payload: b"request",
            },
        );
        self.ip(
            t + 1_000_000,
            s.0,
            c.0,
            L4::Udp {
                sport: s.1,
                dport: c.1,
                payload: b"answer",
            },
        )
    }

    /// A DNS answer from `server` to `client` (port 33000).
    pub fn dns(
        &mut self,
        t: i64,
        (server, client): (&str, &str),
        query: &str,
        cnames: &[(&str, u32)],
        addrs: &[&str],
        ttl: u32,
    ) -> &mut Self {
        let addrs: Vec<IpAddr> = addrs.iter().map(|x| a(x)).collect();
        let wire = dns_answer(7, query, cnames, &addrs, ttl);
        self.ip(
            t,
            client,
            server,
            L4::Udp {
                sport: 33000,
                dport: 53,
                payload: b"q",
            },
        );
        self.ip(
            t + 500_000,
            server,
            client,
            L4::Udp {
                sport: 53,
                dport: 33000,
                payload: &wire,
            },
        )
    }

    pub fn sorted(&self) -> Vec<(i64, Vec<u8>)> {
        let mut p = self.packets.clone();
        p.sort_by_key(|(t, _)| *t);
        p
    }
}

/// The device's conforming traffic: every kind of flow the profile allows, over IPv4 and
/// IPv6, each named peer resolved first.
pub fn conforming() -> Traffic {
    let mut t = Traffic::default();
    let dev = "10.20.0.10";
    t.dns(
        ms(0),
        ("10.20.0.1", dev),
        "api.vendor.example",
        &[],
        &["203.0.113.10"],
        300,
    );
    t.udp(ms(0), (dev, 33001), ("10.20.0.1", 53));
    t.tcp(ms(100), (dev, 40001), ("203.0.113.10", 443));
    t.dns(
        ms(200),
        ("10.20.0.1", dev),
        "dl.updates.example",
        &[("edge.cdn.example", 120)],
        &["203.0.113.20"],
        60,
    );
    t.tcp(ms(300), (dev, 40002), ("203.0.113.20", 80));
    t.udp(ms(400), (dev, 123), ("10.99.0.123", 123));
    t.udp(ms(500), (dev, 500), ("198.51.100.10", 500));
    t.ip(
        ms(600),
        dev,
        "198.51.100.10",
        L4::Esp {
            spi: 0x1001,
            seq: 1,
            payload: &[0; 32],
        },
    );
    t.ip(
        ms(601),
        "198.51.100.10",
        dev,
        L4::Esp {
            spi: 0x2002,
            seq: 1,
            payload: &[0; 32],
        },
    );
    t.ip(
        ms(602),
        dev,
        "198.51.100.10",
        L4::Esp {
            spi: 0x1001,
            seq: 2,
            payload: &[0; 32],
        },
    );
    t.ip(
        ms(700),
        dev,
        "198.51.100.10",
        L4::Icmp {
            ty: 8,
            code: 0,
            id: 77,
            seq: 1,
            payload: b"ping",
        },
    );
    t.ip(
        ms(701),
        "198.51.100.10",
        dev,
        L4::Icmp {
            ty: 0,
            code: 0,
            id: 77,
            seq: 1,
            payload: b"ping",
        },
    );
    t.tcp(ms(800), ("10.99.0.5", 50000), (dev, 22));
    // IPv6: the resolver's AAAA answer, then HTTPS to the named peer.
    let dev6 = "fd00:20::10";
    t.dns(
        ms(900),
        ("fd00:20::1", dev6),
        "api.vendor.example",
        &[],
        &["2001:db8:443::10"],
        300,
    );
    t.tcp(ms(1000), (dev6, 40003), ("2001:db8:443::10", 443));
    // A host that is not a device of the site.
    t.udp(ms(1100), ("10.20.0.99", 33002), ("192.0.2.53", 53));
    t
}

/// Reads one capture from bytes.
pub fn observe(bytes: Vec<u8>) -> (Observed, Option<portolan_audit::InputProblem>) {
    let mut c = Collector::new();
    let s = c
        .read_from(
            std::path::Path::new("test.pcap"),
            Box::new(std::io::Cursor::new(bytes)),
        )
        .expect("a capture")
        .clone();
    (c.finish(), s.problem)
}

/// A pcap of the traffic for a link type.
pub fn pcap(t: &Traffic, link: u32, snap: Option<usize>) -> Vec<u8> {
    let mut w = write::PcapWriter::new(Vec::new(), link, 65535, false).expect("in memory");
    for (ts, ip) in t.sorted() {
        w.packet(ts, &write::frame(link, &ip), snap)
            .expect("in memory");
    }
    w.into_inner()
}
