//! `portolan compile --check` (translation validation, issue 12 item 4), run as CI runs it:
//! the emitted nftables, read back from a scratch namespace, verified against its site by
//! `portolan-verify`, must permit every flow exactly and nothing more. Over:
//!
//! - the example site, as shipped: no finding;
//! - every catalog profile in every mode it has, all its features on, one site per
//!   (profile, mode): params, flow overrides and bindings taken from the example site's
//!   device of that profile, every other role bound to an address of its own;
//! - every file of the MUD corpus (`shared/interop/mud`) that imports, one site each, every
//!   role bound.
//!
//! Each site's outcome is compared with `tests/data/check-known.tsv`: `ok`, or the findings
//! reviewed by hand with the reason (each a limit of `portolan-verify` or an open question,
//! named there), or `skip` where verify does not finish within the memory CI allows. Any
//! other outcome fails — a new finding, or a known one gone (then the line goes too). The
//! sites give no `mac:` (verify reads no `ether saddr`) and bind no role to `any`.
//! Each check runs with its address space limited to 3 GB. Loading a ruleset needs root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use portolan_model::catalog::Catalog;
use portolan_model::Profile;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus() -> PathBuf {
    let dir = repo().join("../shared/interop/mud");
    assert!(
        dir.is_dir(),
        "the MUD corpus must sit in shared/ beside the repository: {}",
        dir.display()
    );
    dir
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `portolan compile SITE --check [extra…]`: exit code, stdout, stderr.
fn check(site: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    assert!(
        is_root(),
        "compile --check loads the ruleset in a scratch namespace: run as root"
    );
    let out = Command::cargo_bin("portolan")
        .expect("binary")
        .arg("compile")
        .arg(site)
        .arg("--check")
        .args(extra)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks `site` (address space limited to 3 GB, as CI runs it) and says how it went: `ok`,
/// or `P/N permitted, E excess` (flows of the IR permitted, excess classes).
fn outcome(site: &Path) -> String {
    outcome_for(site, "nftables")
}

/// [`outcome`] for a target (`nftables` or `iptables`).
fn outcome_for(site: &Path, target: &str) -> String {
    assert!(
        is_root(),
        "compile --check loads the ruleset in a scratch namespace: run as root"
    );
    let bin = assert_cmd::cargo::cargo_bin("portolan");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "ulimit -v 3000000 && exec \"$0\" compile \"$1\" --target \"$2\" --check --format json",
        )
        .arg(&bin)
        .arg(site)
        .arg(target)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    // The compile document on stdout (`portolan/compile/v1`): the text and `check.exact`,
    // or verify's report under `check.report`.
    let doc: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
    match (out.status.code(), doc) {
        (Some(0), Some(v)) if v["check"]["exact"] == true => {
            let text = v["text"].as_str().unwrap_or_default();
            assert!(
                text.starts_with(if target == "iptables" {
                    "#"
                } else {
                    "#!/usr/sbin/nft -f"
                }),
                "{text}"
            );
            "ok".into()
        }
        (Some(1), Some(d)) if d["check"]["report"]["flows"].is_array() => {
            let v = &d["check"]["report"];
            let flows = v["flows"].as_array().map(Vec::as_slice).unwrap_or_default();
            let ok = flows.iter().filter(|f| f["status"] == "permitted").count();
            let excess = v["excess"].as_array().map_or(0, Vec::len);
            assert!(
                d.get("text").is_none(),
                "nothing is written when the check fails"
            );
            format!("{ok}/{} permitted, {excess} excess", flows.len())
        }
        (code, _) => panic!("{}: exit {code:?}:\n{err}", site.display()),
    }
}

/// `tests/data/check-known.tsv`: site → expected outcome (column 2); `skip` lines are not run.
fn known() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check-known.tsv");
    std::fs::read_to_string(&path)
        .expect("tests/data/check-known.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert!(
                c.len() >= 3,
                "{}: site, outcome, reason: {l}",
                path.display()
            );
            (c[0].to_string(), c[1].to_string())
        })
        .collect()
}

/// Checks every site of `sites` (name, file) and compares with the known outcomes under
/// `prefix`; prints the timing and fails listing every difference.
fn compare(prefix: &str, sites: &[(String, PathBuf)]) {
    compare_for("nftables", prefix, sites)
}

/// [`compare`] for a target; the outcomes of `iptables` are listed as `iptables/PREFIX…`.
fn compare_for(target: &str, prefix: &str, sites: &[(String, PathBuf)]) {
    let prefix = &if target == "nftables" {
        prefix.to_string()
    } else {
        format!("{target}/{prefix}")
    };
    let known = known();
    let started = std::time::Instant::now();
    let mut diffs = Vec::new();
    let mut run = 0;
    for (name, file) in sites {
        let key = format!("{prefix}{name}");
        let want = known.get(&key).map_or("ok", String::as_str);
        if want == "skip" {
            continue;
        }
        let t = std::time::Instant::now();
        let got = outcome_for(file, target);
        run += 1;
        eprintln!("{key}: {got} ({:.1} s)", t.elapsed().as_secs_f64());
        if got != want {
            diffs.push(format!("{key}\t{got}\t(known: {want})"));
        }
    }
    for k in known.keys().filter(|k| k.starts_with(prefix)) {
        assert!(
            sites.iter().any(|(n, _)| format!("{prefix}{n}") == *k),
            "check-known.tsv names {k}, which is no site here"
        );
    }
    eprintln!(
        "{prefix}: {run} sites checked of {} in {:.1} s",
        sites.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        diffs.is_empty(),
        "outcomes differ from check-known.tsv:\n{}",
        diffs.join("\n")
    );
}

/// The fields of one device of a site file written as the example writes them (two-space
/// list, four-space keys): each key with its text, the nested lines included.
fn device_blocks(site: &str) -> Vec<BTreeMap<String, String>> {
    let devices = site.split("\ndevices:\n").nth(1).expect("a devices list");
    let mut out: Vec<BTreeMap<String, String>> = Vec::new();
    let mut key = String::new();
    for line in devices.lines() {
        let t = line.trim_start();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("  - ") {
            out.push(BTreeMap::new());
            let (k, v) = rest.split_once(':').expect("key: value");
            key = k.to_string();
            out.last_mut()
                .expect("a device")
                .insert(key.clone(), v.trim().to_string());
        } else if line.starts_with("    ") && !line.starts_with("     ") {
            let (k, v) = t.split_once(':').expect("key: value");
            key = k.to_string();
            out.last_mut()
                .expect("a device")
                .insert(key.clone(), v.trim().to_string());
        } else {
            let d = out.last_mut().expect("a device");
            let v = d.entry(key.clone()).or_default();
            v.push('\n');
            v.push_str(line);
        }
    }
    out
}

/// The role endpoints of a profile.
fn roles(p: &Profile) -> Vec<String> {
    p.endpoints
        .iter()
        .filter(|e| e.role)
        .map(|e| e.id.clone())
        .collect()
}

/// Hands out addresses to bound peers, one of each family each: 192.0.2.0/24 and
/// 203.0.113.0/24 (RFC 5737), 2001:db8::/32 (RFC 3849).
#[derive(Default)]
struct Plan {
    peers: u32,
}

impl Plan {
    fn peer(&mut self) -> String {
        self.peers += 1;
        let n = self.peers;
        assert!(n < 500, "too many peers");
        if n < 250 {
            format!("192.0.2.{n}, \"2001:db8::{n:x}\"")
        } else {
            format!("203.0.113.{}, \"2001:db8:1::{n:x}\"", n - 249)
        }
    }
}

const HEAD: &str = "portolan: 1
site: SITE
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/16, \"fd00:20::/64\"]
  - id: mgmt
    interface: mgmt0
    networks: [10.99.0.0/24]
  - id: wan
    interface: wan0
services:
  dns: firewall
  dhcp: firewall
  ntp: [10.99.0.123]
devices:
";

/// A device entry: id, profile, optional mode, address, the example's other fields, and every
/// role bound (the example's binding where it has one).
fn device(
    id: &str,
    profile: &str,
    mode: Option<&str>,
    address: &str,
    extra: &[String],
    bind: &BTreeMap<String, String>,
) -> String {
    let mut s = format!(
        "  - id: {id}\n    profile: {profile}\n    zone: field\n    addresses: [{address}]\n"
    );
    if let Some(m) = mode {
        s.push_str(&format!("    mode: {m}\n"));
    }
    for e in extra {
        s.push_str(e);
        s.push('\n');
    }
    if !bind.is_empty() {
        s.push_str("    bind:\n");
        for (role, v) in bind {
            s.push_str(&format!("      {role}: {v}\n"));
        }
    }
    s
}

/// What a site must choose where a source leaves it open and the example site does not
/// (features and modes it leaves off): (profile, field, `key: value` line). Any valid
/// choice does; these follow `test-data/sites/good/bindings.yaml` where it has one.
const CHOICES: &[(&str, &str, &str)] = &[
    ("elseta-wcc-lite", "params", "openvpn_protocol: udp"),
    ("elseta-wcc-lite", "params", "openvpn_port: 1194"),
    ("elseta-wcc-lite", "flows", "api: {ports: 443}"),
    (
        "izuma-device-management",
        "flows",
        "edge-containers: {protocol: tcp, ports: 443}",
    ),
    (
        "izuma-device-management",
        "flows",
        "snap: {protocol: tcp, ports: 443}",
    ),
];

#[test]
fn the_example_site_passes_its_own_check() {
    assert_eq!(outcome(&repo().join("examples/site.yaml")), "ok");
}

/// The iptables output of the example, read as iptables-save text by verify's iptables
/// reader: every flow permitted, nothing beyond.
#[test]
fn the_example_site_passes_its_own_iptables_check() {
    assert_eq!(
        outcome_for(&repo().join("examples/site.yaml"), "iptables"),
        "ok"
    );
}

/// Every catalog profile in every mode, every feature on, one site each; nftables and iptables.
#[test]
fn every_catalog_profile_in_every_mode() {
    let cat = Catalog::embedded().expect("catalog");
    let example = std::fs::read_to_string(repo().join("examples/site.yaml")).expect("example");
    let blocks = device_blocks(&example);
    let dir = tempfile::tempdir().expect("tmp");
    let mut sites: Vec<(String, PathBuf)> = Vec::new();
    for id in cat.ids() {
        let p = cat.get(id).expect("listed");
        // The example's device of this profile gives its params, flow overrides, version
        // and bindings.
        let block = blocks
            .iter()
            .find(|b| b.get("profile").map(String::as_str) == Some(id))
            .unwrap_or_else(|| panic!("examples/site.yaml has no device of {id}"));
        let given: BTreeMap<String, String> = block
            .get("bind")
            .map(|b| {
                b.lines()
                    .filter_map(|l| l.trim().split_once(':'))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let modes: Vec<Option<&str>> = if p.modes.is_empty() {
            vec![None]
        } else {
            p.modes.iter().map(|m| Some(m.id.as_str())).collect()
        };
        for mode in modes {
            // The example's fields, with the site's choices for flows of this mode.
            let mut extra: Vec<String> = Vec::new();
            for k in ["version", "params", "flows"] {
                let mut v = block.get(k).cloned().unwrap_or_default();
                for (profile, key, line) in CHOICES {
                    let flow = line.split(':').next().unwrap_or_default();
                    let here =
                        k != "flows" || p.flows.iter().any(|f| f.id == flow && f.in_mode(mode));
                    if *profile == id && *key == k && here {
                        v.push_str(&format!("\n      {line}"));
                    }
                }
                if !v.is_empty() {
                    extra.push(format!("    {k}: {v}"));
                }
            }
            if !p.features.is_empty() {
                let all: Vec<&str> = p.features.iter().map(|f| f.id.as_str()).collect();
                extra.push(format!("    features: [{}]", all.join(", ")));
            }
            let mut plan = Plan::default();
            let mut bind = BTreeMap::new();
            for r in roles(p) {
                let v = match given.get(&r) {
                    Some(v) => v.clone(),
                    None => format!("[{}]", plan.peer()),
                };
                bind.insert(r, v);
            }
            let dev = format!("{id}-{}", mode.unwrap_or("only"));
            let mut site = HEAD.replace("SITE", &dev);
            site.push_str(&device(&dev, id, mode, "10.20.0.10", &extra, &bind));
            let file = dir.path().join(format!("{dev}.yaml"));
            std::fs::write(&file, &site).expect("write");
            sites.push((dev, file));
        }
    }
    assert!(sites.len() >= cat.ids().count(), "{sites:?}");
    compare("catalog/", &sites);
    compare_for("iptables", "catalog/", &sites);
}

/// Every file of the MUD corpus that imports: one site each, every role bound.
#[test]
fn the_mud_corpus() {
    let dir = corpus();
    let expectations =
        std::fs::read_to_string(repo().join("test-data/mud/corpus-expectations.tsv"))
            .expect("corpus expectations");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut sites: Vec<(String, PathBuf)> = Vec::new();
    for line in expectations.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(file), Some(outcome)) = (cols.first(), cols.get(1)) else {
            continue;
        };
        if *outcome == "refused" {
            continue;
        }
        let path = dir.join(file);
        let bytes = std::fs::read(&path).expect("corpus file");
        let opts = portolan_mud::ImportOptions {
            strict: false,
            file: path.display().to_string(),
        };
        let imported = portolan_mud::import(&bytes, &opts)
            .unwrap_or_else(|e| panic!("{file} is expected to import: {e}"));
        let p = imported.profile;
        // A file without the `.json` a site needs to read it as MUD: a copy that has it.
        let path = if path.extension().is_some_and(|e| e == "json") {
            path
        } else {
            let copy = tmp.path().join(format!("corpus{}.json", sites.len()));
            std::fs::write(&copy, &bytes).expect("copy");
            copy
        };
        // An ACE for any IP protocol leaves the protocol to the site: TCP to 443 here.
        let chosen: Vec<String> = p
            .flows
            .iter()
            .filter(|f| f.protocol == portolan_model::Protocol::Unspecified)
            .map(|f| format!("      {}: {{protocol: tcp, ports: 443}}", f.id))
            .collect();
        let extra: Vec<String> = if chosen.is_empty() {
            Vec::new()
        } else {
            vec![format!("    flows:\n{}", chosen.join("\n"))]
        };
        let mut plan = Plan::default();
        let mut bind = BTreeMap::new();
        for r in roles(&p) {
            bind.insert(r, format!("[{}]", plan.peer()));
        }
        let mut site = HEAD.replace("SITE", "mud");
        site.push_str(&format!("  # {file}\n"));
        site.push_str(&device(
            "mud",
            &path.display().to_string(),
            None,
            "10.20.0.10, \"fd00:20::10\"",
            &extra,
            &bind,
        ));
        let name = file.to_string();
        let out = tmp.path().join(format!("site{}.yaml", sites.len()));
        std::fs::write(&out, &site).expect("write");
        sites.push((name, out));
    }
    assert!(sites.len() >= 40, "{} corpus files imported", sites.len());
    compare("mud/", &sites);
}

/// Findings are a compile error: exit 1, the ruleset not written, the report (here JSON) on
/// stderr. A binding to `any` for a peer-initiated flow lets every other device of the site
/// open it too, beyond those devices' own profiles: verify reports that as their excess.
#[test]
fn findings_fail_the_compile_and_write_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out.nft");
    let site = repo().join("test-data/sites/good/bindings.yaml");
    let (code, stdout, err) = check(
        &site,
        &["--format", "json", "-o", out.to_str().expect("utf-8")],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(!out.exists(), "nothing is written when the check fails");
    // The compile document on stdout: `check.exact` false, verify's report inside.
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("the compile document");
    assert_eq!(doc["check"]["exact"], false, "{doc}");
    let report = &doc["check"]["report"];
    let excess = report["excess"].as_array().expect("excess");
    assert!(
        excess.iter().any(|e| e["group"] == "lrr-plain"
            && e["class"]
                .as_str()
                .is_some_and(|c| c.contains("tcp dport 1194"))),
        "{report}"
    );
    // The same as a table for people.
    let (code, _, err) = check(&site, &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not enforce the site exactly"), "{err}");
    assert!(err.contains("excess"), "{err}");
}

/// nftables and iptables are checked; asking for another target with --check is bad input
/// (exit 2).
#[test]
fn check_of_another_target_is_bad_input() {
    for target in ["dnsmasq", "ir", "squid"] {
        let out = Command::cargo_bin("portolan")
            .expect("binary")
            .args([
                "compile",
                "examples/site.yaml",
                "--check",
                "--target",
                target,
            ])
            .current_dir(repo())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{target}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--target nftables"));
    }
}
