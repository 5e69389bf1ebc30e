//! The packets of the differential test: address pools of both families, the firewall
//! namespace's routing as the static side must know it, new packets and reply pairs.

use std::net::IpAddr;

/// splitmix64: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Address pools of one family. No source is a destination, so a new packet is never the
/// reply of another.
pub struct Pools {
    pub saddrs: &'static [&'static str],
    pub daddrs: &'static [&'static str],
    pub local: &'static str,
    pub prefixes: &'static [&'static str],
    pub ranges: &'static [(&'static str, &'static str)],
}

pub const V4: Pools = Pools {
    saddrs: &[
        "10.1.0.5",
        "10.1.3.7",
        "10.2.0.9",
        "10.3.1.1",
        "10.3.1.200",
        "10.4.0.17",
        "172.16.5.5",
        "192.168.50.3",
    ],
    daddrs: &["10.1.0.7", "10.1.200.1", "10.2.0.1", "10.2.7.7", "10.1.0.6"],
    local: "10.9.0.1",
    prefixes: &[
        "10.1.0.0/16",
        "10.1.0.0/24",
        "10.2.0.0/16",
        "10.3.1.0/24",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "10.9.0.1/32",
        "10.1.0.4/30",
    ],
    ranges: &[
        ("10.1.0.0", "10.1.3.255"),
        ("10.2.0.5", "10.3.1.100"),
        ("10.3.1.150", "10.4.255.255"),
    ],
};

pub const V6: Pools = Pools {
    saddrs: &[
        "2001:db8:1::5",
        "2001:db8:2::9",
        "2001:db8:3::1",
        "2001:db8:3:1::200",
        "2001:db8:4::17",
        "2001:db8:4:5::5",
    ],
    daddrs: &[
        "2001:db8:1::7",
        "2001:db8:1:200::1",
        "2001:db8:2::1",
        "2001:db8:2:7::7",
    ],
    local: "2001:db8:9::1",
    prefixes: &[
        "2001:db8:1::/48",
        "2001:db8:1::/64",
        "2001:db8:2::/48",
        "2001:db8:3::/48",
        "2001:db8::/32",
        "2001:db8:9::1/128",
        "2001:db8:3:1::/64",
        "2001:db8:4::/47",
    ],
    ranges: &[
        ("2001:db8:1::", "2001:db8:1:3::ffff"),
        ("2001:db8:2::5", "2001:db8:3:1::100"),
        ("2001:db8:3:1::150", "2001:db8:4:ffff::ffff"),
    ],
};

pub const PORTS: [u16; 8] = [22, 53, 80, 443, 1024, 4321, 5000, 40000];
pub const PORT_RANGES: [(u16, u16); 4] = [(20, 80), (443, 1024), (1025, 65535), (50, 60)];
/// Reply tuples take their source port or echo id from here, and nothing else does.
pub const REPLY_BASE: u16 = 30000;
pub const REPLY_SPAN: u16 = 10000;

pub fn pools(v6: bool) -> &'static Pools {
    if v6 {
        &V6
    } else {
        &V4
    }
}

/// The interface `fw` routes `a` out of (its routing table, set up in [`setup`]).
pub fn route(a: IpAddr) -> &'static str {
    match a {
        IpAddr::V4(v) => match v.octets() {
            [10, 1, ..] => "b0",
            [10, 2, ..] => "b1",
            [10, 3, ..] | [172, 16..=31, ..] => "a0",
            _ => "a1",
        },
        IpAddr::V6(v) => match v.segments()[2] {
            1 => "b0",
            2 => "b1",
            3 => "a0",
            _ => "a1",
        },
    }
}

#[derive(Clone, Debug)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// 6 tcp, 17 udp, 1/58 icmp echo, 50 esp
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// ICMP type: echo request (8/128) or reply (0/129).
    pub icmp_type: u8,
    pub iif: &'static str,
    /// A reply to an earlier packet (ct state established), sent from `sink`.
    pub reply: bool,
}

impl Packet {
    pub fn v6(&self) -> bool {
        self.src.is_ipv6()
    }
    pub fn input(&self) -> bool {
        self.dst.to_string() == pools(self.v6()).local
    }
    pub fn oif(&self) -> &'static str {
        if self.input() {
            ""
        } else {
            route(self.dst)
        }
    }
}

pub fn addr(s: &str) -> IpAddr {
    s.parse().expect("pool address")
}

/// A new packet (its source port never in the replies' range).
pub fn new_packet(r: &mut Rng, v6: bool) -> Packet {
    let p = pools(v6);
    let dst = if r.chance(25) {
        p.local
    } else {
        r.pick(p.daddrs)
    };
    let echo = if v6 { 58 } else { 1 };
    let proto = r.pick(&[6u8, 6, 17, 17, echo, 50]);
    let port = |r: &mut Rng| {
        if r.chance(70) {
            r.pick(&PORTS)
        } else {
            let x = 1 + r.below(65535) as u16;
            if (REPLY_BASE..REPLY_BASE + REPLY_SPAN).contains(&x) {
                x - REPLY_BASE
            } else {
                x
            }
        }
    };
    Packet {
        src: addr(r.pick(p.saddrs)),
        dst: addr(dst),
        proto,
        sport: port(r),
        dport: port(r),
        icmp_type: if v6 { 128 } else { 8 },
        iif: r.pick(&["a0", "a1"]),
        reply: false,
    }
}

/// A forwarded UDP datagram or echo request with a tuple of its own (`n` is unique in the
/// run), and the reply to it.
pub fn reply_pair(r: &mut Rng, v6: bool, n: u16) -> (Packet, Packet) {
    let p = pools(v6);
    let echo = if v6 { 58 } else { 1 };
    let proto = r.pick(&[17u8, 17, echo]);
    // Sources routed back out of a0/a1: a reply that would leave by the interface it came
    // in on (a hairpin) is left out, the forwarding code and not the ruleset may refuse it.
    let outside: Vec<&str> = p
        .saddrs
        .iter()
        .copied()
        .filter(|a| route(addr(a)).starts_with('a'))
        .collect();
    let orig = Packet {
        src: addr(r.pick(&outside)),
        dst: addr(r.pick(p.daddrs)),
        proto,
        sport: REPLY_BASE + n,
        dport: r.pick(&PORTS),
        icmp_type: if v6 { 128 } else { 8 },
        iif: r.pick(&["a0", "a1"]),
        reply: false,
    };
    let back = Packet {
        src: orig.dst,
        dst: orig.src,
        proto,
        sport: orig.dport,
        dport: orig.sport,
        icmp_type: if v6 { 129 } else { 0 },
        iif: route(orig.dst),
        reply: true,
    };
    (orig, back)
}
