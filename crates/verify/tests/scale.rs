//! How the evaluator's work grows, counted (not timed: the count does not depend on the
//! machine's load). [`portolan_verify::eval::work`] counts every (box, rule) pair the
//! evaluator looks at and every verdict-map element it splits a box on.
//!
//! - Devices: one-device groups, each with its own chains behind the per-address dispatch
//!   maps (the worst case for verify). Each group adds a fixed number of chains and rules,
//!   and a box of one device's packets visits only the map elements whose chains can act
//!   on it, found in a tree of depth log2(elements). So 4× the devices may cost at most
//!   4 × log2(512)/log2(128) = 4 × 9/7 ≈ 5.2× the work. The quadratic evaluation this
//!   replaced (every device's boxes split on every other device's map element) costs 16×.
//! - Run-time sets: a chain of K rules `ip daddr @sK tcp dport PK accept` (the shape of
//!   the MUD files of Amazon Echo and others: a DNS-filled set per name). A class of every
//!   new packet is cut by port first, so after k rules it is in at most 3 + 2k boxes and
//!   the chain costs at most Σ(3 + 2k) = 3K + K(K-1) box-rule pairs; cut by set first it
//!   would double at every rule (2^K boxes; 2^20 exhausted 3 GB of memory).
//!
//! Needs root (the rulesets are loaded by `nft` into scratch namespaces).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use portolan_model::catalog::Catalog;
use portolan_model::ir::Policy;
use portolan_verify::eval::{work, Outcome};
use portolan_verify::program::Path;
use portolan_verify::site::{DnsFills, Status};
use portolan_verify::space::{CtState, Dim, Iv};

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A site of `n` one-device groups, cycling through four catalog profiles: ThingPark LRR
/// (peers in the mgmt zone, inbound rules from them), Izuma (DNS-filled sets), Oscar
/// (a static peer set and names) and DIMENSION4 (many static peers, both ways).
fn site(n: usize) -> String {
    let mut s = String::from(
        "portolan: 1\nsite: scale\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.0.0.0/8]\n  - id: mgmt\n    interface: mgmt0\n    networks: [172.16.0.0/12]\n  - id: wan\n    interface: wan0\nservices:\n  dns: firewall\n  dhcp: firewall\n  ntp: [172.16.255.123]\ndevices:\n",
    );
    for d in 0..n {
        let r = d % 10;
        let srv = |h: usize| format!("172.16.{r}.{h}");
        write!(
            s,
            "  - id: g{d}\n    zone: field\n    addresses: [10.0.{}.{}]\n",
            d >> 8,
            d & 255
        )
        .expect("a String takes any text");
        match d % 4 {
            0 => write!(
                s,
                "    profile: thingpark-lrr\n    mode: ipsec\n    version: \"2.9\"\n    bind:\n      slrc: [{}]\n      support: [{}]\n",
                srv(10),
                srv(22)
            )
            .expect("a String takes any text"),
            1 => s.push_str("    profile: izuma-device-management\n    mode: device\n"),
            2 => s.push_str("    profile: oscar-templog-gateway\n"),
            _ => {
                s.push_str("    profile: ubisense-dimension4-sensor\n    mode: static\n    bind:\n");
                for (i, role) in [
                    "configuration-server",
                    "boot-configuration-server",
                    "boot-file-server",
                    "location-configuration-server",
                    "configuration-distribution-server",
                    "location-sink",
                    "dimension4-server",
                    "dimension4-peer",
                ]
                .iter()
                .enumerate()
                {
                    writeln!(s, "      {role}: [{}]", srv(40 + i % 3)).expect("a String takes any text");
                }
                s.push_str("    flows:\n");
                for (f, proto, port) in [
                    ("config-server-search", "udp", 5000),
                    ("boot-config-request", "udp", 5001),
                    ("boot-file-download", "tcp", 5002),
                    ("location-registration", "tcp", 5003),
                    ("location-config-distribution", "tcp", 5004),
                    ("status-location", "udp", 5005),
                    ("remote-ops", "tcp", 5007),
                    ("event-channel", "tcp", 5008),
                ] {
                    writeln!(s, "      {f}: {{protocol: {proto}, ports: {port}}}").expect("a String takes any text");
                }
                s.push_str("      raw-udp: {ports: 5006}\n");
            }
        }
    }
    s
}

fn policy(text: &str) -> Policy {
    let cat = Catalog::embedded().expect("catalog");
    match portolan_model::compile::site_text("scale.yaml", text, &cat) {
        Ok(l) => l.value,
        Err(d) => panic!(
            "the generated site does not compile: {} errors, first {:?}",
            d.len(),
            d.first()
        ),
    }
}

/// (flows work, excess work) of verifying a site of `n` groups against its own ruleset;
/// asserts the check's outcome (every flow permitted, no excess: the emitter's contract).
fn site_work(n: usize) -> (u64, u64) {
    let policy = policy(&site(n));
    assert_eq!(policy.groups.len(), n);
    let nft =
        portolan_emit::nftables::emit(&policy, &portolan_emit::Options::default()).expect("emit");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ruleset.nft");
    std::fs::write(&file, &nft).expect("write");
    let doc = portolan_verify::source::json_of_file(&file).expect("nft loads the ruleset");
    let dnsmasq = portolan_emit::emit(
        portolan_emit::Target::Dnsmasq,
        &policy,
        &portolan_emit::Options::default(),
    )
    .expect("dnsmasq");
    let dns = DnsFills::from_dnsmasq(&dnsmasq);
    let prog = portolan_verify::program_for_site(&doc, Some(&nft), &policy, &dns).expect("lower");
    let w0 = work();
    let flows = portolan_verify::site::flows(&policy, &prog, &dns);
    let w1 = work();
    let excess = portolan_verify::site::excess(&policy, &prog, &dns);
    let w2 = work();
    for f in &flows {
        assert_eq!(f.status, Status::Permitted, "{} {}", f.group, f.flow);
    }
    assert!(excess.is_empty(), "{n} groups: excess {excess:?}");
    eprintln!(
        "{n} groups, {} IR rules: work {} (flows), {} (excess)",
        policy.rules.len(),
        w1 - w0,
        w2 - w1
    );
    (w1 - w0, w2 - w1)
}

#[test]
fn verify_work_grows_linearly_with_devices() {
    assert!(
        is_root(),
        "nft lists the rulesets in scratch namespaces: run as root"
    );
    let (f1, e1) = site_work(100);
    let (f4, e4) = site_work(400);
    // The bound of the module comment: 4x devices, x 9/7 for the trees' depth.
    let bound = 4.0 * 9.0 / 7.0;
    let fr = f4 as f64 / f1 as f64;
    let er = e4 as f64 / e1 as f64;
    eprintln!("100 -> 400 groups: flows x{fr:.2}, excess x{er:.2} (bound x{bound:.2})");
    assert!(fr <= bound, "flows work grew x{fr:.2} for 4x devices");
    assert!(er <= bound, "excess work grew x{er:.2} for 4x devices");
}

/// The MUD shape: `k` rules, each a set of its own and one of three ports. Returns (work,
/// pieces) of one evaluation of every new IPv4 TCP and UDP packet from the device, and checks
/// every piece's verdict against the rule list read by hand.
fn sets_work(k: usize) -> (u64, usize) {
    let ports = [443u16, 80, 123];
    let mut nft = String::from("table inet t {\n");
    for i in 0..k {
        writeln!(
            nft,
            "  set s{i} {{ type ipv4_addr; flags timeout; timeout 3600s; }}"
        )
        .expect("a String takes any text");
    }
    nft.push_str(
        "  chain forward_filter {\n    type filter hook forward priority filter; policy drop;\n",
    );
    for i in 0..k {
        let proto = if ports[i % 3] == 123 { "udp" } else { "tcp" };
        writeln!(
            nft,
            "    ip saddr 10.0.0.1 ip daddr @s{i} {proto} dport {} accept",
            ports[i % 3]
        )
        .expect("a String takes any text");
    }
    nft.push_str("  }\n}\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sets.nft");
    std::fs::write(&file, &nft).expect("write");
    let doc = portolan_verify::source::json_of_file(&file).expect("nft loads the ruleset");
    let opts = portolan_verify::lower::Options {
        dynamic_sets: (0..k)
            .map(|i| ("t".to_string(), format!("s{i}")))
            .collect::<BTreeSet<_>>(),
        interfaces: vec!["lan0".into()],
        lines: Default::default(),
    };
    let prog = portolan_verify::lower::lower(&doc, &opts).expect("lower");
    assert_eq!(prog.dynamic.len(), k);
    let mut c = prog.all();
    c.set(Dim::Family, Iv::point(0));
    c.set(Dim::Saddr, Iv::point(0x0a00_0001));
    c.set(Dim::Daddr, Iv::new(0, u128::from(u32::MAX)));
    c.set(Dim::Ct, Iv::point(CtState::New.value()));
    let w0 = work();
    let pieces = prog.evaluate(Path::Forward, &c);
    let w = work() - w0;
    // Each piece's verdict, at each of its corners on the port and set axes, is the rule
    // list's: accepted when some rule's set holds the address and its protocol and port
    // are the packet's.
    let axis_of_set = |i: usize| {
        prog.dynamic_axis("t", &format!("s{i}"), "ip daddr")
            .expect("a set axis")
    };
    for p in &pieces {
        for corner in 0..4u8 {
            let pick = |iv: Iv, hi: bool| if hi { iv.hi } else { iv.lo };
            let proto = pick(p.class.get(Dim::Proto), corner & 1 == 1);
            let port = pick(p.class.get(Dim::Dport), corner & 2 == 2);
            let want = (0..k).any(|i| {
                let want_proto = if ports[i % 3] == 123 { 17 } else { 6 };
                let a = axis_of_set(i);
                p.class.iv[a].hi == 1
                    && p.class.iv[a].lo == 1
                    && proto == want_proto
                    && port == u128::from(ports[i % 3])
            });
            // A piece is one verdict for all its packets: a corner that one rule accepts
            // and the piece's set axes do not pin is a piece that mixes verdicts.
            let accepted = p.outcome == Outcome::Accept;
            if want {
                assert!(accepted, "{k} sets: {:?} denied", p.class);
            } else if accepted {
                let pinned = (0..k).any(|i| {
                    let a = axis_of_set(i);
                    p.class.iv[a] == Iv::point(1)
                        && proto == if ports[i % 3] == 123 { 17 } else { 6 }
                        && port == u128::from(ports[i % 3])
                });
                assert!(pinned, "{k} sets: {:?} accepted", p.class);
            }
        }
    }
    (w, pieces.len())
}

#[test]
fn rules_on_many_run_time_sets_cost_polynomial_work() {
    assert!(
        is_root(),
        "nft lists the rulesets in scratch namespaces: run as root"
    );
    for k in [10usize, 20] {
        let (w, n) = sets_work(k);
        // The hand bound of the module comment, for the one chain (plus one pair per box
        // for the base chain's policy, which the count does not include: boxes end there).
        let bound = (3 * k + k * (k - 1)) as u64;
        eprintln!("{k} rules on {k} run-time sets: {n} pieces, work {w} (bound {bound})");
        assert!(n <= 3 + 2 * k + k, "{k} sets: {n} pieces");
        assert!(w <= bound, "{k} sets: work {w} over {bound}");
    }
}
