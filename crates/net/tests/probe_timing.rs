//! How long `probe` takes for each of the five seed profiles, with the default options
//! (2 s per attempt, 2 UDP attempts, 2 TTL queries 1 s apart, 16 probes in flight), in a lab
//! whose DNS server answers every name the profile needs: once where the far side answers at
//! once (nothing listens: resets and port unreachables) and once where the router drops
//! everything but DNS (every probe waits its full timeout, the worst case). The times are
//! printed (`cargo test -p portolan-net --test probe_timing -- --nocapture`), and the worst
//! case must stay within what the bounded concurrency promises: the names stage, then
//! ⌈targets / 16⌉ rounds of at most `attempts × timeout`, plus the integrity stage's TLS
//! handshakes and a second of slack.

mod common;

use std::time::{Duration, Instant};

use common::dns_server::Zone;
use common::lab::Lab;
use common::probe::plan_of;
use common::servers::{start, Service};
use portolan_net::plan::{names, Plan};
use portolan_net::probe::{run, Options};
use portolan_net::report::{Kind, Report};
use portolan_net::runtime::{block_on, System};

/// The five seed profiles as the lab binds them (as in `probe_lab.rs`), Oscar unbound (its
/// shipped hosts and volatile addresses).
const SEEDS: [(&str, &str); 5] = [
    ("oscar-templog-gateway", "  - id: d\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.20.0.33]\n"),
    ("izuma-device-management", "  - id: d\n    profile: izuma-device-management\n    mode: device\n    zone: field\n    addresses: [10.20.0.33]\n"),
    ("thingpark-lrr", "  - id: d\n    profile: thingpark-lrr\n    mode: ipsec\n    version: \"2.9\"\n    zone: field\n    addresses: [10.20.0.33]\n    bind:\n      slrc: [198.51.100.30]\n      support: [198.51.100.31]\n"),
    ("elseta-wcc-lite", "  - id: d\n    profile: elseta-wcc-lite\n    zone: field\n    addresses: [10.20.0.33]\n    features: [telemetry, ser2net, snmp, ipsec]\n    params:\n      telemetry_port: 5140\n      ser2net_ports: \"4001-4004\"\n    bind:\n      telemetry-server: [198.51.100.50]\n      ipsec-peer: [198.51.100.51]\n      management: [198.51.100.60]\n      ser2net-client: [198.51.100.60]\n"),
    ("ubisense-dimension4-sensor", "  - id: d\n    profile: ubisense-dimension4-sensor\n    mode: static\n    zone: field\n    addresses: [10.20.0.33]\n    bind:\n      configuration-server: [198.51.100.40]\n      boot-configuration-server: [198.51.100.41]\n      boot-file-server: [198.51.100.41]\n      location-configuration-server: [198.51.100.40]\n      configuration-distribution-server: [198.51.100.40]\n      location-sink: [198.51.100.42]\n      dimension4-server: [198.51.100.40]\n      dimension4-peer: [198.51.100.40]\n    flows:\n      config-server-search: {protocol: udp, ports: 5000}\n      boot-config-request: {protocol: udp, ports: 5001}\n      boot-file-download: {protocol: tcp, ports: 5002}\n      location-registration: {protocol: tcp, ports: 5003}\n      location-config-distribution: {protocol: tcp, ports: 5004}\n      status-location: {protocol: udp, ports: 5005}\n      raw-udp: {ports: 5006}\n      remote-ops: {protocol: tcp, ports: 5007}\n      event-channel: {protocol: tcp, ports: 5008}\n"),
];

fn timed(lab: &Lab, p: &Plan, o: &Options) -> (Report, Duration) {
    let (p, o) = (p.clone(), o.clone());
    let start = Instant::now();
    let r = portolan_net::netns::run_in(&lab.dev, move || {
        block_on(async move { run(&System, &p, &o).await }).expect("runtime")
    })
    .expect("run in the device namespace");
    (r, start.elapsed())
}

#[test]
fn seed_profiles_probe_within_the_concurrency_bound() {
    let lab = Lab::new();
    // Every name any seed profile needs, each at its own far-side address.
    let plans: Vec<(&str, Plan)> = SEEDS.iter().map(|(id, d)| (*id, plan_of(d, "d"))).collect();
    let mut all: Vec<String> = plans.iter().flat_map(|(_, p)| names(p)).collect();
    all.sort();
    all.dedup();
    let mut zone = Zone::default();
    let mut addrs = vec!["198.51.100.53".to_string()];
    for (i, n) in all.iter().enumerate() {
        let a = format!("198.51.100.{}", 100 + i);
        zone = zone.host(n, &[a.as_str()], 300);
        addrs.push(a);
    }
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    lab.srv_addresses(&refs);
    let _servers = start(
        &lab.srv,
        vec![Service::Dns(
            "198.51.100.53:53".parse().expect("addr"),
            zone,
        )],
    );
    let o = Options {
        resolver: Some("198.51.100.53:53".parse().expect("addr")),
        ..Options::default()
    };
    let mut table = String::from("profile                     targets  answering  all dropped\n");
    for (id, p) in &plans {
        lab.firewall(&[]);
        let (r, fast) = timed(&lab, p, &o);
        let targets = r.checks().filter(|c| c.kind == Kind::Target).count();
        lab.firewall(&[
            "ip daddr 198.51.100.53 udp dport 53 accept",
            "iifname \"lan0\" drop",
        ]);
        let (r, slow) = timed(&lab, p, &o);
        let tls = r.checks().filter(|c| c.kind == Kind::Tls).count();
        table += &format!(
            "{id:<27} {targets:>7}  {:>8.2} s  {:>9.2} s\n",
            fast.as_secs_f64(),
            slow.as_secs_f64()
        );
        let rounds = targets.div_ceil(o.concurrency) as u32;
        let bound = o.ttl_gap * (o.ttl_queries - 1)
            + o.timeout * o.attempts * (rounds + 1)
            + o.timeout * tls as u32
            + Duration::from_secs(1);
        assert!(
            slow <= bound,
            "{id}: {slow:?} for {targets} targets, beyond {bound:?}"
        );
    }
    eprintln!("probe running time, default options:\n{table}");
}
