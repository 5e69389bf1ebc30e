//! `--target aerleon` proven with Aerleon itself: the example site's policy set is run
//! through the pinned `aclgen` (scripts/setup.sh installs it in `.venv`) for every platform,
//! each platform's configuration is snapshotted, and facts every platform must keep are
//! checked in what Aerleon wrote (each flow's provenance, names as SRX `dns-name`, return
//! terms on stateless filters, the final deny). The kernel check of Aerleon's nftables and
//! iptables output is in the lab's tests (`crates/lab/tests/aerleon.rs`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use portolan_emit::aerleon::{self, Platform};
use portolan_emit::{Options, Resolved};
use portolan_model::ir::Policy;

use crate::common::{compile_file, root};

/// The pinned `aclgen` of scripts/setup.sh, or `PORTOLAN_AERLEON` (a path to `aclgen`).
pub fn aclgen() -> PathBuf {
    let p = std::env::var_os("PORTOLAN_AERLEON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/aclgen"));
    assert!(
        p.is_file(),
        "Aerleon's aclgen is not at {}: run scripts/setup.sh (it installs the pinned Aerleon in .venv)",
        p.display()
    );
    p
}

/// The example site's names, resolved to documentation addresses (RFC 5737), TTL 300 s.
fn example_resolved() -> BTreeMap<String, Resolved> {
    [
        ("bootstrap.us-east-1.mbedcloud.com", "192.0.2.31"),
        ("lwm2m.us-east-1.mbedcloud.com", "192.0.2.32"),
        ("udp-lwm2m.us-east-1.mbedcloud.com", "192.0.2.33"),
        ("tcp-lwm2m.us-east-1.mbedcloud.com", "192.0.2.34"),
        ("gk.sensorist.com", "192.0.2.41"),
        ("gk.sensorist.net", "192.0.2.42"),
    ]
    .into_iter()
    .map(|(n, a)| {
        (
            n.to_string(),
            Resolved {
                addresses: vec![a.parse::<IpAddr>().expect("address")],
                ttl: Duration::from_secs(300),
            },
        )
    })
    .collect()
}

/// Writes the policy set under `dir` and runs `aclgen` on it; the files it wrote, by name.
pub fn generate(policy: &Policy, opts: &Options, dir: &Path) -> BTreeMap<String, String> {
    for f in aerleon::files(policy, opts).expect("the policy set is written") {
        let p = dir.join(&f.path);
        std::fs::create_dir_all(p.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&p, f.text).expect("write");
    }
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let run = Command::new(aclgen())
        .current_dir(dir)
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
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "aclgen failed:\n{stderr}");
    assert!(
        !stderr.contains("] Error") && !stderr.contains("Traceback"),
        "aclgen reported an error:\n{stderr}"
    );
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(&out).expect("output folder") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        files.insert(name, std::fs::read_to_string(&p).expect("text output"));
    }
    files
}

fn example() -> Policy {
    compile_file(&root().join("examples/site.yaml"))
}

/// The file Aerleon wrote for `p` (its output is named after the policy, with the
/// generator's suffix).
fn output_of(files: &BTreeMap<String, String>, p: Platform) -> &str {
    let stem = format!("portolan-{}", p.name());
    let hits: Vec<_> = files
        .iter()
        .filter(|(n, _)| {
            n.strip_prefix(&stem)
                .is_some_and(|x| x.is_empty() || x.starts_with('.'))
        })
        .collect();
    assert_eq!(hits.len(), 1, "one output for {p}: {:?}", files.keys());
    hits[0].1
}

#[test]
fn example_site_through_aerleon_for_every_platform() {
    let policy = example();
    let opts = Options {
        resolved: example_resolved(),
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(&policy, &opts, dir.path());
    assert!(Platform::ALL.len() >= 8);
    for p in Platform::ALL {
        let text = output_of(&files, p);
        insta::assert_snapshot!(format!("aerleon_{}", p.name()), text);
    }
}

#[test]
fn every_platform_keeps_each_flows_provenance() {
    let policy = example();
    let opts = Options {
        resolved: example_resolved(),
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(&policy, &opts, dir.path());
    for p in Platform::ALL {
        let text = output_of(&files, p);
        for r in &policy.rules {
            let forwarded = !r.peers.prefixes.is_empty() || !r.peers.names.is_empty();
            let local = r.peers.firewall && r.initiator == portolan_model::ir::Initiator::Device;
            if forwarded || (local && p.local()) {
                assert!(
                    text.contains(&r.provenance()),
                    "{p}: no term says {} (group {})",
                    r.provenance(),
                    r.group
                );
            }
        }
    }
}

#[test]
fn srx_keeps_names_as_dns_names_and_others_get_the_resolved_addresses() {
    let policy = example();
    let opts = Options {
        resolved: example_resolved(),
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(&policy, &opts, dir.path());
    let srx = output_of(&files, Platform::Srx);
    // Junos address book: `address NAME { dns-name FQDN; }`.
    for n in [
        "gk.sensorist.com",
        "gk.sensorist.net",
        "bootstrap.us-east-1.mbedcloud.com",
    ] {
        assert!(srx.contains(&format!("dns-name {n};")), "srx: dns-name {n}");
    }
    assert!(
        !srx.contains("192.0.2.41"),
        "srx keeps the name, not today's address"
    );
    // Cisco IOS extended ACL: `permit tcp <src> <wildcard> host 192.0.2.41 eq 443`.
    let cisco = output_of(&files, Platform::Cisco);
    assert!(cisco.contains("host 192.0.2.41 eq 443"), "cisco:\n{cisco}");
    assert!(
        !cisco.contains("sensorist.com"),
        "cisco has no name objects"
    );
}

#[test]
fn stateless_platforms_get_return_terms_and_stateful_ones_do_not() {
    let policy = example();
    let opts = Options {
        resolved: example_resolved(),
        aerleon_platforms: vec![Platform::Cisco, Platform::Juniper, Platform::CiscoAsa],
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(&policy, &opts, dir.path());
    // oscar-templog-gateway/cloud-443: 10.20.0.32/28 → 54.229.203.190 tcp 443. The reply on
    // Cisco IOS: `permit tcp host 54.229.203.190 eq 443 10.20.0.32 0.0.0.15 established`.
    let cisco = output_of(&files, Platform::Cisco);
    assert!(
        cisco.contains("permit tcp host 54.229.203.190 eq 443 10.20.0.32 0.0.0.15 established"),
        "cisco:\n{cisco}"
    );
    // Junos filters: `tcp-established;` in the reply term's from clause.
    let juniper = output_of(&files, Platform::Juniper);
    assert!(juniper.contains("tcp-established;"), "juniper:\n{juniper}");
    let asa = output_of(&files, Platform::CiscoAsa);
    assert!(!asa.contains("established"), "the ASA keeps state:\n{asa}");
}

#[test]
fn names_without_resolve_are_refused_except_on_srx() {
    let policy = example();
    let err = aerleon::files(
        &policy,
        &Options {
            aerleon_platforms: vec![Platform::Cisco],
            ..Options::default()
        },
    )
    .expect_err("a name without an address on cisco");
    let msg = err.to_string();
    assert!(msg.contains("--resolve") && msg.contains("cisco"), "{msg}");
    aerleon::files(
        &policy,
        &Options {
            aerleon_platforms: vec![Platform::Srx],
            ..Options::default()
        },
    )
    .expect("srx keeps names");
}

#[test]
fn text_that_aerleon_would_copy_into_configurations_is_checked() {
    // Aerleon copies comments into every platform's output (a Cisco `remark` line, a Junos
    // comment): a line break there would start a configuration line of its own.
    let opts = Options {
        resolved: example_resolved(),
        ..Options::default()
    };
    let mut p = example();
    p.site = "plant\npermit ip any any".into();
    assert!(matches!(
        aerleon::files(&p, &opts),
        Err(portolan_emit::EmitError::Unsafe { .. })
    ));
    assert!(matches!(
        portolan_emit::emit(portolan_emit::Target::Squid, &p, &opts),
        Err(portolan_emit::EmitError::Unsafe { .. })
    ));
    let mut p = example();
    let g = p.groups[0].id.clone();
    let evil = format!("{g}\n remark x\npermit ip any any");
    for r in p.rules.iter_mut().filter(|r| r.group == g) {
        r.group = evil.clone();
    }
    p.groups[0].id = evil;
    assert!(matches!(
        aerleon::files(&p, &opts),
        Err(portolan_emit::EmitError::Unsafe { .. })
    ));
}
