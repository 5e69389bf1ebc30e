//! `portolan show SITE --device D`: each flow of the device marked direct or via the site's
//! proxy. The expectations are written by hand from `test-data/profiles/good/proxy-lab.yaml`
//! (which flows say `proxy: {http: supported}`, which `authenticated: unsupported`) and the
//! rule docs/site-format.md states ("Proxy"): a device with `proxy: true` sends a flow that can
//! use a proxy to the proxy's port; a flow that cannot, or that refuses an authenticated proxy
//! behind one that asks for credentials, stays direct.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const SITE: &str = "portolan: 1
site: s
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
  - id: core
    interface: core0
    networks: [10.99.0.0/24]
services:
  dns: firewall
PROXY
devices:
  - id: gw
    profile: proxy-lab.yaml
    zone: field
    addresses: [10.20.0.5]
    proxy: true
";

fn dir(name: &str, proxy: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pl-showsite-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    std::fs::copy(
        workspace().join("test-data/profiles/good/proxy-lab.yaml"),
        d.join("proxy-lab.yaml"),
    )
    .expect("copy profile");
    std::fs::write(d.join("site.yaml"), SITE.replace("PROXY", proxy)).expect("site");
    d
}

fn portolan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(args)
        .output()
        .expect("portolan runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn routes(doc: &Value) -> Vec<(String, String, String)> {
    doc["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().expect("id").to_string(),
                f["route"]["via"].as_str().expect("via").to_string(),
                f["route"]["proxy"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn row(id: &str, via: &str, proxy: &str) -> (String, String, String) {
    (id.to_string(), via.to_string(), proxy.to_string())
}

#[test]
fn each_flow_says_direct_or_via_the_proxy() {
    let d = dir("fw", "  proxy: {at: firewall, port: 3128}");
    let site = d.join("site.yaml");
    let site = site.to_str().expect("utf-8 path");
    let (code, out, err) = portolan(&["show", site, "--device", "gw", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("json");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("schemas/show.v1.json")).expect("schema"),
    )
    .expect("schema json");
    let v = jsonschema::validator_for(&schema).expect("schema compiles");
    let problems: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(doc["site"], "s");
    assert_eq!(doc["device"], "gw");
    assert_eq!(
        routes(&doc),
        [
            row("dns", "direct", ""),
            row("api", "proxy", "firewall:3128"),
            row("api-80", "proxy", "firewall:3128"),
            row("firmware", "proxy", "firewall:3128"),
            row("mqtt", "direct", ""),
            row("syslog", "direct", ""),
        ]
    );
    // The text says the same, one line per flow under the table.
    let (code, out, err) = portolan(&["show", site, "--device", "gw"]);
    assert_eq!(code, 0, "{err}");
    let has = |l: &str| out.lines().any(|x| x.trim() == l);
    assert!(has("firmware: via proxy firewall:3128"), "{out}");
    assert!(has("mqtt: direct"), "{out}");
    std::fs::remove_dir_all(&d).expect("cleanup");
}

#[test]
fn behind_an_authenticating_proxy_a_flow_that_refuses_it_stays_direct() {
    let d = dir(
        "auth",
        "  proxy: {at: [10.99.0.8], port: 8080, authenticated: true}",
    );
    let site = d.join("site.yaml");
    let site = site.to_str().expect("utf-8 path");
    let (code, out, err) = portolan(&["show", site, "--device", "gw", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        routes(&doc),
        [
            row("dns", "direct", ""),
            row("api", "proxy", "10.99.0.8:8080"),
            row("api-80", "direct", ""),
            row("firmware", "proxy", "10.99.0.8:8080"),
            row("mqtt", "direct", ""),
            row("syslog", "direct", ""),
        ]
    );
    // A site needs --device, and the device must exist: exit 2.
    let (code, _, err) = portolan(&["show", site]);
    assert_eq!(code, 2);
    assert!(err.contains("--device") && err.contains("gw"), "{err}");
    let (code, _, err) = portolan(&["show", site, "--device", "nosuch"]);
    assert_eq!(code, 2);
    assert!(err.contains("no device `nosuch`"), "{err}");
    std::fs::remove_dir_all(&d).expect("cleanup");
}
