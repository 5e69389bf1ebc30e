//! Aerleon's own nftables and iptables output, judged by the kernel against Portolan's
//! nftables on the example site (issue 17, point 2): the site is written as an Aerleon policy
//! set (`--target aerleon`), the pinned `aclgen` (scripts/setup.sh, `.venv`) generates its
//! `nftables` and `speedway` (iptables-restore) configurations, and the lab runs the same
//! probe set through each of them and through Portolan's own ruleset, in fresh namespaces.
//! The verdicts must be equal probe by probe, except where Aerleon's term language cannot say
//! a fact of the site, each such difference named here with its cause:
//!
//! - `spoofed`: a device's address sent from the wrong zone, copying a connection that is
//!   open (the lab sends the spoofed probes after the flows they copy). Aerleon's terms carry
//!   the sender's interface (`source-interface`), but Aerleon accepts established and related
//!   packets before any term, so a forged packet whose tuple matches an open connection
//!   passes (seen for ESP and ICMP echo, whose tuples carry no port the forger must guess);
//!   Portolan's spoofing check comes before connection tracking (ARCHITECTURE.md, "Zones are
//!   interfaces").
//! - `foreign-mac`: DHCP discovery from a MAC the site does not list: no MAC match.
//! - `unresolved-name`: a named peer's address reached without the device resolving the
//!   name first. Aerleon has no DNS-filled sets (except SRX `dns-name`): the names were
//!   resolved at compile time (`--resolve`, here the lab's own answers), so the addresses
//!   are open whether or not the device asked.
//!
//! Every other probe, required or negative, must have the same verdict, and every required
//! probe must pass through Aerleon's rulesets too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use portolan_emit::aerleon::{self, Platform};
use portolan_emit::Resolved;
use portolan_lab::facts::Facts;
use portolan_lab::lab::{self, Loader, Options};
use portolan_lab::probe::Kind;
use portolan_lab::report::Report;
use portolan_lab::send::Observed;
use portolan_lab::topology;
use portolan_model::ir::Policy;
use portolan_testkit::{kernel, Profiles};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> (Policy, Facts) {
    let path = workspace().join("examples/site.yaml");
    let text = std::fs::read_to_string(&path).expect("site file");
    let policy = Profiles::catalog().compile(&path.display().to_string(), &text);
    let facts = Facts::from_site(&text, &policy).expect("site facts");
    (policy, facts)
}

/// The pinned `aclgen` of scripts/setup.sh, or `PORTOLAN_AERLEON`.
fn aclgen() -> PathBuf {
    let p = std::env::var_os("PORTOLAN_AERLEON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/aclgen"));
    assert!(
        p.is_file(),
        "Aerleon's aclgen is not at {}: run scripts/setup.sh",
        p.display()
    );
    p
}

/// Aerleon's output for `platforms`, by file name.
fn aerleon_outputs(
    policy: &Policy,
    resolved: BTreeMap<String, Resolved>,
    platforms: &[Platform],
) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = portolan_emit::Options {
        resolved,
        aerleon_platforms: platforms.to_vec(),
        ..portolan_emit::Options::default()
    };
    for f in aerleon::files(policy, &opts).expect("the Aerleon policy set") {
        let p = dir.path().join(&f.path);
        std::fs::create_dir_all(p.parent().expect("folder")).expect("mkdir");
        std::fs::write(&p, f.text).expect("write");
    }
    let run = Command::new(aclgen())
        .current_dir(dir.path())
        .args([
            "--base_directory",
            "policies",
            "--definitions_directory",
            "def",
            "--output_directory",
            "out",
        ])
        .output()
        .expect("aclgen runs");
    assert!(
        run.status.success(),
        "aclgen failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir.path().join("out")).expect("output") {
        let p = e.expect("entry").path();
        out.insert(
            p.file_name().expect("name").to_string_lossy().into_owned(),
            std::fs::read_to_string(&p).expect("text"),
        );
    }
    out
}

fn progress(m: &str) {
    eprintln!("    lab: {m}");
}

/// Pass or drop as the firewall decided; `None` for probes not sent or inconclusive.
fn verdict(o: &Observed) -> Option<bool> {
    match o {
        Observed::Pass => Some(true),
        Observed::Drop | Observed::Unreachable => Some(false),
        // A reset or port-unreachable came from past the firewall: it let the packet through.
        Observed::Refused => Some(true),
        Observed::WrongAnswer(_) | Observed::Error(_) | Observed::Skip(_) => None,
    }
}

/// The probe kinds whose verdicts may differ, with the fact Aerleon cannot say.
fn explained(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Spoofed => Some("established accepted before the interface check"),
        Kind::ForeignMac => Some("no MAC match in Aerleon terms"),
        Kind::UnresolvedName => Some("names became compile-time addresses"),
        _ => None,
    }
}

fn compare(what: &str, ours: &Report, theirs: &Report) {
    assert_eq!(
        ours.rows.len(),
        theirs.rows.len(),
        "{what}: the same probe set"
    );
    let mut same = 0;
    let mut differ: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (a, b) in ours.rows.iter().zip(&theirs.rows) {
        assert_eq!(
            (&a.device, &a.flow, a.kind, &a.traffic, a.src, &a.dst),
            (&b.device, &b.flow, b.kind, &b.traffic, b.src, &b.dst),
            "{what}: probes in the same order"
        );
        let (va, vb) = (verdict(&a.observed), verdict(&b.observed));
        if va.is_some() && va == vb {
            same += 1;
            continue;
        }
        match explained(a.kind) {
            // Only ever wider on Aerleon's side: Portolan drops, Aerleon passes.
            Some(why) if va == Some(false) && vb == Some(true) => {
                eprintln!(
                    "    differs ({why}): {} {} {:?} {} {} -> {}",
                    a.device, a.flow, a.kind, a.traffic, a.src, a.dst
                );
                *differ.entry(why).or_default() += 1;
            }
            _ => unexplained.push(format!(
                "{} {} {:?} {} {} -> {}: portolan {:?}, aerleon {:?}",
                a.device, a.flow, a.kind, a.traffic, a.src, a.dst, a.observed, b.observed
            )),
        }
    }
    eprintln!(
        "    {what}: {} probes, {same} same verdict, explained differences {differ:?}",
        ours.rows.len()
    );
    assert!(
        unexplained.is_empty(),
        "{what}: verdicts differ where Aerleon can say the fact:\n  {}",
        unexplained.join("\n  ")
    );
    let required = theirs.rows.iter().filter(|r| r.kind == Kind::Required);
    for r in required {
        assert_eq!(
            verdict(&r.observed),
            Some(true),
            "{what}: required {} {} -> {} did not pass",
            r.flow,
            r.traffic,
            r.dst
        );
    }
    assert!(same >= 100, "{what}: only {same} probes compared");
}

#[test]
fn aerleon_nftables_and_iptables_match_portolans_verdicts_on_the_example_site() {
    if let Some(why) = kernel::lacks().expect("kernel test prerequisites") {
        eprintln!("{}", kernel::skip_banner(&why));
        return;
    }
    kernel::require_tools(&["ip", "nft", "dnsmasq", "iptables-restore"]);
    let _turn = kernel::turn();
    let (policy, facts) = example();
    // The lab's own answers for the site's names, as `--resolve` would give them there.
    let topo = topology::plan_with(&policy, &facts, "plaerleon").expect("lab topology");
    let resolved: BTreeMap<String, Resolved> = topo
        .book
        .names
        .iter()
        .map(|(n, a)| {
            (
                n.clone(),
                Resolved {
                    addresses: a.clone(),
                    ttl: Duration::from_secs(300),
                },
            )
        })
        .collect();
    let out = aerleon_outputs(&policy, resolved, &[Platform::Nftables, Platform::Speedway]);
    let nft = out.get("portolan-nftables.nft").expect("nftables output");
    let ipt = out.get("portolan-speedway.ipt").expect("speedway output");

    let base = Options {
        facts: Some(facts),
        ..Options::default()
    };
    let ours = lab::run(&policy, &base, &progress).expect("lab on Portolan's nftables");
    assert!(ours.all_match(), "Portolan's own ruleset passes its lab");
    let foreign = |ruleset: &str, loader| Options {
        ruleset: Some(ruleset.to_string()),
        loader,
        // Aerleon writes the provenance as chain comments; the trace reads rule comments.
        provenance: false,
        ..base.clone()
    };
    let a_nft = lab::run(&policy, &foreign(nft, Loader::Nft), &progress)
        .expect("lab on Aerleon's nftables");
    compare("aerleon nftables", &ours, &a_nft);
    let a_ipt = lab::run(&policy, &foreign(ipt, Loader::IptablesRestore), &progress)
        .expect("lab on Aerleon's iptables-restore output");
    compare("aerleon speedway (iptables)", &ours, &a_ipt);
}
