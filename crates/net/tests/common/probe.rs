//! What the probe tests share: a site head (the lab's zone and the far side's DNS and NTP
//! services), a plan from device lines (compiled with the kit's catalog source), fast
//! options, running the probe in the lab's device namespace, and finding checks in a report.

use std::net::SocketAddr;
use std::time::Duration;

use portolan_net::plan::{plan, Plan};
use portolan_net::probe::{run, Options};
use portolan_net::report::{Check, Kind, Report, Verdict};
use portolan_net::runtime::{block_on, System};

use portolan_testkit::Profiles;

use super::lab::Lab;

pub const HEAD: &str = "portolan: 1\nsite: lab\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.20.0.0/24]\nservices:\n  dns: [198.51.100.53]\n  dhcp: firewall\n  ntp: [198.51.100.123]\ndevices:\n";

pub fn plan_of(devices: &str, device: &str) -> Plan {
    let site = format!("{HEAD}{devices}");
    let policy = Profiles::catalog().compile("lab.yaml", &site);
    plan(&policy, device).expect("device in site")
}

pub fn opts() -> Options {
    Options {
        resolver: Some("198.51.100.53:53".parse().expect("addr")),
        timeout: Duration::from_millis(600),
        attempts: 1,
        ttl_queries: 1,
        ..Options::default()
    }
}

pub fn probe(lab: &Lab, plan: &Plan, o: &Options) -> Report {
    let (p, o) = (plan.clone(), o.clone());
    portolan_net::netns::run_in(&lab.dev, move || {
        block_on(async move { run(&System, &p, &o).await }).expect("runtime")
    })
    .expect("run in the device namespace")
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// The one check of `kind` for `flow` (and port, for targets).
pub fn check<'a>(r: &'a Report, kind: Kind, flow: &str, port: Option<u16>) -> &'a Check {
    let found: Vec<&Check> = r
        .checks()
        .filter(|c| {
            c.kind == kind && c.flow.as_deref() == Some(flow) && (port.is_none() || c.port == port)
        })
        .collect();
    match found.as_slice() {
        [c] => c,
        _ => panic!(
            "expected one {kind:?} check for {flow} {port:?}, found {found:#?}\n{}",
            json(r)
        ),
    }
}

pub fn name_check<'a>(r: &'a Report, kind: Kind, name: &str) -> &'a Check {
    r.checks()
        .find(|c| c.kind == kind && c.peer.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no {kind:?} check for {name}\n{}", json(r)))
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("json")
}

/// The flows a report blames (a decisive failing or warning check naming a flow) and its
/// remedies, for "names exactly the flows that the test blocked".
pub fn blamed(r: &Report) -> Vec<String> {
    let mut v: Vec<String> = r
        .checks()
        .filter(|c| c.decisive && c.verdict >= Verdict::Warn)
        .filter_map(|c| c.flow.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The same from the JSON output, as a script would read it.
pub fn blamed_json(r: &Report) -> (Vec<String>, Vec<String>) {
    let j: serde_json::Value = serde_json::from_str(&json(r)).expect("json");
    let mut flows: Vec<String> = j["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| s["checks"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["decisive"] == true && (c["verdict"] == "fail" || c["verdict"] == "warn"))
        .filter_map(|c| c["flow"].as_str().map(str::to_string))
        .collect();
    flows.sort();
    flows.dedup();
    let remedies = j["remedies"]
        .as_array()
        .expect("remedies")
        .iter()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    (flows, remedies)
}
