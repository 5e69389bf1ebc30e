//! Structure-aware inputs: the fuzzer's bytes drive the choices of a generator that writes a
//! site file (and, for `profile_compile`, a profile) as YAML text, so that most inputs get
//! past the parser and the shape checks into validation, compile and the back ends. Values
//! come mostly from what the profiles at hand declare (their modes, features, params and
//! their types, endpoints, flows left `unspecified`), with a share of wrong and hostile
//! values so that the refusals are exercised too.
//!
//! Over 800 lines on purpose: the site and the profile generators share the value makers
//! (addresses, names, ports, params of each type), and a site generated for a generated
//! profile must agree with it; one file keeps the choices of both in one place.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use portolan_model::profile::{EndpointKind, ParamType, Profile};
use portolan_model::{PortSpec, Protocol};

/// The generator's reading of the fuzzer's bytes. Out of bytes, every choice takes its first
/// option and every count is zero, so generation always ends.
pub struct G<'a, 'b> {
    pub u: &'a mut Unstructured<'b>,
}

impl G<'_, '_> {
    /// True `percent` times in 100 (false once the bytes run out).
    pub fn chance(&mut self, percent: u8) -> bool {
        let x: u8 = self.u.int_in_range(0..=99).unwrap_or(0);
        x >= 100 - percent.min(100)
    }

    /// A rare wrong value (2 in 100): enough to keep every refusal exercised, rare enough that
    /// a site of several devices still validates often.
    pub fn bad(&mut self) -> bool {
        self.chance(2)
    }

    pub fn upto(&mut self, n: usize) -> usize {
        self.u.int_in_range(0..=n).unwrap_or(0)
    }

    pub fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        let i = self.upto(xs.len() - 1);
        xs[i].clone()
    }

    pub fn byte(&mut self) -> u8 {
        self.u.arbitrary().unwrap_or(0)
    }

    pub fn u32(&mut self) -> u32 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// A hostile or odd scalar: quoting, option-like, numeric-looking, non-ASCII, or a short
    /// arbitrary string.
    pub fn junk(&mut self) -> String {
        const NASTY: &[&str] = &[
            "",
            " ",
            "*",
            "-",
            "--",
            "\"",
            "'",
            "\\",
            ";",
            "#",
            "{",
            "}",
            "{x}",
            "$x",
            "a b",
            "\n",
            "\t",
            "\u{0}",
            "é",
            "..",
            ".",
            "-eth0",
            "eth0;",
            "0",
            "-1",
            "65536",
            "4294967296",
            "1e3",
            "0x10",
            "null",
            "~",
            "yes",
            "unspecified",
            "any",
            "firewall",
            "zone:",
            "*.",
            "*.*.com",
            "a..b",
            "1.2.3",
            "10.0.0.256",
            "10.0.0.1/33",
            "::/129",
            "ff:ff",
            "1-",
            "-5",
            "5-1",
            "0-0",
            "1-65536",
        ];
        if self.chance(70) {
            return self.pick(NASTY).to_string();
        }
        let mut s: String = self.u.arbitrary().unwrap_or_default();
        s.truncate(s.char_indices().nth(24).map_or(s.len(), |(i, _)| i));
        s
    }

    /// An interface name: mostly valid ones, with wildcards, edge lengths and odd characters.
    pub fn interface(&mut self) -> String {
        const IFACES: &[&str] = &[
            "lan0",
            "mgmt0",
            "wan0",
            "eth0",
            "eth1",
            "br-lan",
            "wlan0.1",
            "veth_a",
            "eth*",
            "lan*",
            "vlan.100",
            "en-p0s31f6",
            "abcdefghijklmno",
            "abcdefghijklmn*",
            "x",
            "lo",
            "-lan",
            "_",
            "0",
            "a.",
            "e-*",
            "-*",
            "_*",
            ".a",
            "A",
            "..a",
        ];
        const BAD: &[&str] = &[
            "*",
            "l*n0",
            "abcdefghijklmnop",
            ".",
            "..",
            "..*",
            "a b",
            "eth0:1",
            "lan/0",
            "lan+",
            "\"",
            "é",
            "",
        ];
        if !self.bad() {
            return self.pick(IFACES).to_string();
        }
        if self.chance(50) {
            return self.pick(BAD).to_string();
        }
        const CHARS: &[u8] = b"abel0123456789-_.*+:/ @";
        let n = self.upto(17);
        (0..n).map(|_| char::from(self.pick(CHARS))).collect()
    }

    /// An IPv4 network: a documentation, private, special or arbitrary base and a length.
    pub fn v4net(&mut self) -> (u32, u8) {
        const BASES: &[u32] = &[
            0x0a00_0000, // 10.0.0.0
            0x0a14_0000, // 10.20.0.0
            0x0a63_0000, // 10.99.0.0
            0xc0a8_0100, // 192.168.1.0
            0xac10_0000, // 172.16.0.0
            0x6440_0000, // 100.64.0.0
            0xc000_0200, // 192.0.2.0
            0xc633_6400, // 198.51.100.0
            0xcb00_7100, // 203.0.113.0
            0xe000_0000, // 224.0.0.0
            0xefff_ff00, // 239.255.255.0
            0xa9fe_0000, // 169.254.0.0
            0x7f00_0000, // 127.0.0.0
            0x0000_0000,
            0xffff_ffff,
        ];
        let base = if self.bad() {
            self.u32()
        } else if self.chance(90) {
            self.pick(&BASES[..9]) ^ u32::from(self.byte())
        } else {
            self.pick(BASES) ^ u32::from(self.byte())
        };
        let len = if self.bad() {
            self.upto(32) as u8
        } else {
            self.pick(&[32u8, 24, 16, 8, 26, 28, 30, 31, 32, 32])
        };
        (base, len)
    }

    pub fn v6net(&mut self) -> (u128, u8) {
        const BASES: &[u128] = &[
            0xfd00_0000_0000_0000_0000_0000_0000_0000,
            0x2001_0db8_0000_0000_0000_0000_0000_0000,
            0x2001_0db8_0001_0000_0000_0000_0000_0000,
            0xfe80_0000_0000_0000_0000_0000_0000_0000,
            0xff02_0000_0000_0000_0000_0000_0000_0000,
            0xff05_0000_0000_0000_0000_0000_0000_0000,
            0,
            1,
            0x0000_0000_0000_0000_0000_ffff_0a00_0001,
        ];
        let base = if self.bad() {
            u128::from(self.u32()) << 96 | u128::from(self.u32())
        } else if self.chance(90) {
            self.pick(&BASES[..3]) ^ u128::from(self.u32() & 0xffff)
        } else {
            self.pick(BASES) ^ u128::from(self.u32() & 0xffff)
        };
        let len = if self.bad() {
            self.upto(128) as u8
        } else {
            self.pick(&[128u8, 64, 48, 56, 32, 96, 112, 120, 127, 128, 128])
        };
        (base, len)
    }

    /// A prefix as a site writes it: mostly with the host bits clear, the length left out for
    /// a single address; sometimes host bits set (which validation refuses).
    pub fn net_text(&mut self, v6: bool) -> String {
        self.prefix(v6, false)
    }

    /// One address, no length.
    pub fn address(&mut self, v6: bool) -> String {
        let t = self.prefix(v6, false);
        t.split('/').next().unwrap_or_default().to_string()
    }

    /// A zone's network: a /24 or /16 (/64, /48) most of the time.
    pub fn zone_net(&mut self, v6: bool) -> String {
        self.prefix(v6, true)
    }

    fn prefix(&mut self, v6: bool, zone: bool) -> String {
        let clean = !self.bad();
        if v6 {
            let (b, len) = self.v6net();
            let len = if zone && !self.bad() {
                self.pick(&[64, 48, 56, 120])
            } else {
                len
            };
            let b = if clean { b & mask6(len) } else { b };
            prefix_text(&Ipv6Addr::from(b).to_string(), len, 128)
        } else {
            let (b, len) = self.v4net();
            let len = if zone && !self.bad() {
                self.pick(&[24, 16, 8, 28])
            } else {
                len
            };
            let b = if clean { b & mask4(len) } else { b };
            prefix_text(&Ipv4Addr::from(b).to_string(), len, 32)
        }
    }

    /// An address or prefix inside `net` for the `block`-th device (of 8): devices get
    /// disjoint eighths of a zone where it is large enough, so that they do not all claim the
    /// same addresses; a single address in it, or (`whole`) the whole eighth.
    pub fn inside(&mut self, net: &IpNet, block: usize, whole: bool) -> String {
        let (base, len, max) = match net {
            IpNet::V4(n) => (u128::from(u32::from(n.network())), n.prefix_len(), 32u8),
            IpNet::V6(n) => (u128::from(n.network()), n.prefix_len(), 128u8),
        };
        let host_bits = max - len;
        let (start, sub) = if host_bits >= 4 {
            let shift = u32::from(host_bits - 3);
            (base | ((block as u128 & 7) << shift), len + 3)
        } else {
            (base, len)
        };
        let len = if whole { sub } else { max };
        let rand = u128::from(self.u32()) << 32 | u128::from(self.u32());
        let mask = |l: u8| {
            if max == 32 {
                u128::from(mask4(l))
            } else {
                mask6(l)
            }
        };
        let a = (start | (rand & !mask(sub) & mask(max))) & mask(len);
        let text = if max == 32 {
            Ipv4Addr::from(a as u32).to_string()
        } else {
            Ipv6Addr::from(a).to_string()
        };
        prefix_text(&text, len, max)
    }

    /// A hostname: labels from a pool (long, IDNA, digits, hyphens), sometimes a trailing dot
    /// or upper case.
    pub fn hostname(&mut self) -> String {
        const NAMES: &[&str] = &[
            "eu.mbedcloud.com",
            "lns.example.com",
            "a.b",
            "xn--bcher-kva.example",
            "example.com.",
            "UPPER.Example.COM",
        ];
        if self.chance(40) {
            return self.pick(NAMES).to_string();
        }
        let long = "x".repeat(63);
        let labels = [
            "a",
            "example",
            "com",
            "xn--bcher-kva",
            "0",
            "a-b",
            &long,
            "UP",
            "1",
            "net",
            "org",
        ];
        let n = self.upto(4) + 1;
        let mut parts: Vec<&str> = (0..n).map(|_| self.pick(&labels)).collect();
        if self.bad() {
            parts.push(self.pick(&["_srv", "-x", "x-", "a_b", "", "1"]));
        }
        parts.push(self.pick(&["example.org", "com", "net"]));
        let mut s = parts.join(".");
        if self.chance(3) {
            s.push('.');
        }
        s
    }

    /// A MAC address text: mostly unicast (the group bit clear), in either separator and case.
    pub fn mac(&mut self) -> String {
        if self.bad() {
            return self
                .pick(&[
                    "ff:ff:ff:ff:ff:ff",
                    "00:00:00:00:00:00",
                    "01:00:5e:00:00:fb",
                    "02:00:5e:10:00:01",
                    "02-00-5E-10-00-01",
                    "2:0:5e:10:0:1",
                    "020000000001",
                ])
                .to_string();
        }
        let mut b = [0u8; 6];
        for x in &mut b {
            *x = self.byte();
        }
        if !self.bad() {
            b[0] &= 0xfe;
        }
        let sep = if self.chance(80) { ":" } else { "-" };
        let s: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
        let s = s.join(sep);
        if self.chance(20) {
            s.to_uppercase()
        } else {
            s
        }
    }
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

fn prefix_text(addr: &str, len: u8, max: u8) -> String {
    if len == max {
        addr.to_string()
    } else {
        format!("{addr}/{len}")
    }
}

/// A YAML double-quoted scalar holding exactly `s`: everything outside printable ASCII is
/// escaped, so no input can break the document's structure.
pub fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            ' '..='~' => o.push(c),
            c if u32::from(c) <= 0xffff => {
                let _ = write!(o, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(o, "\\U{:08x}", u32::from(c));
            }
        }
    }
    o.push('"');
    o
}

/// A flow-style list of quoted scalars.
fn ql(items: &[String]) -> String {
    let v: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", v.join(", "))
}

/// A port value as a site writes it: a number, a range or list text, or a YAML list; with
/// `single`, one port (what a `port` param takes). Out-of-range and malformed values are rare.
fn ports_value(g: &mut G, single: bool, comma: bool) -> String {
    const PORTS: &[i64] = &[
        443, 53, 1, 22, 67, 123, 500, 1194, 1700, 4001, 4500, 5000, 5140, 5684, 8443, 65535,
    ];
    let one = |g: &mut G| -> String {
        if g.bad() {
            g.pick(&["0", "65536", "-1", "99999999999"]).to_string()
        } else if g.chance(80) {
            g.pick(PORTS).to_string()
        } else {
            (g.u32() % 65535 + 1).to_string()
        }
    };
    let range = |g: &mut G| -> String {
        let a = g.u32() % 65534 + 1;
        let b = (a + 1 + g.u32() % 1024).min(65535);
        if g.bad() {
            format!("{b}-{a}")
        } else {
            format!("{a}-{b}")
        }
    };
    if single || g.chance(50) {
        return if g.bad() { q(&g.junk()) } else { one(g) };
    }
    match g.upto(2) {
        0 => q(&range(g)),
        // "443, 2195-2196": a `ports` param's text (a flow's `ports:` takes a YAML list).
        1 if comma => {
            let n = g.upto(3) + 1;
            let parts: Vec<String> = (0..n)
                .map(|_| if g.chance(50) { one(g) } else { range(g) })
                .collect();
            q(&parts.join(", "))
        }
        _ => {
            let n = if g.bad() { 0 } else { g.upto(3) + 1 };
            let parts: Vec<String> = (0..n)
                .map(|_| if g.chance(60) { one(g) } else { q(&range(g)) })
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// A zone as generated: its id and the networks it lists (those that parse).
#[derive(Clone)]
struct Zone {
    id: String,
    nets: Vec<IpNet>,
}

const ZONE_IDS: &[&str] = &["field", "mgmt", "wan", "lan", "dmz", "z-5"];

/// A binding item: addresses and prefixes of both families (unicast, multicast, broadcast),
/// names, wildcards, zones, `firewall`, `any`, or (rarely) junk.
fn bind_item(g: &mut G, zones: &[Zone]) -> String {
    // Rarer than `bad`: a site binds many items.
    if g.chance(1) && g.chance(50) {
        return g.junk();
    }
    match g.upto(19) {
        0..=5 => g.net_text(false),
        6 | 7 => g.net_text(true),
        8..=10 => g.hostname(),
        11 => format!("*.{}", g.hostname()),
        12 | 13 => {
            let with_nets: Vec<&Zone> = zones.iter().filter(|z| !z.nets.is_empty()).collect();
            if !with_nets.is_empty() && !g.bad() {
                format!("zone:{}", g.pick(&with_nets).id)
            } else if !zones.is_empty() {
                format!("zone:{}", g.pick(zones).id)
            } else {
                format!("zone:{}", g.junk())
            }
        }
        14 => "firewall".to_string(),
        15 => "any".to_string(),
        16 => g
            .pick(&[
                "224.0.0.251",
                "239.255.255.250",
                "224.0.1.1",
                "239.1.2.3",
                "224.0.0.0/4",
            ])
            .to_string(),
        17 => g
            .pick(&["ff02::fb", "ff05::1:3", "ff0e::101", "ff02::1", "ff00::/8"])
            .to_string(),
        18 => {
            let broadcast = zones
                .iter()
                .flat_map(|z| &z.nets)
                .find(|n| matches!(n, IpNet::V4(_)))
                .map(|n| n.broadcast().to_string());
            broadcast.unwrap_or_else(|| "255.255.255.255".to_string())
        }
        _ => "255.255.255.255".to_string(),
    }
}

/// A site file over `profiles` (by id), as YAML text.
pub fn site(g: &mut G, profiles: &[&Profile]) -> Result<String> {
    let mut y = String::from("portolan: 1\n");
    let name = if g.bad() {
        g.junk()
    } else {
        "fuzz".to_string()
    };
    let _ = writeln!(y, "site: {}", q(&name));

    let mut zones = Vec::new();
    y.push_str("zones:\n");
    for (i, zid) in ZONE_IDS.iter().enumerate().take(g.upto(3) + 1) {
        let id = if !g.bad() {
            zid.to_string()
        } else if g.chance(50) {
            g.pick(ZONE_IDS).to_string()
        } else {
            g.junk()
        };
        let _ = writeln!(y, "  - id: {}", q(&id));
        if !g.chance(10) {
            let ifc = g.interface();
            let _ = writeln!(y, "    interface: {}", q(&ifc));
        }
        // The first zone lists a network unless the input says otherwise, so that devices
        // get addresses inside it and zone bindings resolve.
        let mut texts = Vec::new();
        let n = if i == 0 { 1 + g.upto(1) } else { g.upto(2) };
        for _ in 0..n {
            let v6 = g.chance(25);
            texts.push(g.zone_net(v6));
        }
        if !texts.is_empty() {
            let _ = writeln!(y, "    networks: {}", ql(&texts));
        }
        let nets = texts
            .iter()
            .filter_map(|t| t.parse::<IpNet>().ok())
            .collect();
        zones.push(Zone { id, nets });
    }

    let mut services = String::new();
    for s in ["dns", "ntp", "dhcp"] {
        if g.bad() {
            let _ = writeln!(services, "  {s}: {}", q(&g.junk()));
            continue;
        }
        match g.upto(19) {
            0..=11 => {
                let _ = writeln!(services, "  {s}: firewall");
            }
            12 => {}
            _ => {
                let n = g.upto(1) + 1;
                let list: Vec<String> = (0..n)
                    .map(|_| {
                        let v6 = g.chance(20);
                        g.net_text(v6)
                    })
                    .collect();
                let _ = writeln!(services, "  {s}: {}", ql(&list));
            }
        }
    }
    if !services.is_empty() {
        y.push_str("services:\n");
        y.push_str(&services);
    }

    let count = if g.bad() { 0 } else { g.upto(5) + 1 };
    if count == 0 {
        y.push_str("devices: []\n");
        return Ok(y);
    }
    y.push_str("devices:\n");
    for i in 0..count {
        device(g, &mut y, i, profiles, &zones);
    }
    Ok(y)
}

fn device(g: &mut G, y: &mut String, i: usize, profiles: &[&Profile], zones: &[Zone]) {
    const IDS: &[&str] = &[
        "d0",
        "d1",
        "d2",
        "d3",
        "d4",
        "d5",
        "lrr",
        "a-rather-long-device-group-identifier-beyond-limits",
        "sensors_2",
    ];
    let id = if !g.bad() {
        IDS[i].to_string()
    } else if g.chance(50) {
        g.pick(IDS).to_string()
    } else {
        g.junk()
    };
    let _ = writeln!(y, "  - id: {}", q(&id));
    let p = profiles[g.upto(profiles.len() - 1)];
    let pname = if g.bad() { g.junk() } else { p.id.clone() };
    let _ = writeln!(y, "    profile: {}", q(&pname));

    let mode = if g.bad() {
        Some(g.junk())
    } else if !p.modes.is_empty() && !g.bad() {
        Some(p.modes[g.upto(p.modes.len() - 1)].id.clone())
    } else {
        None
    };
    if let Some(m) = &mode {
        let _ = writeln!(y, "    mode: {}", q(m));
    }

    let zone = if !zones.is_empty() && !g.bad() {
        Some(&zones[g.upto(zones.len() - 1)])
    } else {
        None
    };
    let zid = zone.map_or_else(|| g.junk(), |z| z.id.clone());
    let _ = writeln!(y, "    zone: {}", q(&zid));

    let whole = g.chance(25);
    let n = if g.bad() {
        0
    } else if whole {
        1
    } else {
        g.upto(2) + 1
    };
    let addrs: Vec<String> = (0..n)
        .map(|_| match zone {
            Some(z) if !z.nets.is_empty() && !g.bad() => {
                let net = z.nets[g.upto(z.nets.len() - 1)];
                g.inside(&net, i, whole)
            }
            // A zone without networks: a documentation range, again an eighth per device.
            _ if !g.bad() => {
                let net = if g.chance(75) {
                    IpNet::V4(
                        ipnet::Ipv4Net::new(Ipv4Addr::new(198, 51, 100, 0), 24).unwrap_or_default(),
                    )
                } else {
                    IpNet::V6(
                        ipnet::Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0), 48)
                            .unwrap_or_default(),
                    )
                };
                g.inside(&net, i, whole)
            }
            _ => {
                let v6 = g.chance(25);
                g.net_text(v6)
            }
        })
        .collect();
    let _ = writeln!(y, "    addresses: {}", ql(&addrs));

    if g.chance(40) {
        if g.chance(50) {
            let m = g.mac();
            let _ = writeln!(y, "    mac: {}", q(&m));
        } else {
            let n = g.upto(2) + 1;
            let macs: Vec<String> = (0..n).map(|_| g.mac()).collect();
            let _ = writeln!(y, "    mac: {}", ql(&macs));
        }
    }

    if g.chance(35) {
        let versions: Vec<String> = ["1.2.11", "2.9", "2.8", "3.2", "1", "0", "10.2.0.1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = if g.bad() { g.junk() } else { g.pick(&versions) };
        let _ = writeln!(y, "    version: {}", q(&v));
    }

    let mut params = Vec::new();
    for prm in &p.params {
        // A param without a default is needed by the flows that use it.
        if !g.chance(if prm.default.is_none() { 95 } else { 40 }) {
            continue;
        }
        let v = match prm.kind {
            ParamType::Port => ports_value(g, true, false),
            ParamType::Ports => ports_value(g, false, true),
            ParamType::Host => {
                let t = match g.upto(4) {
                    0..=2 => g.hostname(),
                    3 => g.address(false),
                    _ => g.address(true),
                };
                q(&t)
            }
            ParamType::Enum if !prm.values.is_empty() && !g.bad() => q(&g.pick(&prm.values)),
            ParamType::Enum | ParamType::String => {
                let t = if g.bad() { g.junk() } else { g.hostname() };
                q(&t)
            }
        };
        params.push(format!("{}: {v}", q(&prm.id)));
    }
    if g.bad() {
        params.push(format!("{}: 1", q(&g.junk())));
    }
    if !params.is_empty() {
        let _ = writeln!(y, "    params: {{{}}}", params.join(", "));
    }

    let mut binds = Vec::new();
    for e in &p.endpoints {
        let bind = match e.kind() {
            EndpointKind::Role => !g.chance(1),
            _ => g.chance(8),
        };
        if !bind {
            continue;
        }
        let n = if g.chance(1) { 0 } else { g.upto(2) + 1 };
        let items: Vec<String> = (0..n).map(|_| bind_item(g, zones)).collect();
        binds.push(format!("{}: {}", q(&e.id), ql(&items)));
    }
    if g.bad() {
        binds.push(format!("{}: [\"192.0.2.1\"]", q(&g.junk())));
    }
    if !binds.is_empty() {
        let _ = writeln!(y, "    bind: {{{}}}", binds.join(", "));
    }

    let mut features: Vec<String> = Vec::new();
    for f in &p.features {
        if g.chance(55) {
            features.push(f.id.clone());
        }
    }
    if g.bad() {
        features.push(g.junk());
    }
    if !features.is_empty() {
        let _ = writeln!(y, "    features: {}", ql(&features));
    }

    let mut flows = Vec::new();
    let overrides = g.bad();
    for f in p.flows_in(mode.as_deref()) {
        let mut set = Vec::new();
        let override_any = overrides && g.chance(20);
        if matches!(f.protocol, Protocol::Unspecified) && !g.bad() || override_any {
            const PROTOS: &[&str] = &[
                "tcp",
                "udp",
                "udp",
                "tcp",
                "sctp",
                "icmp",
                "icmpv6",
                "esp",
                "ah",
                "gre",
                "igmp",
                "6",
                "17",
                "0",
                "255",
                "58",
                "132",
                "TCP",
                "ipv6-icmp",
            ];
            const BAD: &[&str] = &["arp", "256", "unspecified", "-1"];
            let p = if g.bad() { g.pick(BAD) } else { g.pick(PROTOS) };
            let v = if p.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                p.to_string()
            } else if g.bad() {
                q(&g.junk())
            } else {
                q(p)
            };
            set.push(format!("protocol: {v}"));
        }
        if matches!(f.ports, PortSpec::Unspecified) && !g.bad() || override_any {
            set.push(format!("ports: {}", ports_value(g, false, false)));
        }
        if f.optional && g.chance(15) || g.bad() {
            set.push("enabled: false".to_string());
        }
        if !set.is_empty() {
            flows.push(format!("{}: {{{}}}", q(&f.id), set.join(", ")));
        }
    }
    if g.bad() {
        flows.push(format!("{}: {{enabled: false}}", q(&g.junk())));
    }
    if !flows.is_empty() {
        let _ = writeln!(y, "    flows: {{{}}}", flows.join(", "));
    }
}

/// A profile file (id `fuzz-dev`) as YAML text: modes, features, params of every type (with
/// and without defaults), endpoints of every kind (roles, services, hosts with `{param}`
/// templates, wildcard domains, addresses of both families), and flows with every field that
/// reaches the IR or a back end (protocols by name, number, param or `unspecified`; ports,
/// source ports, casts and groups, families, ICMP types, conditions, modes, tunnels).
pub fn profile(g: &mut G) -> String {
    let mut y = String::from(
        "portolan: 1\nid: fuzz-dev\nvendor: Fuzz\nproduct: Generated device\n\
         versions: [\"2.9\"]\nsources:\n  - id: doc\n    title: generated\n    file: doc.txt\n",
    );
    let modes: Vec<String> = (0..g.upto(2)).map(|i| format!("m{i}")).collect();
    if !modes.is_empty() {
        y.push_str("modes:\n");
        for m in &modes {
            let _ = writeln!(y, "  - id: {m}");
        }
    }
    let features: Vec<String> = (0..g.upto(2)).map(|i| format!("f{i}")).collect();
    if !features.is_empty() {
        y.push_str("features:\n");
        for f in &features {
            let _ = writeln!(y, "  - id: {f}");
        }
    }

    // Params: (id, type); enum params carry protocol names (`proto`) or regions.
    let mut params: Vec<(String, &str)> = Vec::new();
    let mut proto_params: Vec<String> = Vec::new();
    let mut region = false;
    let n = g.upto(4);
    if n > 0 {
        y.push_str("params:\n");
    }
    for i in 0..n {
        let kind = g.pick(&["port", "ports", "host", "string", "enum", "enum"]);
        let id = if kind == "enum" && g.chance(40) {
            "region".to_string()
        } else {
            format!("p{i}")
        };
        let _ = writeln!(y, "  - id: {id}\n    type: {kind}");
        match kind {
            "enum" => {
                let values = if id == "region" {
                    region = true;
                    vec!["eu", "us", "ap-south-1"]
                } else if g.bad() {
                    vec!["tcp", "sctp", "icmp", "x y"]
                } else {
                    proto_params.push(format!("{{{id}}}"));
                    vec!["udp", "tcp", "sctp"]
                };
                let vs: Vec<String> = values.iter().map(|s| s.to_string()).collect();
                let _ = writeln!(y, "    values: {}", ql(&vs));
                if g.chance(50) {
                    let _ = writeln!(y, "    default: {}", q(&g.pick(&vs)));
                }
            }
            "port" | "ports" if g.chance(50) => {
                let _ = writeln!(y, "    default: {}", ports_value(g, kind == "port", false));
            }
            "host" | "string" if g.chance(40) => {
                let _ = writeln!(y, "    default: {}", q(&g.hostname()));
            }
            _ => {}
        }
        params.push((id, kind));
    }
    let param_ref = |g: &mut G, kinds: &[&str]| -> Option<String> {
        let fit: Vec<&String> = params
            .iter()
            .filter(|(_, k)| kinds.contains(k))
            .map(|(id, _)| id)
            .collect();
        (!fit.is_empty()).then(|| format!("{{{}}}", g.pick(&fit)))
    };

    let mut endpoints: Vec<String> = Vec::new();
    y.push_str("endpoints:\n");
    for i in 0..=g.upto(3) {
        let id = format!("e{i}");
        let _ = writeln!(y, "  - id: {id}");
        match g.upto(9) {
            0..=2 => y.push_str("    role: true\n"),
            3 => {
                let s = g.pick(&["dns", "ntp", "dhcp"]);
                let _ = writeln!(y, "    service: {s}");
            }
            4..=6 => {
                let n = g.upto(2) + 1;
                let hosts: Vec<String> = (0..n)
                    .map(|_| match param_ref(g, &["host", "string", "enum"]) {
                        Some(r) if g.chance(40) => format!("{r}.example.com"),
                        _ => g.hostname(),
                    })
                    .collect();
                let _ = writeln!(y, "    hosts: {}", ql(&hosts));
                if g.chance(30) {
                    let d = format!("*.{}", g.hostname());
                    let _ = writeln!(y, "    domains: [{}]", q(&d));
                }
            }
            7 => {
                let d = if g.chance(90) {
                    format!("*.{}", g.hostname())
                } else {
                    g.junk()
                };
                let _ = writeln!(y, "    domains: [{}]", q(&d));
            }
            _ => {
                let n = g.upto(2) + 1;
                let a: Vec<String> = (0..n)
                    .map(|_| {
                        let v6 = g.chance(30);
                        g.net_text(v6)
                    })
                    .collect();
                let _ = writeln!(y, "    addresses: {}", ql(&a));
            }
        }
        endpoints.push(id);
    }

    let mut flows: Vec<(String, bool)> = Vec::new(); // (id, peer may initiate)
    y.push_str("flows:\n");
    for i in 0..=g.upto(4) {
        let id = format!("w{i}");
        let peer = g.pick(&endpoints);
        let initiation = g.pick(&["device", "device", "peer", "either"]);
        let (from, to) = match initiation {
            "peer" => (peer.as_str(), "device"),
            "either" if g.chance(50) => (peer.as_str(), "device"),
            _ => ("device", peer.as_str()),
        };
        let _ = writeln!(
            y,
            "  - id: {id}\n    from: {from}\n    to: {to}\n    initiation: {initiation}"
        );
        const PROTOS: &[&str] = &[
            "tcp",
            "udp",
            "tcp",
            "udp",
            "sctp",
            "icmp",
            "icmpv6",
            "esp",
            "ah",
            "gre",
            "igmp",
            "6",
            "17",
            "47",
            "0",
            "255",
            "132",
            "58",
            "1",
            "ipv6-icmp",
        ];
        let proto = match proto_params.is_empty() {
            false if g.chance(15) => q(&g.pick(&proto_params)),
            _ => {
                let p = if g.bad() {
                    g.pick(&["arp", "unspecified", "256"])
                } else {
                    g.pick(PROTOS)
                };
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    p.to_string()
                } else {
                    q(p)
                }
            }
        };
        let _ = writeln!(y, "    protocol: {proto}");
        let ported = [
            "\"tcp\"",
            "\"udp\"",
            "\"sctp\"",
            "6",
            "17",
            "132",
            "\"unspecified\"",
        ]
        .contains(&proto.as_str())
            || proto.starts_with("\"{");
        if ported && !g.bad() || g.bad() {
            let v = match g.upto(9) {
                0 => q("unspecified"),
                1 | 2 => match param_ref(g, &["port", "ports"]) {
                    Some(r) if g.chance(50) => q(&r),
                    Some(r) => format!("[443, {}]", q(&r)),
                    None => ports_value(g, false, false),
                },
                _ => ports_value(g, false, false),
            };
            let _ = writeln!(y, "    ports: {v}");
        }
        if ported && g.chance(20) {
            let _ = writeln!(y, "    src_ports: {}", ports_value(g, false, false));
        }
        if g.chance(20) {
            y.push_str("    optional: true\n");
        }
        if !modes.is_empty() && g.chance(70) {
            let m = g.pick(&modes);
            let _ = writeln!(y, "    modes: [{m}]");
        }
        let mut conditions = Vec::new();
        if !features.is_empty() && g.chance(30) {
            conditions.push(format!("{{feature: {}}}", g.pick(&features)));
        }
        if g.chance(10) {
            let v = if g.bad() {
                g.pick(&["== 2.9", ">= x", "2.9"])
            } else {
                g.pick(&[">= 2.8", "< 3", "> 10.1.2", "<= 2.9"])
            };
            conditions.push(format!("{{version: {}}}", q(v)));
        }
        if region && g.chance(20) || g.bad() {
            let r = if g.bad() {
                "mars"
            } else {
                g.pick(&["eu", "us"])
            };
            conditions.push(format!("{{region: {r}}}"));
        }
        if !conditions.is_empty() {
            let _ = writeln!(y, "    conditions: [{}]", conditions.join(", "));
        }
        match g.upto(9) {
            0 => y.push_str("    cast: broadcast\n"),
            1 | 2 => {
                y.push_str("    cast: multicast\n");
                if !g.bad() {
                    let grp = if g.bad() {
                        g.pick(&["10.0.0.1", "2001:db8::1", "224.0.0.0/4"])
                    } else {
                        g.pick(&[
                            "224.0.0.251",
                            "239.255.255.250",
                            "224.0.1.129",
                            "ff02::fb",
                            "ff05::c",
                            "ff0e::101",
                            "ff02::1:2",
                        ])
                    };
                    let _ = writeln!(y, "    group: {}", q(grp));
                }
            }
            _ => {}
        }
        let v6 = proto.contains("icmpv6") || proto == "58";
        let v4 = proto == "\"icmp\"" || proto == "1";
        if g.chance(20) {
            let f = if g.bad() {
                "ipv5"
            } else if v6 {
                "ipv6"
            } else if v4 {
                "ipv4"
            } else {
                g.pick(&["ipv4", "ipv6"])
            };
            let _ = writeln!(y, "    family: {f}");
        }
        // ICMP types: every name of the protocol's table (the names the model accepts, each
        // of which the back ends' tools must accept too), rarely a wrong one.
        if (v4 || v6) && g.chance(70) || g.bad() {
            let names: Vec<&str> = portolan_model::icmp::type_names(v6).collect();
            let t = if g.bad() {
                g.pick(&[
                    "accept",
                    "8",
                    "Echo-Request",
                    "nd-router-advert",
                    "source-quench",
                ])
            } else {
                g.pick(&names)
            };
            let _ = writeln!(y, "    icmp_type: {}", q(t));
        }
        if i > 0 && g.chance(8) {
            let _ = writeln!(y, "    inside: {{flow: w0}}");
        }
        if g.chance(5) {
            let _ = writeln!(y, "    keepalive: {}", g.u32() & 0xffff);
        }
        let _ = writeln!(y, "    source: {{doc: doc, ref: \"row {id}\"}}");
        flows.push((id, initiation != "device"));
    }

    let inbound: Vec<&String> = flows.iter().filter(|(_, p)| *p).map(|(id, _)| id).collect();
    if inbound.is_empty() || g.chance(30) {
        let w = g.pick(&["none", "unspecified"]);
        let _ = writeln!(y, "listens: {w}");
    } else {
        y.push_str("listens:\n");
        for f in inbound {
            let _ = writeln!(y, "  - protocol: tcp\n    ports: 443\n    flow: {f}");
        }
    }
    y
}
