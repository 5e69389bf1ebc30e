//! Flows through the site's proxy on a real kernel: least privilege holds.
//!
//! Profile `test-data/profiles/good/proxy-lab.yaml`: `api` (TCP 443), `api-80` and `firmware`
//! (TCP 80) can go through an HTTP(S) proxy; `mqtt` (TCP 8883) says it cannot; `syslog` (TCP
//! 6514) says nothing about proxies. Site A runs the proxy on the firewall (TCP 3128) and the
//! device uses it: `lab` proves A's own ruleset (the leg to 3128 passes). Then site B — the
//! same device without the proxy — is run by `lab` against A's ruleset: every direct packet
//! of a proxied flow must be dropped by the kernel, and the flows that cannot (or are not said
//! to) use a proxy still pass. The expectations are read off the profile, not the compiler.

use std::path::{Path, PathBuf};
use std::process::Command;

use portolan_testkit::{cmd, kernel};

fn portolan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portolan"))
}

const SITE: &str = "portolan: 1
site: SITE
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
  - id: wan
    interface: wan0
services:
  dns: firewall
PROXY
devices:
  - id: gw
    profile: proxy-lab.yaml
    zone: field
    addresses: [10.20.0.5]
";

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("pl-proxylab-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good/proxy-lab.yaml");
    std::fs::copy(profile, d.join("proxy-lab.yaml")).expect("copy profile");
    let a = SITE
        .replace("SITE", "a")
        .replace("PROXY", "  proxy: {at: firewall, port: 3128}")
        + "    proxy: true\n";
    let b = SITE.replace("SITE", "b").replace("PROXY\n", "");
    std::fs::write(d.join("a.yaml"), a).expect("site a");
    std::fs::write(d.join("b.yaml"), b).expect("site b");
    d
}

/// (flow, traffic, observed) of the required rows of a `lab --format json` document.
fn required(out: &str) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(out).expect("json");
    let mut rows: Vec<(String, String, String)> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["kind"] == "required")
        .map(|r| {
            (
                r["flow"].as_str().unwrap_or("").to_string(),
                r["traffic"].as_str().unwrap_or("").to_string(),
                r["observed"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    rows.sort();
    rows.dedup();
    rows
}

#[test]
fn a_proxied_flow_opens_the_leg_to_the_proxy_and_never_the_direct_path() {
    let _turn = kernel::turn();
    if !kernel::runs() {
        return;
    }
    kernel::require_tools(&["dnsmasq"]);
    let d = dir();
    let run = |args: &[&str]| {
        let mut c = portolan();
        c.current_dir(&d).args(args);
        let (code, out, _) = cmd::code_out_err(c);
        (code, out)
    };
    let (code, _) = run(&["compile", "a.yaml", "-o", "a.nft"]);
    assert_eq!(code, Some(0), "site a compiles");
    let rules = std::fs::read_to_string(d.join("a.nft")).expect("a.nft");
    let (code, a_out) = run(&["lab", "a.yaml", "--format", "json"]);
    let (b_code, b_out) = run(&[
        "lab",
        "b.yaml",
        "--ruleset",
        "a.nft",
        "--no-provenance",
        "--format",
        "json",
    ]);
    std::fs::remove_dir_all(&d).expect("cleanup");
    assert_eq!(code, Some(0), "site a's own proof: {a_out}");
    let s = |x: &str| x.to_string();
    // Site A: the leg to the proxy (the firewall's TCP 3128) passes; no required probe goes
    // to the proxied flows' own ports 443 and 80.
    let a = required(&a_out);
    assert!(
        a.iter()
            .any(|(f, t, o)| f.starts_with("proxy-lab/") && t == "tcp/3128" && o == "pass"),
        "{a:?}"
    );
    assert!(
        !a.iter().any(|(_, t, _)| t == "tcp/443" || t == "tcp/80"),
        "{a:?}"
    );
    // Site B's direct packets against A's ruleset.
    assert_eq!(
        b_code,
        Some(1),
        "b's proxied flows must not pass a's ruleset: {b_out}"
    );
    assert_eq!(
        required(&b_out),
        [
            // `http: supported`: through the proxy only, the direct path is closed.
            (s("proxy-lab/api"), s("tcp/443"), s("drop")),
            (s("proxy-lab/api-80"), s("tcp/80"), s("drop")),
            (s("proxy-lab/firmware"), s("tcp/80"), s("drop")),
            // `http: unsupported`: direct, as without a proxy.
            (s("proxy-lab/mqtt"), s("tcp/8883"), s("pass")),
            // no `proxy:` block: direct.
            (s("proxy-lab/syslog"), s("tcp/6514"), s("pass")),
        ],
        "{rules}"
    );
}
