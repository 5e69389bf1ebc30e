//! MUD files imported into a site and proven on a kernel: one hand-written file per class of
//! ACE whose reading decides who may talk to whom (`test-data/mud/classes/`):
//!
//! | file | ACEs | what RFC 8520/8519 admit |
//! |---|---|---|
//! | `to-device-only` | to-device UDP 47808 → 47808 from my-controller | the controller sends first; the device never does |
//! | `same-port-both-sides` | that ACE in both policies | either side sends first, from port 47808 only |
//! | `source-port-only` | HTTPS out (paired, direction-initiated) + to-device `tcp source-port 80` alone | HTTPS from the device; nothing opens port 80 anywhere |
//! | `ipv4-only` | ipv4-acl-type only, MQTT 8883 out | IPv4 only, though the device and controller have IPv6 |
//! | `ordinary` | HTTPS out in ipv4 and ipv6 ACLs | the device opens 443 in both families; the controller opens nothing |
//!
//! The expected rules and packets below are written from that table (the RFC text), not from
//! the importer. The test imports the files as a site's profiles, compiles, checks the rules,
//! runs `lab` on the site (every probe as the policy says), then builds its own three
//! namespaces (devices, firewall with the emitted ruleset, outside) and sends, for every ACE,
//! the packet it admits (must pass) and its mirror image or wrong-port twin (must be dropped).
//! A corpus file (Cisco's luminaire) is a device of the same site, so the lab also runs its
//! flows. It needs root; without it, it fails (`portolan-testkit`'s skip policy).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use portolan_lab::lab::{self, Options};
use portolan_lab::listen::Seen;
use portolan_lab::netns::Handle;
use portolan_lab::probes::{Fate, Kind, Probe, Traffic};
use portolan_lab::send::{self, Observed};
use portolan_model::ir::{Initiator, Policy, PortRange};
use portolan_model::{IpFamily, Profile};
use portolan_mud::ImportOptions;
use portolan_testkit::netns::{ip_in, must_in, Net};
use portolan_testkit::Profiles;

fn classes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/mud/classes")
}

/// Profiles named by a site: the MUD files of `classes/`, imported.
fn mud_file(name: &str) -> Result<Profile, portolan_model::ProfileError> {
    let path = match name.strip_prefix("corpus/") {
        Some(rel) => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/interop/mud")
            .join(rel),
        None => classes().join(name),
    };
    let bytes =
        std::fs::read(&path).map_err(|source| portolan_model::ProfileError::Unreadable {
            path: path.clone(),
            source,
        })?;
    let o = ImportOptions {
        strict: false,
        file: path.display().to_string(),
    };
    portolan_mud::import(&bytes, &o)
        .map(|i| i.profile)
        .map_err(|e| portolan_model::ProfileError::NotMud {
            path,
            reason: e.to_string(),
        })
}

const SITE: &str = r#"portolan: 1
site: mud-classes
zones:
  - id: field
    interface: lan0
    networks: [10.40.0.0/24, "fd00:40::/64"]
  - id: wan
    interface: wan0
services:
  dns: firewall
devices:
  - id: tdo
    profile: to-device-only.json
    zone: field
    addresses: [10.40.0.11]
    bind: {my-controller: [198.51.100.41]}
  - id: spb
    profile: same-port-both-sides.json
    zone: field
    addresses: [10.40.0.12/31]
    bind: {my-controller: [198.51.100.42]}
  - id: spo
    profile: source-port-only.json
    zone: field
    addresses: [10.40.0.21]
  - id: v4o
    profile: ipv4-only.json
    zone: field
    addresses: [10.40.0.31, "fd00:40::31"]
    bind: {my-controller: [198.51.100.20, "2001:db8:40::20"]}
  - id: ord
    profile: ordinary.json
    zone: field
    addresses: [10.40.0.41, "fd00:40::41"]
    bind: {my-controller: [198.51.100.50, "2001:db8:40::50"]}
  # From the corpus: Cisco's luminaire.
  - id: lum
    profile: corpus/CiscoDevNet+MUD-Manager/examples/luminaire/fs/Luminaire_150.json
    zone: field
    addresses: [10.40.0.51]
    bind: {my-controller: [198.51.100.60], local-networks: [10.40.0.0/24]}
"#;

fn compile() -> Policy {
    // Profiles named by the site: the MUD files of `classes/`, imported.
    Profiles::none()
        .or_else(mud_file)
        .compile("mud-classes.yaml", SITE)
}

fn range(p: u16) -> PortRange {
    PortRange { lo: p, hi: p }
}

/// One expected rule: device group, initiators, protocol, ports, source ports, family.
type Want = (
    &'static str,
    &'static [Initiator],
    u8,
    &'static [u16],
    &'static [u16],
    Option<IpFamily>,
);

const RULES: &[Want] = &[
    // Class 1: only the controller opens, from 47808 to 47808; IPv4 ACL.
    (
        "tdo",
        &[Initiator::Peer],
        17,
        &[47808],
        &[47808],
        Some(IpFamily::Ipv4),
    ),
    // Class 2: either side opens, each from 47808 to 47808.
    (
        "spb",
        &[Initiator::Device, Initiator::Peer],
        17,
        &[47808],
        &[47808],
        Some(IpFamily::Ipv4),
    ),
    // Class 3: HTTPS from the device only; the source-port-80 ACE opens nothing.
    (
        "spo",
        &[Initiator::Device],
        6,
        &[443],
        &[],
        Some(IpFamily::Ipv4),
    ),
    // Class 4: MQTT from the device, IPv4 only.
    (
        "v4o",
        &[Initiator::Device],
        6,
        &[8883],
        &[],
        Some(IpFamily::Ipv4),
    ),
    // Ordinary: HTTPS from the device, both families.
    ("ord", &[Initiator::Device], 6, &[443], &[], None),
];

#[test]
fn compiled_rules_are_the_rfc_reading_of_each_class() {
    let policy = compile();
    for (group, inits, proto, ports, src, fam) in RULES {
        let rules: Vec<_> = policy.rules_of(group).collect();
        let got: BTreeSet<Initiator> = rules.iter().map(|r| r.initiator).collect();
        let want: BTreeSet<Initiator> = inits.iter().copied().collect();
        assert_eq!(got, want, "{group}: who may open the flow");
        for r in &rules {
            assert_eq!(r.protocol.number(), *proto, "{group}: protocol");
            assert_eq!(
                r.ports,
                ports.iter().map(|p| range(*p)).collect::<Vec<_>>(),
                "{group}: destination ports"
            );
            assert_eq!(
                r.src_ports,
                src.iter().map(|p| range(*p)).collect::<Vec<_>>(),
                "{group}: source ports"
            );
            assert_eq!(r.family, *fam, "{group}: address family");
        }
    }
    // The back ends: the IPv4-only flow has no IPv6 rule, the dual one has both.
    let nft =
        portolan_emit::nftables::emit(&policy, &portolan_emit::Options::default()).expect("emit");
    let lines = |flow: &str| -> Vec<&str> {
        nft.lines()
            .filter(|l| l.contains(&format!("\"{flow}\"")) && l.contains("accept"))
            .collect()
    };
    let v4o = lines("ipv4-only/mqtt-out");
    assert!(
        !v4o.is_empty() && v4o.iter().all(|l| !l.contains("ip6 ")),
        "{v4o:#?}"
    );
    let ord = lines("ordinary/https-out");
    assert!(ord.iter().any(|l| l.contains("ip6 ")) && ord.iter().any(|l| l.contains("ip ")));
    let ipt = portolan_emit::iptables::emit(&policy, &portolan_emit::Options::default())
        .expect("emit iptables");
    let v6_part = ipt
        .split("#> ip6tables")
        .nth(1)
        .and_then(|r| r.split("#> ").next())
        .unwrap_or("");
    assert!(
        !v6_part.contains("ipv4-only/mqtt-out") && v6_part.contains("ordinary/https-out"),
        "the ip6tables part holds the dual flow only"
    );
}

/// A packet of the hand-written table: from, to, TCP or UDP, destination and source port,
/// whether RFC 8520/8519 admit it, and why.
struct Packet {
    src: &'static str,
    dst: &'static str,
    tcp: bool,
    dport: u16,
    sport: Option<u16>,
    pass: bool,
    why: &'static str,
}

const fn pk(
    src: &'static str,
    dst: &'static str,
    tcp: bool,
    dport: u16,
    sport: Option<u16>,
    pass: bool,
    why: &'static str,
) -> Packet {
    Packet {
        src,
        dst,
        tcp,
        dport,
        sport,
        pass,
        why,
    }
}

/// Dropped packets first: a dropped packet leaves no conntrack entry, an admitted one does
/// (and would admit its mirror image as a reply). Admitted packets use distinct 5-tuples.
const PACKETS: &[Packet] = &[
    // Class 1.
    pk(
        "10.40.0.11",
        "198.51.100.41",
        false,
        47808,
        Some(47808),
        false,
        "to-device-only: the device may not send first",
    ),
    pk(
        "198.51.100.41",
        "10.40.0.11",
        false,
        47808,
        Some(40001),
        false,
        "to-device-only: the ACE matches source port 47808 only",
    ),
    // Class 2.
    pk(
        "198.51.100.42",
        "10.40.0.12",
        false,
        47808,
        Some(40002),
        false,
        "same-port: the ACE matches source port 47808 only",
    ),
    pk(
        "10.40.0.12",
        "198.51.100.42",
        false,
        47808,
        Some(40003),
        false,
        "same-port: from the device too, source port 47808 only",
    ),
    // Class 3.
    pk(
        "198.51.100.80",
        "10.40.0.21",
        true,
        80,
        Some(80),
        false,
        "source-port-only: nothing opens port 80 on the device",
    ),
    pk(
        "198.51.100.80",
        "10.40.0.21",
        true,
        80,
        None,
        false,
        "source-port-only: nothing opens port 80 on the device",
    ),
    pk(
        "10.40.0.21",
        "198.51.100.80",
        true,
        80,
        None,
        false,
        "source-port-only: the device may not open port 80 either",
    ),
    pk(
        "198.51.100.80",
        "10.40.0.21",
        true,
        443,
        None,
        false,
        "source-port-only: the HTTPS server may not open the device",
    ),
    // Class 4.
    pk(
        "fd00:40::31",
        "2001:db8:40::20",
        true,
        8883,
        None,
        false,
        "ipv4-only: no IPv6 though both ends have it",
    ),
    pk(
        "198.51.100.20",
        "10.40.0.31",
        true,
        8883,
        None,
        false,
        "ipv4-only: the controller may not open the device",
    ),
    pk(
        "2001:db8:40::20",
        "fd00:40::31",
        true,
        8883,
        None,
        false,
        "ipv4-only: nor in IPv6",
    ),
    // Ordinary.
    pk(
        "198.51.100.50",
        "10.40.0.41",
        true,
        443,
        None,
        false,
        "ordinary: the controller may not open the device",
    ),
    pk(
        "2001:db8:40::50",
        "fd00:40::41",
        true,
        443,
        None,
        false,
        "ordinary: nor in IPv6",
    ),
    // Admitted.
    pk(
        "198.51.100.41",
        "10.40.0.11",
        false,
        47808,
        Some(47808),
        true,
        "to-device-only: the controller sends first",
    ),
    pk(
        "198.51.100.42",
        "10.40.0.12",
        false,
        47808,
        Some(47808),
        true,
        "same-port: the controller sends first",
    ),
    pk(
        "10.40.0.13",
        "198.51.100.42",
        false,
        47808,
        Some(47808),
        true,
        "same-port: the device sends first",
    ),
    pk(
        "10.40.0.21",
        "198.51.100.80",
        true,
        443,
        None,
        true,
        "source-port-only: the paired HTTPS flow",
    ),
    pk(
        "10.40.0.31",
        "198.51.100.20",
        true,
        8883,
        None,
        true,
        "ipv4-only: MQTT over IPv4",
    ),
    pk(
        "10.40.0.41",
        "198.51.100.50",
        true,
        443,
        None,
        true,
        "ordinary: HTTPS over IPv4",
    ),
    pk(
        "fd00:40::41",
        "2001:db8:40::50",
        true,
        443,
        None,
        true,
        "ordinary: HTTPS over IPv6",
    ),
];

/// Devices, firewall, outside: the firewall routes between `lan0` and `wan0` (the zones'
/// interfaces) and holds the emitted ruleset. Every address of the site is on its side.
fn build(net: &mut Net, ruleset: &str) -> (String, String) {
    let (d, f, o) = (net.ns("d"), net.ns("f"), net.ns("o"));
    for (ns, peer) in [(&d, "lan0"), (&o, "wan0")] {
        net.veth(&f, peer, ns, "eth0");
    }
    for a in ["10.40.0.1/24", "fd00:40::1/64"] {
        ip_in(&f, &["addr", "add", a, "dev", "lan0", "nodad"]);
    }
    for a in ["198.51.100.1/24", "2001:db8:40::1/64"] {
        ip_in(&f, &["addr", "add", a, "dev", "wan0", "nodad"]);
    }
    for a in [
        "10.40.0.11/24",
        "10.40.0.12/24",
        "10.40.0.13/24",
        "10.40.0.21/24",
        "10.40.0.31/24",
        "10.40.0.41/24",
        "fd00:40::31/64",
        "fd00:40::41/64",
    ] {
        ip_in(&d, &["addr", "add", a, "dev", "eth0", "nodad"]);
    }
    for a in [
        "198.51.100.20/24",
        "198.51.100.41/24",
        "198.51.100.42/24",
        "198.51.100.50/24",
        "198.51.100.80/24",
        "2001:db8:40::20/64",
        "2001:db8:40::50/64",
    ] {
        ip_in(&o, &["addr", "add", a, "dev", "eth0", "nodad"]);
    }
    ip_in(&d, &["route", "add", "default", "via", "10.40.0.1"]);
    ip_in(&d, &["-6", "route", "add", "default", "via", "fd00:40::1"]);
    ip_in(&o, &["route", "add", "default", "via", "198.51.100.1"]);
    ip_in(
        &o,
        &["-6", "route", "add", "default", "via", "2001:db8:40::1"],
    );
    must_in(
        &f,
        &[
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ],
        None,
    );
    must_in(&f, &["nft", "-f", "-"], Some(ruleset));
    (d, o)
}

fn send(ns: &str, p: &Packet) -> Observed {
    let src: IpAddr = p.src.parse().expect("address");
    let dst: IpAddr = p.dst.parse().expect("address");
    let probe = Probe {
        device: String::new(),
        flow: p.why.to_string(),
        kind: if p.pass {
            Kind::Required
        } else {
            Kind::Reversed
        },
        phase: 3,
        src,
        dst,
        to_firewall: false,
        broadcast: false,
        sport: p.sport,
        traffic: if p.tcp {
            Traffic::Tcp { port: p.dport }
        } else {
            Traffic::Udp { port: p.dport }
        },
        expected: if p.pass { Fate::Pass } else { Fate::Drop },
        skip: None,
        note: None,
        forged: None,
    };
    let h = Handle::open(ns).expect("namespace handle");
    std::thread::scope(|s| {
        s.spawn(|| {
            h.enter().expect("enter the namespace");
            send::attempt(&probe, Duration::from_millis(800), &Seen::default())
        })
        .join()
        .unwrap_or_else(|_| Observed::Error("sender panicked".into()))
    })
}

#[test]
fn each_class_admits_what_its_aces_admit_on_a_kernel() {
    let policy = compile();

    // The lab: every probe it derives from the policy behaves as the policy says.
    let r = lab::run(&policy, &Options::default(), &|m: &str| {
        eprintln!("    lab: {m}")
    })
    .expect("lab runs");
    for row in r.rows.iter().filter(|r| !r.ok) {
        eprintln!(
            "    LAB MISMATCH {} {} {:?} {} {} -> {}: expected {}, observed {:?}",
            row.device,
            row.flow,
            row.kind,
            row.traffic,
            row.src,
            row.dst,
            row.expected.as_str(),
            row.observed
        );
    }
    assert!(
        r.all_match(),
        "{} lab probes mismatched",
        r.summary.mismatched
    );
    assert!(
        r.summary.expected_pass >= 5,
        "the lab sent the admitted flows"
    );
    for dev in ["tdo", "spb", "spo", "v4o", "ord", "lum"] {
        let rows: Vec<_> = r.rows.iter().filter(|x| x.device == dev).collect();
        eprintln!(
            "    lab {dev}: {}",
            rows.iter()
                .map(|x| format!("{:?} {} {} {:?}", x.kind, x.traffic, x.dst, x.observed))
                .collect::<Vec<_>>()
                .join("; ")
        );
        assert!(
            rows.iter()
                .any(|x| x.kind == Kind::Required && x.observed == Observed::Pass),
            "the lab proved no flow of {dev}"
        );
    }

    // The hand-written packets.
    let ruleset =
        portolan_emit::nftables::emit(&policy, &portolan_emit::Options::default()).expect("emit");
    let mut net = Net::new();
    let (devices, outside) = build(&mut net, &ruleset);
    let mut wrong = Vec::new();
    for p in PACKETS {
        let ns = if p.src.starts_with("10.") || p.src.starts_with("fd00:") {
            &devices
        } else {
            &outside
        };
        let o = send(ns, p);
        // A reset or a port-unreachable came from the destination host: the packet passed.
        let passed = matches!(o, Observed::Pass | Observed::Refused);
        let dropped = o == Observed::Drop;
        let ok = if p.pass { passed } else { dropped };
        eprintln!(
            "    {} {} {}:{}/{} -> {}: {:?} ({})",
            if ok { "ok  " } else { "FAIL" },
            if p.tcp { "tcp" } else { "udp" },
            p.src,
            p.sport.map_or("*".to_string(), |s| s.to_string()),
            p.dport,
            p.dst,
            o,
            p.why
        );
        if !ok {
            wrong.push(p.why);
        }
    }
    drop(net);
    assert!(
        wrong.is_empty(),
        "packets the MUD files do not admit passed, or admitted ones were dropped: {wrong:#?}"
    );
}
