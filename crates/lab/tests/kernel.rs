//! Kernel tests of `lab` and `apply`: real network namespaces, real nftables, real dnsmasq.
//!
//! One test binary (`harness = false`, libtest-mimic) runs its trials one after another, so no
//! two of them compete for the kernel, and checks after each that no namespace named after this
//! process (`pl<pid>…`) is left. The lab fixtures are data: [`FIXTURES`] gives one trial per
//! site fixture (and ruleset), each checked against its hand-written flow table
//! (`tests/data/flows/`, see `kernel/flows.rs`) besides the lab's own verdicts. Skips follow
//! `portolan-testkit`'s one policy: where the kernel lacks namespaces or nf_tables each trial
//! is reported as ignored under a loud banner; a machine that is not root or lacks a tool
//! fails them.
//!
//! The binary also stands in for `portolan apply-rollback`: `apply --confirm` re-executes the
//! program it is told to, and here that is this binary with the argument `apply-rollback`.
//!
//! Over 800 lines, for now: the `apply` trials (and the rollback stand-in) move with `apply`
//! itself to the nftables crate (issue 22, point 5), which leaves the lab's.

#[path = "kernel/flows.rs"]
mod flows;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

use portolan_lab::facts::Facts;
use portolan_lab::lab::{self, Options};
use portolan_lab::netns;
use portolan_lab::probes::{Fate, Kind};
use portolan_lab::report::Report;
use portolan_lab::send::Observed;
use portolan_model::ir::Policy;
use portolan_nft::apply::{self, Confirmation, Launcher};
use portolan_nft::diff::{self, Change};
use portolan_nft::table as nft;
use portolan_nft::Where;
use portolan_testkit::netns::wait_for;
use portolan_testkit::{Netns, Profiles};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A site's policy and the facts it states.
fn compile(path: &Path) -> (Policy, Facts) {
    let text = std::fs::read_to_string(path).expect("site file");
    // The catalog, and profile files under `tests/data`.
    let policy = Profiles::catalog()
        .files(&data(""))
        .compile(&path.display().to_string(), &text);
    let facts = Facts::from_site(&text, &policy).expect("site facts");
    (policy, facts)
}

fn example() -> (Policy, Facts) {
    compile(&workspace().join("examples/site.yaml"))
}

/// `opts` with the site's facts.
fn with(facts: Facts, opts: Options) -> Options {
    Options {
        facts: Some(facts),
        ..opts
    }
}

fn example_policy() -> Policy {
    example().0
}

fn emit(p: &Policy) -> String {
    portolan_emit::nftables::emit(p, &portolan_emit::Options::default()).expect("emit")
}

fn progress(m: &str) {
    eprintln!("    lab: {m}");
}

fn show_mismatches(r: &Report) {
    for row in r.rows.iter().filter(|r| !r.ok) {
        eprintln!(
            "    MISMATCH {} {} {} {:?} {} -> {}: expected {}, observed {:?}",
            row.device,
            row.flow,
            row.src,
            row.kind,
            row.traffic,
            row.dst,
            row.expected.as_str(),
            row.observed
        );
    }
}

fn assert_gone(r: &Report) {
    let now = netns::list().expect("ip netns list");
    for ns in &r.namespaces {
        assert!(!now.contains(ns), "namespace {ns} was left behind");
    }
}

// ---- lab ------------------------------------------------------------------------------

fn example_site_lab_passes(r: &Report) {
    eprintln!(
        "    {} probes: {} expected pass, {} expected drop, {} mismatched, {} skipped, {:.1} s",
        r.summary.probes,
        r.summary.expected_pass,
        r.summary.expected_drop,
        r.summary.mismatched,
        r.summary.skipped,
        r.summary.seconds
    );
    assert!(
        r.all_match(),
        "{} probes did not behave as the policy says",
        r.summary.mismatched
    );
    assert!(r.summary.expected_pass >= 60 && r.summary.expected_drop >= 60);
    for k in [
        Kind::Required,
        Kind::Dns,
        Kind::OtherPort,
        Kind::OtherPeer,
        Kind::OtherDevice,
        Kind::Reversed,
        Kind::UnresolvedName,
        Kind::UnlistedName,
    ] {
        assert!(r.rows.iter().any(|x| x.kind == k), "no {k:?} probe");
    }
    let sent = |t: &str, v: Fate| {
        r.rows.iter().any(|x| {
            x.traffic.starts_with(t) && x.expected == v && !matches!(x.observed, Observed::Skip(_))
        })
    };
    for t in ["tcp/", "udp/", "icmp echo", "esp", "dns "] {
        assert!(sent(t, Fate::Pass), "no passing {t} probe");
        assert!(sent(t, Fate::Drop), "no dropped {t} probe");
    }
    assert!(r
        .rows
        .iter()
        .any(|x| x.dst.starts_with("broadcast") && x.observed == Observed::Pass));
    assert!(r
        .rows
        .iter()
        .any(|x| x.dst.starts_with("firewall") && x.expected == Fate::Drop));
}

/// `lab --dns enforce` on the example site: `portolan enforce` is the firewall's resolver and
/// the enforce policy is loaded. Every probe behaves as expected; each name-based flow of the
/// groups with room for a second device (izuma-devices 10.20.0.64/28 and oscar-gateways
/// 10.20.0.32/28 in examples/site.yaml) passes from the device that resolved the name and is
/// dropped from the group's other device, which never asked, while that device's flow to a
/// fixed address (Oscar's 54.229.203.190, stated by the site's profile) passes.
fn example_site_under_enforce() {
    let (policy, facts) = example();
    let opts = Options {
        dns: lab::DnsMode::Enforce,
        ..Options::default()
    };
    let r = lab::run(&policy, &with(facts, opts), &progress).expect("lab runs");
    show_mismatches(&r);
    assert_gone(&r);
    assert!(
        r.all_match(),
        "{} probes did not behave as expected under enforce",
        r.summary.mismatched
    );
    let silent: Vec<_> = r
        .rows
        .iter()
        .filter(|x| x.kind == Kind::UnresolvedDevice)
        .collect();
    let groups: std::collections::BTreeSet<&str> =
        silent.iter().map(|x| x.device.as_str()).collect();
    assert_eq!(
        groups.into_iter().collect::<Vec<_>>(),
        ["izuma-devices", "oscar-gateways"]
    );
    let inside = |a: IpAddr, net: &str| net.parse::<ipnet::IpNet>().expect("prefix").contains(&a);
    for x in &silent {
        assert_eq!(x.observed, Observed::Drop, "{x:?}");
        let net = if x.device == "izuma-devices" {
            "10.20.0.64/28"
        } else {
            "10.20.0.32/28"
        };
        assert!(
            inside(x.src, net),
            "{} is not a device of {}",
            x.src,
            x.device
        );
        // The same flow from the device that resolved the name passed.
        assert!(
            r.rows.iter().any(|y| y.kind == Kind::Required
                && y.flow == x.flow
                && y.dst == x.dst
                && y.traffic == x.traffic
                && y.src != x.src
                && inside(y.src, net)
                && y.observed == Observed::Pass),
            "no passing twin of {x:?}"
        );
    }
    let oscar_silent = silent
        .iter()
        .find(|x| x.device == "oscar-gateways")
        .map(|x| x.src)
        .expect("an oscar probe");
    assert!(r.rows.iter().any(|y| y.kind == Kind::Required
        && y.src == oscar_silent
        && y.dst == "54.229.203.190"
        && y.observed == Observed::Pass));
    assert!(r
        .notes
        .iter()
        .any(|n| n.starts_with("DNS: portolan enforce")));
}

fn broken_ruleset_is_caught() {
    let (policy, facts) = example();
    let mut broken = policy.clone();
    broken
        .rules
        .retain(|r| !(r.group == "lrr-ipsec" && r.flow == "i7a"));
    let opts = Options {
        ruleset: Some(emit(&broken)),
        ..Options::default()
    };
    let r = lab::run(&policy, &with(facts, opts), &progress).expect("lab runs");
    let bad: Vec<_> = r.rows.iter().filter(|x| !x.ok).collect();
    assert!(
        !r.all_match(),
        "a ruleset without thingpark-lrr/i7a must fail the lab"
    );
    for x in &bad {
        assert_eq!(
            x.flow, "thingpark-lrr/i7a",
            "only the removed flow fails: {x:?}"
        );
        assert_eq!((x.expected, &x.observed), (Fate::Pass, &Observed::Drop));
    }
    // tcp/3001 and tcp/3003 from the LRR, each sent as it is (required) and forged from the
    // LRR's own zone (the control of the spoofed probes).
    let kinds: Vec<Kind> = bad.iter().map(|x| x.kind).collect();
    assert_eq!(bad.len(), 4, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == Kind::Required).count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == Kind::Forged).count(), 2);
    assert_gone(&r);
}

fn ipv6_and_wildcard_site_passes(r: &Report) {
    assert!(r.all_match(), "{} mismatched", r.summary.mismatched);
    let v6 = |x: &&portolan_lab::report::Row| matches!(x.src, IpAddr::V6(_));
    assert!(r
        .rows
        .iter()
        .filter(v6)
        .any(|x| x.observed == Observed::Pass && x.kind == Kind::Required));
    assert!(r
        .rows
        .iter()
        .filter(v6)
        .any(|x| x.observed == Observed::Drop));
    assert!(
        r.rows
            .iter()
            .any(|x| x.traffic.contains("portolan-lab.mbedcloud.com")
                && x.observed == Observed::Pass),
        "the wildcard's test name resolves through the firewall"
    );
    assert!(
        r.rows.iter().any(|x| x.flow.contains("wildcard")
            && x.kind == Kind::Required
            && x.observed == Observed::Pass),
        "a wildcard flow passes after DNS"
    );
    // IPv6 packets forged whole reach their receiver from their own zone and are dropped
    // from another.
    assert!(r
        .rows
        .iter()
        .filter(v6)
        .any(|x| x.kind == Kind::Forged && x.observed == Observed::Pass));
    assert!(r
        .rows
        .iter()
        .filter(v6)
        .any(|x| x.kind == Kind::Spoofed && x.observed == Observed::Drop));
}

// ---- apply ----------------------------------------------------------------------------

struct Scratch {
    ns: String,
    state: tempfile::TempDir,
    /// Removes the namespace when the scratch is dropped, also when the trial panics.
    space: Netns,
}

impl Scratch {
    fn new(role: &str) -> Scratch {
        let space = Netns::new(role);
        Scratch {
            ns: space.name().to_string(),
            state: tempfile::tempdir().expect("tempdir"),
            space,
        }
    }

    fn at(&self) -> Where {
        Where::Netns(self.ns.clone())
    }

    fn opts(&self, confirm: Option<u64>) -> apply::Options {
        apply::Options {
            target: self.at(),
            state_dir: self.state.path().to_path_buf(),
            confirm: confirm.map(Duration::from_secs),
            launcher: Some(Launcher {
                program: std::env::current_exe().expect("this test binary"),
                args: vec!["apply-rollback".into()],
            }),
        }
    }

    fn table(&self) -> Option<String> {
        nft::list_table(&self.at()).expect("nft list")
    }

    fn close(self) {
        let Scratch { ns, state, space } = self;
        drop((state, space));
        assert!(!netns::list().expect("list").contains(&ns));
    }
}

// ---- the adversarial probes, against hand-written rulesets ------------------------------

const ADVERSARIAL: [Kind; 5] = [
    Kind::Spoofed,
    Kind::ForeignMac,
    Kind::UnboundPeer,
    Kind::NarrowedPort,
    Kind::Unicast,
];

/// A ruleset that admits exactly what the site states drops every adversarial probe; the
/// forged controls pass, so the forged packets are well-formed.
fn adversarial_probes_drop_on_an_exact_ruleset(r: &Report) {
    assert!(r.all_match(), "{} mismatched", r.summary.mismatched);
    for k in ADVERSARIAL {
        assert!(
            r.rows
                .iter()
                .any(|x| x.kind == k && x.observed == Observed::Drop && x.ok),
            "no dropped {k:?} probe"
        );
    }
    let control = |x: &&portolan_lab::report::Row| x.kind == Kind::Forged;
    assert!(r.rows.iter().filter(control).count() >= 3);
    assert!(r
        .rows
        .iter()
        .filter(control)
        .all(|x| x.observed == Observed::Pass));
    // Each passing required probe was admitted by its own flow's rule.
    for x in r.rows.iter().filter(|x| x.kind == Kind::Required) {
        assert_eq!(x.admitted_by.as_deref(), Some(x.flow.as_str()), "{x:?}");
    }
}

/// A ruleset with each mistake of issue 9 is caught by the probe meant for it.
fn adversarial_probes_catch_a_wide_ruleset(r: &Report) {
    let caught = |k: Kind, src: &str, dst: &str, traffic: &str| {
        r.rows.iter().any(|x| {
            x.kind == k
                && !x.ok
                && x.observed == Observed::Pass
                && x.src.to_string() == src
                && x.dst == dst
                && x.traffic.starts_with(traffic)
        })
    };
    // The management host's address, sent from the WAN side, reaches the device.
    assert!(caught(Kind::Spoofed, "10.99.0.40", "10.20.0.7", "tcp/22"));
    assert!(caught(
        Kind::Spoofed,
        "10.99.0.40",
        "10.20.0.7",
        "udp/47808"
    ));
    // The device's address, sent from the WAN side, reaches the collector.
    assert!(caught(Kind::Spoofed, "10.20.0.7", "10.99.0.50", "udp/5140"));
    assert!(r
        .rows
        .iter()
        .any(|x| x.kind == Kind::Spoofed && !x.ok && x.sent_from.as_deref() == Some("zone wan")));
    // A management address the site does not bind opens the control port.
    assert!(caught(
        Kind::UnboundPeer,
        "10.99.0.253",
        "10.20.0.7",
        "udp/47808"
    ));
    // The documented range's ends, which the site narrowed away.
    assert!(caught(
        Kind::NarrowedPort,
        "10.99.0.40",
        "10.20.0.7",
        "udp/47809"
    ));
    assert!(caught(
        Kind::NarrowedPort,
        "10.99.0.40",
        "10.20.0.7",
        "udp/47823"
    ));
    // The multicast announcement's port, unicast into the management zone.
    assert!(caught(
        Kind::Unicast,
        "10.20.0.7",
        "10.99.0.253",
        "udp/1900"
    ));
    // DHCP discovery from a MAC that is not the device's, on its segment.
    assert!(caught(
        Kind::ForeignMac,
        "10.20.0.253",
        "broadcast 255.255.255.255",
        "udp/67"
    ));
    // SSH passes, but through the control flow's rule.
    assert!(r.rows.iter().any(|x| x.kind == Kind::Required
        && x.flow == "lab-attack/admin"
        && x.observed == Observed::Pass
        && !x.ok
        && x.admitted_by.as_deref() == Some("lab-attack/control")));
    assert!(!r.all_match());
}

/// A ruleset that accepts established traffic before it checks interfaces lets a spoofed
/// packet in when it has the tuple of a real flow: the report flow's fixed ports (5140 to
/// 5140) make the device's address, spoofed from the WAN side, part of the device's own
/// conversation with its collector. The spoofed probes are sent after the real flows, so this
/// is caught every time; flows with random source ports are not affected.
fn spoofing_into_established_flows_is_caught() {
    let exact = std::fs::read_to_string(data("attack-exact.nft")).expect("ruleset");
    let ct_first = exact.replace(
        "policy drop;\n\t\tiifname",
        "policy drop;\n\t\tct state established,related accept\n\t\tiifname",
    );
    assert_ne!(ct_first, exact);
    let (policy, facts) = compile(&data("attack-site.yaml"));
    let opts = Options {
        ruleset: Some(ct_first),
        ..Options::default()
    };
    let r = lab::run(&policy, &with(facts, opts), &progress).expect("lab runs");
    assert_gone(&r);
    let bad: Vec<_> = r.rows.iter().filter(|x| !x.ok).collect();
    assert!(!bad.is_empty());
    for x in &bad {
        assert_eq!(x.kind, Kind::Spoofed, "{x:?}");
        assert_eq!(x.traffic, "udp/5140 from port 5140", "{x:?}");
        assert_eq!(x.dst, "10.99.0.50", "{x:?}");
        assert_eq!(x.sent_from.as_deref(), Some("zone wan"), "{x:?}");
    }
}

/// A mistake made before the IR: the compiled policy (and so the ruleset emitted from it, and
/// every expectation the IR gives) widens the operator's binding to the whole management
/// network and opens the control range the site narrowed. The IR's own negatives agree with
/// it; the adversarial probes, judged by the site file, do not.
fn too_wide_policy_is_caught() {
    let (policy, facts) = compile(&data("attack-site.yaml"));
    let mut wide = policy.clone();
    let mgmt: ipnet::IpNet = "10.99.0.0/24".parse().expect("prefix");
    for r in wide
        .rules
        .iter_mut()
        .filter(|r| r.flow == "control" || r.flow == "admin")
    {
        r.peers.prefixes = vec![mgmt];
        if r.flow == "control" {
            r.ports = vec![portolan_model::ir::PortRange {
                lo: 47808,
                hi: 47823,
            }];
        }
    }
    let r = lab::run(&wide, &with(facts, Options::default()), &progress).expect("lab runs");
    assert_gone(&r);
    let bad: Vec<_> = r.rows.iter().filter(|x| !x.ok).collect();
    for x in &bad {
        assert!(
            x.kind.adversarial(),
            "only the site's facts disagree: {x:?}"
        );
        assert_eq!(x.observed, Observed::Pass, "{x:?}");
    }
    let caught = |k: Kind, src: Option<&str>, traffic: &str| {
        bad.iter().any(|x| {
            x.kind == k
                && src.is_none_or(|s| x.src.to_string() == s)
                && x.traffic == traffic
                && x.dst == "10.20.0.7"
        })
    };
    // The policy's stand-in for the widened peer (the network's first host) and the zone's
    // stranger: neither is the bound operator.
    assert!(caught(Kind::UnboundPeer, Some("10.99.0.1"), "udp/47808"));
    assert!(caught(Kind::UnboundPeer, Some("10.99.0.253"), "udp/47808"));
    assert!(caught(Kind::UnboundPeer, Some("10.99.0.253"), "tcp/22"));
    assert!(caught(Kind::NarrowedPort, None, "udp/47809"));
    assert!(caught(Kind::NarrowedPort, None, "udp/47823"));
    // The operator the site binds is spoofed from the WAN side although the policy no longer
    // names it (the spoofing check of the emitted ruleset covers the whole zone: dropped).
    assert!(r.rows.iter().any(|x| x.kind == Kind::Spoofed
        && x.src.to_string() == "10.99.0.40"
        && x.sent_from.as_deref() == Some("zone wan")
        && x.observed == Observed::Drop));
}

/// What Portolan emits for the adversarial fixture passes every probe: spoofed sources
/// dropped by interface, DHCP only from the device's MAC, the multicast flow on its group
/// only, the narrowed port alone, the bound operator alone.
fn attack_site_emitted_ruleset_passes(r: &Report) {
    assert!(r.all_match(), "{} mismatched", r.summary.mismatched);
    for k in ADVERSARIAL {
        assert!(
            r.rows
                .iter()
                .any(|x| x.kind == k && x.observed == Observed::Drop),
            "no dropped {k:?} probe"
        );
    }
    assert!(r.rows.iter().any(|x| x.kind == Kind::Required
        && x.sent_from.as_deref() == Some("zone field, MAC 02:00:5e:10:00:07")
        && x.observed == Observed::Pass
        && x.admitted_by.as_deref() == Some("lab-attack/dhcp")));
}

fn without_wcc(p: &Policy) -> Policy {
    let mut b = p.clone();
    b.groups.retain(|g| g.id != "wcc-lite");
    b.rules.retain(|r| r.group != "wcc-lite");
    b
}

fn apply_rolls_back_unless_confirmed() {
    let s = Scratch::new("apply");
    let a = emit(&example_policy());
    let b = emit(&without_wcc(&example_policy()));

    let first = apply::apply(&a, &s.opts(None)).expect("first apply");
    assert!(!first.had_previous);
    let table_a = s.table().expect("table loaded");
    assert!(
        table_a.contains("wcc"),
        "the first ruleset has the WCC Lite chains"
    );

    let second = apply::apply(&b, &s.opts(Some(2))).expect("apply with --confirm 2");
    assert!(second.had_previous && second.pending.is_some());
    let stale = |prefix: &str| {
        second
            .stale_deleted
            .iter()
            .any(|o| o.starts_with(prefix) && o.contains("wcc"))
    };
    assert!(
        stale("chain k_") && stale("chain drop_"),
        "{:?}",
        second.stale_deleted
    );
    let table_b = s.table().expect("table");
    assert!(
        !table_b.contains("wcc"),
        "stale objects deleted in the same transaction"
    );
    assert!(
        apply::apply(&a, &s.opts(None)).is_err(),
        "a second apply while one awaits confirmation is refused"
    );

    // Not confirmed: the timer restores table A.
    wait_for(
        "the rollback",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || s.table().map(|t| nft::normalize(&t)) == Some(nft::normalize(&table_a)),
    );
    let record = std::fs::read_to_string(
        s.state
            .path()
            .join(format!("netns-{}", s.ns))
            .join("last-rollback.json"),
    )
    .expect("rollback record");
    assert!(record.contains("\"ok\":true"), "{record}");
    let Confirmation::TooLate { detail } =
        apply::confirm(&s.at(), s.state.path()).expect("confirm")
    else {
        panic!("the rollback ran: too late to confirm");
    };
    // A sentence for a person, not the JSON record.
    assert!(
        detail.starts_with("the apply was rolled back ") && !detail.contains('{'),
        "{detail}"
    );

    // Confirmed in time: table B stays. The earlier rollback's record stays in the folder
    // until this apply loads; after it, nothing may report that rollback again.
    apply::apply(&b, &s.opts(Some(2))).expect("apply with --confirm 2");
    assert!(matches!(
        apply::confirm(&s.at(), s.state.path()).expect("confirm"),
        Confirmation::Confirmed { .. }
    ));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        s.table().map(|t| nft::normalize(&t)),
        Some(nft::normalize(&table_b)),
        "confirmed: stays"
    );
    // Confirming again says it was confirmed, not that it was rolled back.
    assert!(matches!(
        apply::confirm(&s.at(), s.state.path()).expect("confirm"),
        Confirmation::AlreadyConfirmed { .. }
    ));
    s.close();
}

/// `apply --diff`: the current table against a new ruleset, by provenance, and nothing loaded.
fn diff_shows_changes_without_loading() {
    let s = Scratch::new("diff");
    let a = emit(&example_policy());
    let b = emit(&without_wcc(&example_policy()));

    // No table yet: everything is added, and the namespace still has no table afterwards.
    let first = diff::diff(&a, &s.at(), s.state.path()).expect("diff against nothing");
    assert!(!first.had_previous && !first.is_empty());
    assert!(first.rules.iter().all(|r| r.change == Change::Added));
    assert!(s.table().is_none(), "--diff loaded nothing");

    apply::apply(&a, &s.opts(None)).expect("apply");
    let before = s.table().expect("table");
    assert!(
        diff::diff(&a, &s.at(), s.state.path())
            .expect("diff")
            .is_empty(),
        "the same policy again changes nothing"
    );

    let d = diff::diff(&b, &s.at(), s.state.path()).expect("diff");
    // By hand from examples/site.yaml: wcc-lite enables telemetry, ser2net and snmp, and
    // those three flows are all that goes; nothing is added.
    let removed: std::collections::BTreeSet<&str> = d
        .rules
        .iter()
        .filter(|r| r.change == Change::Removed)
        .filter_map(|r| r.provenance.as_deref())
        .collect();
    assert_eq!(
        removed.into_iter().collect::<Vec<_>>(),
        [
            "elseta-wcc-lite/ser2net",
            "elseta-wcc-lite/snmp",
            "elseta-wcc-lite/telemetry"
        ]
    );
    assert!(
        d.rules.iter().all(|r| r.change == Change::Removed),
        "{:?}",
        d.rules
    );
    assert!(d.objects_added.is_empty(), "{:?}", d.objects_added);
    assert!(
        d.objects_removed.iter().any(|o| o.contains("wcc")),
        "{:?}",
        d.objects_removed
    );
    // The WCC Lite's address (10.20.0.5) leaves the dispatch maps.
    assert!(
        d.elements
            .iter()
            .any(|e| e.removed.iter().any(|x| x.starts_with("10.20.0.5 "))),
        "{:?}",
        d.elements
    );
    assert_eq!(
        s.table().map(|t| nft::normalize(&t)),
        Some(nft::normalize(&before)),
        "--diff left the table as it was"
    );
    // The state folder still holds what the last apply loaded (A, with the WCC Lite).
    let applied = s
        .state
        .path()
        .join(format!("netns-{}", s.ns))
        .join("applied.nft");
    let applied = std::fs::read_to_string(applied).expect("applied.nft");
    assert!(applied.contains("wcc-lite"), "--diff wrote no state");
    s.close();
}

fn rollback_to_no_table() {
    let s = Scratch::new("none");
    let r = apply::apply(&emit(&example_policy()), &s.opts(Some(1))).expect("apply");
    assert!(!r.had_previous);
    assert!(s.table().is_some());
    wait_for(
        "the table to go",
        Duration::from_secs(8),
        Duration::from_millis(200),
        || s.table().is_none(),
    );
    s.close();
}

fn failed_load_keeps_previous() {
    let s = Scratch::new("fail");
    apply::apply(&emit(&example_policy()), &s.opts(None)).expect("apply");
    let before = s.table().expect("table");
    let bad = "table inet portolan {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tip saddr @no_such_set accept\n\t}\n}\n";
    let e = apply::apply(bad, &s.opts(None)).expect_err("a bad ruleset must not load");
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    assert_eq!(
        s.table().map(|t| nft::normalize(&t)),
        Some(nft::normalize(&before))
    );

    // The kernel's transaction itself: a file whose first half is valid and second half
    // fails at commit leaves everything as it was.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("half.nft");
    std::fs::write(
        &f,
        format!("flush table inet portolan\ndelete chain inet portolan forward\n{bad}"),
    )
    .expect("write");
    let r = portolan_nft::exec::run_file(&s.at(), &f, false);
    assert!(
        matches!(r, Err(portolan_nft::Error::Rejected { .. })),
        "the transaction fails: {r:?}"
    );
    assert_eq!(
        s.table().map(|t| nft::normalize(&t)),
        Some(nft::normalize(&before)),
        "and nothing changed"
    );
    s.close();
}

fn reapply_keeps_dns_filled_sets() {
    let s = Scratch::new("dns");
    let ruleset = emit(&example_policy());
    apply::apply(&ruleset, &s.opts(None)).expect("apply");
    let table = s.table().expect("table");
    let set = table
        .lines()
        .filter_map(|l| l.trim().strip_prefix("set "))
        .map(|r| r.trim_end_matches(" {").to_string())
        .find(|n| portolan_emit::nftables::dns_filled(n))
        .expect("a DNS-filled set");
    let add = Where::Netns(s.ns.clone()).command(
        "nft",
        &[
            "add",
            "element",
            "inet",
            "portolan",
            &set,
            "{ 192.0.2.99 timeout 1h }",
        ],
    );
    portolan_lab::command::run(add).expect("add element");
    apply::apply(&ruleset, &s.opts(None)).expect("apply again");
    let after = s.table().expect("table");
    assert!(
        after.contains("192.0.2.99"),
        "the DNS-filled set kept its element across a reload"
    );
    s.close();
}

// ---- the fixtures and the runner --------------------------------------------------------

/// One lab run: a site fixture, the ruleset loaded, the hand-written table the kernel must
/// match, and what else this run must show.
struct Fixture {
    trial: &'static str,
    /// Relative to this crate.
    site: &'static str,
    /// A ruleset under `tests/data`; `None`: the one Portolan emits for the site.
    ruleset: Option<&'static str>,
    /// The table under `tests/data/flows`; `None` only for a ruleset wrong on purpose.
    flows: Option<&'static str>,
    checks: fn(&Report),
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        trial: "lab::example_site_lab_passes",
        site: "../../examples/site.yaml",
        ruleset: None,
        flows: Some("example-site.flows"),
        checks: example_site_lab_passes,
    },
    Fixture {
        trial: "lab::ipv6_and_wildcard_site_passes",
        site: "tests/data/v6-wildcard.yaml",
        ruleset: None,
        flows: Some("v6-wildcard.flows"),
        checks: ipv6_and_wildcard_site_passes,
    },
    Fixture {
        trial: "lab::adversarial_probes_drop_on_an_exact_ruleset",
        site: "tests/data/attack-site.yaml",
        ruleset: Some("attack-exact.nft"),
        flows: Some("attack-site.flows"),
        checks: adversarial_probes_drop_on_an_exact_ruleset,
    },
    Fixture {
        trial: "lab::adversarial_probes_catch_a_wide_ruleset",
        site: "tests/data/attack-site.yaml",
        ruleset: Some("attack-wide.nft"),
        flows: None,
        checks: adversarial_probes_catch_a_wide_ruleset,
    },
    Fixture {
        trial: "lab::attack_site_emitted_ruleset_passes",
        site: "tests/data/attack-site.yaml",
        ruleset: None,
        flows: Some("attack-site.flows"),
        checks: attack_site_emitted_ruleset_passes,
    },
];

fn run_fixture(f: &Fixture) {
    let (policy, facts) = compile(&Path::new(env!("CARGO_MANIFEST_DIR")).join(f.site));
    let opts = Options {
        ruleset: f
            .ruleset
            .map(|r| std::fs::read_to_string(data(r)).expect("ruleset")),
        ..Options::default()
    };
    let r = lab::run(&policy, &with(facts, opts), &progress).expect("lab runs");
    assert_gone(&r);
    if let Some(table) = f.flows {
        show_mismatches(&r);
        flows::check(table, &r);
    }
    (f.checks)(&r);
}

/// Fixtures and tables cannot drift apart: every table parses and is some fixture's, every
/// fixture that loads Portolan's own ruleset has one, and every fixture's files exist.
fn flow_tables_belong_to_fixtures() {
    let named: Vec<&str> = FIXTURES.iter().filter_map(|f| f.flows).collect();
    for file in flows::files() {
        assert!(
            named.contains(&file.as_str()),
            "{file} is no fixture's table"
        );
        assert!(!flows::load(&file).is_empty());
    }
    for f in FIXTURES {
        assert!(
            f.flows.is_some() || f.ruleset.is_some(),
            "{}: a fixture of the emitted ruleset needs a hand-written table",
            f.trial
        );
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join(f.site);
        assert!(site.is_file(), "{}: no {}", f.trial, site.display());
        if let Some(r) = f.ruleset {
            assert!(data(r).is_file(), "{}: no {r}", f.trial);
        }
    }
    for bad in [
        "required | 10.0.0.1 | 10.0.0.2 | tcp/1 | pass\n",
        "required | 10.0.0.1 | 10.0.0.2 | tcp/1 | ok | why\n",
        "required | 10.0.0.1 | 10.0.0.2 | tcp/1 | pass |\n",
        "required | host | 10.0.0.2 | tcp/1 | pass | why\n",
        "# nothing\n",
    ] {
        assert!(flows::parse(bad).is_err(), "{bad}");
    }
}

fn leftovers() -> Vec<String> {
    let mine = format!("pl{}", std::process::id());
    netns::list()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(&mine))
        .collect()
}

fn rollback_main(args: &[String]) {
    let a = match apply::parse_rollback_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("apply-rollback: {e}");
            std::process::exit(2);
        }
    };
    let w = match a.netns {
        Some(n) => Where::Netns(n),
        None => {
            eprintln!("apply-rollback: the tests only ever use --netns");
            std::process::exit(2);
        }
    };
    match apply::rollback_after(&w, &a.state_dir, &a.token, a.after) {
        Ok(o) => eprintln!("apply-rollback: {o:?}"),
        Err(e) => {
            eprintln!("apply-rollback: {e}");
            std::process::exit(1);
        }
    }
}

/// A kernel trial: `f`, then no namespace of this process may be left (any left is removed).
/// `ready` is the machine's state: `Err` fails the trial (not root, a tool missing), a lack
/// of the kernel's marks it ignored.
fn kernel_trial(
    name: &str,
    ready: &Result<Option<String>, String>,
    f: impl FnOnce() + Send + 'static,
) -> Trial {
    let setup = ready.clone();
    let t = Trial::test(name, move || {
        let lacking = setup.map_err(Failed::from)?;
        if let Some(why) = lacking {
            return Err(format!("the kernel lacks {why}").into());
        }
        let t = Instant::now();
        f();
        let left = leftovers();
        for ns in &left {
            let _ = portolan_lab::command::ip(&["netns", "del", ns]);
        }
        eprintln!("    ({:.1} s)", t.elapsed().as_secs_f64());
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("namespaces left behind: {left:?}").into())
        }
    });
    match ready {
        Ok(Some(why)) => t
            .with_ignored_flag(true)
            .with_kind(format!("skipped: kernel lacks {why}")),
        _ => t,
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("apply-rollback") {
        rollback_main(&argv[2..]);
        return;
    }
    let mut args = Arguments::from_args();
    // Kernel trials take turns: they share two cores, conntrack and the lab's addresses.
    args.test_threads = Some(1);
    let listing = args.list;
    let ready = if listing {
        Ok(None)
    } else {
        portolan_testkit::kernel::lacks().and_then(|lacking| {
            portolan_testkit::kernel::require_tools_checked(&["ip", "nft", "dnsmasq"])
                .map(|()| lacking)
        })
    };
    if let Ok(Some(why)) = &ready {
        eprintln!("{}", portolan_testkit::kernel::skip_banner(why));
    }
    let mut trials = vec![Trial::test("lab::flow_tables_belong_to_fixtures", || {
        flow_tables_belong_to_fixtures();
        Ok(())
    })];
    for f in FIXTURES {
        trials.push(kernel_trial(f.trial, &ready, move || run_fixture(f)));
    }
    let plain: [(&str, fn()); 9] = [
        (
            "lab::example_site_under_enforce",
            example_site_under_enforce,
        ),
        ("lab::broken_ruleset_is_caught", broken_ruleset_is_caught),
        (
            "lab::spoofing_into_established_flows_is_caught",
            spoofing_into_established_flows_is_caught,
        ),
        ("lab::too_wide_policy_is_caught", too_wide_policy_is_caught),
        (
            "apply::apply_rolls_back_unless_confirmed",
            apply_rolls_back_unless_confirmed,
        ),
        ("apply::rollback_to_no_table", rollback_to_no_table),
        (
            "apply::failed_load_keeps_previous",
            failed_load_keeps_previous,
        ),
        (
            "apply::reapply_keeps_dns_filled_sets",
            reapply_keeps_dns_filled_sets,
        ),
        (
            "apply::diff_shows_changes_without_loading",
            diff_shows_changes_without_loading,
        ),
    ];
    for (name, f) in plain {
        trials.push(kernel_trial(name, &ready, f));
    }
    libtest_mimic::run(&args, trials).exit();
}
