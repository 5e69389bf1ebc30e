//! The namespaces of the differential test (generator, firewall, sink; addresses, routes,
//! static neighbours, the observer table) and the sending of forged packets.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use portolan_lab::netns::{Handle, Resources};
use portolan_lab::wire::{forged_packet, Segment, Token};

use crate::packets::{Packet, V4, V6};

pub const OBSERVER: &str = "table inet observe {
	set seen4 { typeof ip id; flags dynamic; size 65535; }
	set seen6 { typeof ip6 flowlabel; flags dynamic; size 65535; }
	chain obs_fwd {
		type filter hook forward priority 1000; policy accept;
		ct state invalid counter
		meta nfproto ipv4 add @seen4 { ip id }
		meta nfproto ipv6 add @seen6 { ip6 flowlabel }
	}
	chain obs_inp {
		type filter hook input priority 1000; policy accept;
		meta nfproto ipv4 add @seen4 { ip id }
		meta nfproto ipv6 add @seen6 { ip6 flowlabel }
	}
	chain obs_out { type filter hook output priority -1000; policy drop; }
}
";

pub fn sh_in(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut c = Command::new(args[0]);
    c.args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("{}: {e}", args[0]))?;
    if let (Some(t), Some(mut i)) = (stdin, child.stdin.take()) {
        i.write_all(t.as_bytes()).map_err(|e| e.to_string())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "`{}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn sh(args: &[&str]) -> Result<String, String> {
    sh_in(args, None)
}

pub struct Lab {
    pub fw: String,
    pub gen: String,
    pub sink: String,
    pub _res: Resources,
}

impl Lab {
    pub fn exec(&self, ns: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        sh_in(&v, stdin)
    }
    pub fn nft(&self, text: &str) -> Result<String, String> {
        self.exec(&self.fw, &["nft", "-f", "-"], Some(text))
    }
}

pub fn mac(n: u8) -> String {
    format!("02:00:00:00:00:{n:02x}")
}

pub fn setup() -> Result<Lab, String> {
    let prefix = portolan_lab::netns::unique_prefix();
    let fw = format!("{prefix}-fw");
    let gen = format!("{prefix}-gen");
    let sink = format!("{prefix}-sink");
    let mut res = Resources::new();
    for ns in [&fw, &gen, &sink] {
        res.add_netns(ns).map_err(|e| e.to_string())?;
    }
    let ip = |ns: &str, rest: &[&str]| -> Result<String, String> {
        let mut v = vec!["ip", "-n", ns];
        v.extend_from_slice(rest);
        sh(&v)
    };
    for i in 0..2u8 {
        // (fw side, far side, far namespace, v4 net, v6 net, MACs)
        for (near, far, ns, v4, v6, m) in [
            (
                format!("a{i}"),
                format!("g{i}"),
                &gen,
                format!("192.168.{i}"),
                format!("fd00:1{i}"),
                (1 + 4 * i, 2 + 4 * i),
            ),
            (
                format!("b{i}"),
                format!("s{i}"),
                &sink,
                format!("192.168.{}", 10 + i),
                format!("fd00:2{i}"),
                (3 + 4 * i, 4 + 4 * i),
            ),
        ] {
            sh(&[
                "ip", "link", "add", &near, "netns", &fw, "type", "veth", "peer", "name", &far,
                "netns", ns,
            ])?;
            ip(&fw, &["link", "set", &near, "address", &mac(m.0), "up"])?;
            ip(ns, &["link", "set", &far, "address", &mac(m.1), "up"])?;
            ip(&fw, &["addr", "add", &format!("{v4}.1/30"), "dev", &near])?;
            ip(ns, &["addr", "add", &format!("{v4}.2/30"), "dev", &far])?;
            ip(
                &fw,
                &["addr", "add", &format!("{v6}::1/64"), "dev", &near, "nodad"],
            )?;
            ip(
                ns,
                &["addr", "add", &format!("{v6}::2/64"), "dev", &far, "nodad"],
            )?;
            ip(
                &fw,
                &[
                    "neigh",
                    "replace",
                    &format!("{v6}::2"),
                    "lladdr",
                    &mac(m.1),
                    "dev",
                    &near,
                    "nud",
                    "permanent",
                ],
            )?;
            ip(
                ns,
                &[
                    "neigh",
                    "replace",
                    &format!("{v6}::1"),
                    "lladdr",
                    &mac(m.0),
                    "dev",
                    &far,
                    "nud",
                    "permanent",
                ],
            )?;
            let metric = format!("{}", 10 + i);
            ip(
                ns,
                &[
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("{v4}.1"),
                    "dev",
                    &far,
                    "metric",
                    &metric,
                ],
            )?;
            ip(
                ns,
                &[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("{v6}::1"),
                    "dev",
                    &far,
                    "metric",
                    &metric,
                ],
            )?;
        }
    }
    ip(
        &fw,
        &["addr", "add", &format!("{}/32", V4.local), "dev", "lo"],
    )?;
    ip(
        &fw,
        &[
            "addr",
            "add",
            &format!("{}/128", V6.local),
            "dev",
            "lo",
            "nodad",
        ],
    )?;
    for (net, via, dev) in [
        ("10.1.0.0/16", "192.168.10.2", "b0"),
        ("10.2.0.0/16", "192.168.11.2", "b1"),
        ("10.3.0.0/16", "192.168.0.2", "a0"),
        ("172.16.0.0/12", "192.168.0.2", "a0"),
        ("10.4.0.0/16", "192.168.1.2", "a1"),
        ("192.168.50.0/24", "192.168.1.2", "a1"),
        ("2001:db8:1::/48", "fd00:20::2", "b0"),
        ("2001:db8:2::/48", "fd00:21::2", "b1"),
        ("2001:db8:3::/48", "fd00:10::2", "a0"),
        ("2001:db8:4::/47", "fd00:11::2", "a1"),
    ] {
        ip(&fw, &["route", "add", net, "via", via, "dev", dev])?;
    }
    for k in [
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
        "net.ipv4.conf.a0.rp_filter=0",
        "net.ipv4.conf.a1.rp_filter=0",
        "net.ipv4.conf.b0.rp_filter=0",
        "net.ipv4.conf.b1.rp_filter=0",
        "net.ipv4.conf.all.accept_local=1",
    ] {
        sh(&["ip", "netns", "exec", &fw, "sysctl", "-qw", k])?;
    }
    let lab = Lab {
        fw,
        gen,
        sink,
        _res: res,
    };
    lab.nft(OBSERVER)?;
    Ok(lab)
}

/// The bytes of `p` with identifier `id` (IPv4 identification, IPv6 flow label).
pub fn bytes(p: &Packet, id: u32) -> Vec<u8> {
    let mut t: Token = [0; 16];
    t[10..12].copy_from_slice(&(id as u16).to_be_bytes());
    let seg = match p.proto {
        6 => Segment::TcpSyn {
            sport: p.sport,
            dport: p.dport,
        },
        17 => Segment::Udp {
            sport: p.sport,
            dport: p.dport,
        },
        // An echo and its reply share the identifier: the request's "source port".
        1 | 58 => Segment::Echo {
            id: if p.reply { p.dport } else { p.sport },
        },
        n => Segment::Raw { protocol: n },
    };
    let mut b = forged_packet(p.src, p.dst, seg, &t);
    let hdr = if p.v6() { 40 } else { 20 };
    if matches!(p.proto, 1 | 58) && b[hdr] != p.icmp_type {
        // An echo reply: the type byte changes, the checksum follows (RFC 1624 eqn. 3).
        let old = u16::from_be_bytes([b[hdr], b[hdr + 1]]);
        b[hdr] = p.icmp_type;
        let new = u16::from_be_bytes([b[hdr], b[hdr + 1]]);
        let hc = u16::from_be_bytes([b[hdr + 2], b[hdr + 3]]);
        let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        b[hdr + 2..hdr + 4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    if p.v6() {
        b[1] = (b[1] & 0xf0) | ((id >> 16) & 0x0f) as u8;
        b[2] = (id >> 8) as u8;
        b[3] = id as u8;
    }
    b
}

/// Sends `(packet, id)` from `gen` (new) or `sink` (replies), each out of its interface.
pub fn send_from(
    ns: &str,
    list: &[(Packet, u32)],
    far: impl Fn(&Packet) -> String,
) -> Result<(), String> {
    let h = Handle::open(ns).map_err(|e| e.to_string())?;
    h.enter().map_err(|e| e.to_string())?;
    for (p, id) in list {
        let dom = if p.v6() {
            socket2::Domain::IPV6
        } else {
            socket2::Domain::IPV4
        };
        // IPPROTO_RAW: the header is ours (raw(7), ipv6(7)).
        let so = socket2::Socket::new(dom, socket2::Type::RAW, Some(socket2::Protocol::from(255)))
            .map_err(|e| e.to_string())?;
        so.bind_device(Some(far(p).as_bytes()))
            .map_err(|e| e.to_string())?;
        let to = socket2::SockAddr::from(SocketAddr::new(p.dst, 0));
        so.send_to(&bytes(p, *id), &to)
            .map_err(|e| format!("send {p:?}: {e}"))?;
    }
    Ok(())
}

/// Sends the packets (identifier: index + 1) and returns which reached the end of forward
/// or input.
pub fn send_batch(lab: &Lab, packets: &[Packet]) -> Result<Vec<bool>, String> {
    lab.nft("flush set inet observe seen4\nflush set inet observe seen6\n")?;
    let (news, replies): (Vec<_>, Vec<_>) = packets
        .iter()
        .cloned()
        .zip(1u32..)
        .partition(|(p, _)| !p.reply);
    std::thread::scope(|s| -> Result<(), String> {
        let g = s.spawn(|| send_from(&lab.gen, &news, |p| p.iif.replace('a', "g")));
        let k = s.spawn(|| send_from(&lab.sink, &replies, |p| p.iif.replace('b', "s")));
        g.join().map_err(|_| "sender panicked".to_string())??;
        k.join().map_err(|_| "sender panicked".to_string())??;
        Ok(())
    })?;
    std::thread::sleep(Duration::from_millis(40));
    let mut seen = vec![false; packets.len()];
    for set in ["seen4", "seen6"] {
        let listing = lab.exec(
            &lab.fw,
            &["nft", "-j", "list", "set", "inet", "observe", set],
            None,
        )?;
        let v: serde_json::Value = serde_json::from_str(&listing).map_err(|e| e.to_string())?;
        for it in v["nftables"].as_array().into_iter().flatten() {
            for e in it["set"]["elem"].as_array().into_iter().flatten() {
                if let Some(id) = e.as_u64() {
                    let i = id as usize;
                    // An IPv4 id and an IPv6 label are told apart by the packet's family.
                    if let Some(p) = packets.get(i.wrapping_sub(1)) {
                        if p.v6() == (set == "seen6") {
                            seen[i - 1] = true;
                        }
                    }
                }
            }
        }
    }
    Ok(seen)
}
