//! The daemon's parts beyond the first landing, on a real kernel: conntrack-aware refresh,
//! the unlisted-name policy, AAAA over IPv4 and A over IPv6, bypassing DNS redirected, DoH
//! endpoints blocked, and the Prometheus endpoint read by a real parser (Python's
//! `prometheus_client`, Debian package python3-prometheus-client).
//!
//! The lab (its own, beside `kernel.rs`'s): a firewall namespace with the emitted enforce
//! ruleset and the forwarder on `[::]:53`, two dual-stack devices of one profile, and an
//! outside namespace with the peers (an echo server on 443 for every peer address), a real
//! dnsmasq as the site's upstream (names, TTLs, A and AAAA the test chose) and a second one
//! playing a public resolver at 8.8.8.8 that answers other addresses. The judges are the
//! kernel (does a handshake complete, does an echo come back?), dnsmasq's configured records
//! and the parser. Nothing is loaded outside the namespaces the test makes.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use portolan_emit::{emit, Options as EmitOptions, Target};
use portolan_enforce::{scopes, start_with, status, Config, Options, Running, Timing, Unlisted};
use portolan_nft::Where;
use portolan_testkit::kernel;
use portolan_testkit::netns::{command_in, ip_in, must_in, veth, Net, Procs};
use portolan_testkit::profiles::Profiles;
use serde_json::Value;

const PROFILE: &str = r#"portolan: 1
id: daemon-cam
vendor: Example
product: Camera
sources:
  - id: doc
    title: Example vendor page
    file: example.txt
endpoints:
  - id: dns
    service: dns
    source: {doc: doc, ref: "dns"}
  - id: cloud
    hosts: [cloud.example.com, live.example.com, idle.example.com]
    source: {doc: doc, ref: "hosts"}
  - id: web
    addresses: [203.0.113.0/24, 1.1.1.1, 198.51.100.77]
    source: {doc: doc, ref: "web"}
flows:
  - id: dns
    from: device
    to: dns
    initiation: device
    protocol: udp
    ports: 53
    source: {doc: doc, ref: "row 1"}
  - id: dns-tcp
    from: device
    to: dns
    initiation: device
    protocol: tcp
    ports: 53
    source: {doc: doc, ref: "row 2"}
  - id: cloud-443
    from: device
    to: cloud
    initiation: device
    protocol: tcp
    ports: 443
    source: {doc: doc, ref: "row 3"}
  - id: web-8080
    from: device
    to: web
    initiation: device
    protocol: tcp
    ports: 8080
    source: {doc: doc, ref: "row 4"}
listens: none
"#;

const SITE: &str = r#"portolan: 1
site: daemon-lab
zones:
  - id: lan
    interface: lan0
    networks: [10.70.0.0/24, "fd70::/64"]
services:
  dns: firewall
devices:
  - id: cam-a
    profile: daemon-cam
    zone: lan
    addresses: [10.70.0.10, "fd70::10"]
  - id: cam-b
    profile: daemon-cam
    zone: lan
    addresses: [10.70.0.11, "fd70::11"]
"#;

const FW4: &str = "10.70.0.1";
const FW6: &str = "fd70::1";
const UPSTREAM: &str = "198.51.100.53";
const PUBLIC: &str = "8.8.8.8";
const CLOUD: &str = "203.0.113.10";
const CLOUD6: &str = "2001:db8:113::10";
const LIVE: &str = "203.0.113.20";
const IDLE: &str = "203.0.113.30";
/// What the public resolver answers for cloud.example.com: an answer with it came from there.
const DECOY: &str = "203.0.113.99";
/// A shipped DoH address (Cloudflare) and one the site adds.
const DOH_SHIPPED: &str = "1.1.1.1";
const DOH_SITE: &str = "198.51.100.77";

fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("namespace file");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        f()
    })
    .join()
    .expect("the namespace thread")
}

fn query(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.queries
        .push(Query::query(Name::from_ascii(name).expect("name"), rtype));
    m.to_vec().expect("encodes")
}

/// One UDP question to `server` (port 53) from the current namespace.
fn ask(server: &str, name: &str, rtype: RecordType) -> Option<Message> {
    let ip: IpAddr = server.parse().expect("server");
    let s = UdpSocket::bind(if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    s.send_to(&query(name, rtype, 0x5151), SocketAddr::new(ip, 53))
        .expect("send");
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok()
}

/// One TCP question (RFC 1035 section 4.2.2 framing).
fn ask_tcp(server: &str, name: &str) -> Option<Message> {
    let addr: SocketAddr = format!("{server}:53").parse().expect("addr");
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let q = query(name, RecordType::A, 0x5252);
    let mut out = u16::try_from(q.len()).expect("len").to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    c.write_all(&out).ok()?;
    let mut len = [0u8; 2];
    c.read_exact(&mut len).ok()?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    c.read_exact(&mut msg).ok()?;
    Message::from_vec(&msg).ok()
}

fn addrs(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// Whether a handshake to `peer:port` completes within one SYN's wait (no retransmission).
fn connects(peer: &str, port: u16) -> bool {
    let ip: IpAddr = peer.parse().expect("peer");
    TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_millis(700)).is_ok()
}

/// An echo server on `[::]:443` and `:8080` in the current namespace (every peer address),
/// until `stop`.
fn echo_servers(stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    [443u16, 8080]
        .into_iter()
        .map(|port| {
            let l = TcpListener::bind(("::", port)).expect("listen");
            l.set_nonblocking(true).expect("nonblocking");
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match l.accept() {
                        Ok((mut c, _)) => {
                            let _ = c.set_nonblocking(false);
                            let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
                            std::thread::spawn(move || {
                                let mut buf = [0u8; 512];
                                while let Ok(n) = c.read(&mut buf) {
                                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        })
        .collect()
}

struct Lab {
    running: Option<Running>,
    /// How the forwarder was started, to start it again.
    config: Config,
    opts: Options,
    events: Arc<Mutex<Vec<Value>>>,
    fw: String,
    dev_a: String,
    dev_b: String,
    stop_echo: Arc<AtomicBool>,
    _procs: Procs,
    _net: Net,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
        self.stop_echo.store(true, Ordering::SeqCst);
    }
}

fn policy() -> portolan_model::ir::Policy {
    Profiles::catalog()
        .with_text("daemon-cam", PROFILE)
        .compile("daemon-lab.yaml", SITE)
}

fn lab(emit_opts: EmitOptions, timing: Timing, opts: Options) -> Option<Lab> {
    if let Some(why) = kernel::lacks().expect("kernel test prerequisites") {
        eprintln!("{}", kernel::skip_banner(&why));
        return None;
    }
    kernel::require_tools(&["dnsmasq"]);
    let mut net = Net::new();
    let fw = net.ns("fw");
    let dev_a = net.ns("deva");
    let dev_b = net.ns("devb");
    let out = net.ns("out");
    ip_in(&fw, &["link", "add", "lan0", "type", "bridge"]);
    ip_in(&fw, &["link", "set", "lan0", "up"]);
    ip_in(&fw, &["addr", "add", &format!("{FW4}/24"), "dev", "lan0"]);
    ip_in(
        &fw,
        &["addr", "add", &format!("{FW6}/64"), "dev", "lan0", "nodad"],
    );
    for (ns, port, v4, v6) in [
        (&dev_a, "a0", "10.70.0.10", "fd70::10"),
        (&dev_b, "b0", "10.70.0.11", "fd70::11"),
    ] {
        veth(&fw, port, ns, "eth0");
        ip_in(&fw, &["link", "set", port, "master", "lan0"]);
        ip_in(ns, &["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
        ip_in(
            ns,
            &["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"],
        );
        ip_in(ns, &["route", "add", "default", "via", FW4]);
        ip_in(ns, &["-6", "route", "add", "default", "via", FW6]);
    }
    veth(&fw, "wan0", &out, "eth0");
    ip_in(&fw, &["addr", "add", "198.51.100.1/24", "dev", "wan0"]);
    ip_in(&fw, &["addr", "add", "fd51::1/64", "dev", "wan0", "nodad"]);
    ip_in(&fw, &["route", "add", "default", "via", UPSTREAM]);
    ip_in(&fw, &["-6", "route", "add", "default", "via", "fd51::53"]);
    ip_in(
        &out,
        &["addr", "add", &format!("{UPSTREAM}/24"), "dev", "eth0"],
    );
    ip_in(
        &out,
        &["addr", "add", "fd51::53/64", "dev", "eth0", "nodad"],
    );
    for a in [PUBLIC, CLOUD, LIVE, IDLE, DECOY, DOH_SHIPPED, DOH_SITE] {
        ip_in(&out, &["addr", "add", &format!("{a}/32"), "dev", "eth0"]);
    }
    ip_in(
        &out,
        &[
            "addr",
            "add",
            &format!("{CLOUD6}/128"),
            "dev",
            "eth0",
            "nodad",
        ],
    );
    ip_in(
        &out,
        &["route", "add", "10.70.0.0/24", "via", "198.51.100.1"],
    );
    ip_in(&out, &["-6", "route", "add", "fd70::/64", "via", "fd51::1"]);
    must_in(
        &fw,
        &[
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ],
        None,
    );

    let ruleset = emit(
        Target::Nftables,
        &policy(),
        &EmitOptions {
            enforce: true,
            ..emit_opts
        },
    )
    .expect("the enforce policy emits");
    must_in(&fw, &["nft", "-f", "-"], Some(&ruleset));

    let stop_echo = Arc::new(AtomicBool::new(false));
    let s = stop_echo.clone();
    // The servers' threads are started from a thread inside `out`, so they live there.
    in_ns(&out, move || {
        for t in echo_servers(s) {
            drop(t);
        }
    });

    let mut procs = Procs::new();
    let dnsmasq = |listen: &str, extra: &[String]| {
        let mut a = vec![
            "dnsmasq".to_string(),
            "--keep-in-foreground".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--pid-file=".into(),
            "--conf-file=/dev/null".into(),
            "--bind-interfaces".into(),
            format!("--listen-address={listen}"),
            "--port=53".into(),
        ];
        a.extend(extra.iter().cloned());
        a
    };
    let up = dnsmasq(
        UPSTREAM,
        &[
            format!("--host-record=cloud.example.com,{CLOUD},{CLOUD6},300"),
            format!("--host-record=live.example.com,{LIVE},2"),
            format!("--host-record=idle.example.com,{IDLE},2"),
            format!("--host-record=dns.google,{PUBLIC},300"),
            "--host-record=outside.test,203.0.113.50,300".into(),
        ],
    );
    let public = dnsmasq(
        PUBLIC,
        &[format!("--host-record=cloud.example.com,{DECOY},300")],
    );
    for args in [up, public] {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        procs.spawn(command_in(&out, &refs));
    }
    for server in [UPSTREAM, PUBLIC] {
        let ok = (0..50).any(|_| {
            let s = server.to_string();
            in_ns(&fw, move || ask(&s, "cloud.example.com", RecordType::A)).is_some()
        });
        assert!(ok, "dnsmasq at {server} does not answer");
    }

    let events = Arc::new(Mutex::new(Vec::new()));
    let config = Config {
        listen: "[::]:53".parse().expect("addr"),
        upstream: format!("{UPSTREAM}:53").parse().expect("addr"),
        netns: Some(fw.clone()),
        timing,
        upstream_timeout: Duration::from_secs(2),
    };
    let running = forwarder(&config, &opts, &events);
    Some(Lab {
        running: Some(running),
        config,
        opts,
        events,
        fw,
        dev_a,
        dev_b,
        stop_echo,
        _procs: procs,
        _net: net,
    })
}

fn forwarder(config: &Config, opts: &Options, events: &Arc<Mutex<Vec<Value>>>) -> Running {
    let ev = events.clone();
    start_with(
        scopes(&policy()).expect("layout"),
        config.clone(),
        opts.clone(),
        Arc::new(move |v| ev.lock().expect("events").push(v)),
    )
    .expect("the forwarder starts")
}

fn timing(grace: u64, floor: u64) -> Timing {
    Timing {
        grace: Duration::from_secs(grace),
        floor: Duration::from_secs(floor),
        cap: Duration::from_secs(3600),
    }
}

fn events_of(lab: &Lab, kind: &str) -> Vec<Value> {
    lab.events
        .lock()
        .expect("events")
        .iter()
        .filter(|e| e["event"] == kind)
        .cloned()
        .collect()
}

#[test]
fn a_live_flow_keeps_its_element_past_the_ttl_and_an_idle_one_expires() {
    let _turn = kernel::turn();
    // TTL 2 s, no grace, floor 1 s: each element lives 2 s unless refreshed. The sweep runs
    // every 333 ms (a third of the floor) and refreshes for 2 s (six sweeps).
    let Some(lab) = lab(EmitOptions::default(), timing(0, 1), Options::default()) else {
        return;
    };
    let a = lab.dev_a.clone();
    let (live, idle) = in_ns(&a, || {
        let l = ask(FW4, "live.example.com", RecordType::A).map(|m| addrs(&m));
        let i = ask(FW4, "idle.example.com", RecordType::A).map(|m| addrs(&m));
        (l, i)
    });
    assert_eq!(live, Some(vec![LIVE.to_string()]));
    assert_eq!(idle, Some(vec![IDLE.to_string()]));

    // One connection to LIVE stays open, echoing every 250 ms for 5 s (past the 2 s TTL);
    // one to IDLE is opened and closed at once.
    let echoed = in_ns(&a, || {
        assert!(connects(IDLE, 443), "the idle name's first connection");
        let mut c = TcpStream::connect_timeout(
            &format!("{LIVE}:443").parse().expect("addr"),
            Duration::from_millis(700),
        )
        .expect("the live connection");
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let started = Instant::now();
        let mut rounds = 0;
        while started.elapsed() < Duration::from_secs(5) {
            let mut buf = [0u8; 4];
            if c.write_all(b"ping").is_err() || c.read_exact(&mut buf).is_err() {
                return (rounds, None);
            }
            rounds += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
        // Past the TTL, with the live connection still open: a new connection of the same
        // flow to LIVE passes (its element was kept); to IDLE (no live flow) it is dropped.
        let again = (connects(LIVE, 443), connects(IDLE, 443));
        (rounds, Some((c, again)))
    });
    let (rounds, rest) = echoed;
    let (conn, (live_again, idle_again)) = rest.expect("the live connection was cut");
    assert!(rounds >= 15, "only {rounds} echoes");
    assert!(live_again, "an element with a live flow expired at its TTL");
    assert!(
        !idle_again,
        "an element without a live flow outlived its TTL"
    );

    let live_now = status(
        &scopes(&policy()).expect("layout"),
        &Where::Netns(lab.fw.clone()),
    )
    .expect("status");
    assert!(live_now.iter().any(|l| l.peer.to_string() == LIVE));
    assert!(!live_now.iter().any(|l| l.peer.to_string() == IDLE));
    let refreshed = events_of(&lab, "refresh");
    assert!(
        refreshed
            .iter()
            .any(|e| e["peer"] == LIVE && e["flow"] == "daemon-cam/cloud-443"),
        "{refreshed:?}"
    );
    assert!(refreshed.iter().all(|e| e["peer"] != IDLE));
    assert!(events_of(&lab, "expired").iter().any(|e| e["peer"] == IDLE));

    // The flow ends: the element is let go within the refresh (2 s) and a sweep.
    drop(conn);
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        !in_ns(&a, || connects(LIVE, 443)),
        "the element outlived its flow"
    );
}

#[test]
fn a_restarted_forwarder_keeps_the_live_flows_of_elements_it_did_not_write() {
    let _turn = kernel::turn();
    let Some(mut lab) = lab(EmitOptions::default(), timing(0, 1), Options::default()) else {
        return;
    };
    let a = lab.dev_a.clone();
    // The first forwarder answers (TTL 2 s) and the device opens a connection; then the
    // forwarder is replaced by a new one (a restart, an upgrade) while the flow goes on.
    let conn = in_ns(&a, || {
        assert!(ask(FW4, "live.example.com", RecordType::A).is_some());
        let c = TcpStream::connect_timeout(
            &format!("{LIVE}:443").parse().expect("addr"),
            Duration::from_millis(700),
        )
        .expect("the live connection");
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        c
    });
    if let Some(r) = lab.running.take() {
        r.stop();
    }
    lab.running = Some(forwarder(&lab.config, &lab.opts, &lab.events));
    let mut c = conn;
    let again = in_ns(&a, move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(4) {
            let mut buf = [0u8; 4];
            if c.write_all(b"ping").is_err() || c.read_exact(&mut buf).is_err() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Some(connects(LIVE, 443))
    });
    assert_eq!(
        again,
        Some(true),
        "the new forwarder let a live flow's element expire"
    );
    assert!(events_of(&lab, "refresh").iter().any(|e| e["peer"] == LIVE));
}

#[test]
fn names_outside_the_devices_flows_are_answered_refused_or_nxdomain_by_policy() {
    let _turn = kernel::turn();
    for (policy, want) in [
        (Unlisted::Refuse, ResponseCode::Refused),
        (Unlisted::Nxdomain, ResponseCode::NXDomain),
    ] {
        let opts = Options {
            unlisted: policy,
            ..Options::default()
        };
        let Some(lab) = lab(EmitOptions::default(), timing(1, 1), opts) else {
            return;
        };
        let got = in_ns(&lab.dev_a, || {
            (
                ask(FW4, "outside.test", RecordType::A),
                ask(FW4, "cloud.example.com", RecordType::A),
            )
        });
        // outside.test exists upstream (203.0.113.50): the policy's answer has no record.
        let outside = got.0.expect("an answer for outside.test");
        assert_eq!(outside.metadata.response_code, want, "{policy:?}");
        assert!(outside.answers.is_empty());
        assert_eq!(outside.metadata.id, 0x5151);
        // A name of the device's flows is answered as the upstream says.
        let cloud = got.1.expect("an answer for cloud.example.com");
        assert_eq!(cloud.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addrs(&cloud), vec![CLOUD.to_string()]);
        let refused = events_of(&lab, "refused");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0]["name"], "outside.test");
        // Nothing reached the upstream for it: no answer event names it.
        assert!(events_of(&lab, "answer")
            .iter()
            .all(|e| e["name"] != "outside.test"));
    }
}

#[test]
fn the_peers_family_decides_the_set_aaaa_over_ipv4_and_a_over_ipv6() {
    let _turn = kernel::turn();
    let Some(lab) = lab(EmitOptions::default(), timing(1, 1), Options::default()) else {
        return;
    };
    let (a, b) = (lab.dev_a.clone(), lab.dev_b.clone());
    // Nothing open before.
    assert!(!in_ns(&a, || connects(CLOUD6, 443)));
    // AAAA asked over IPv4: cam-a's IPv6 address reaches the IPv6 peer, from the first SYN.
    let v6 = in_ns(&a, || {
        let m = ask(FW4, "cloud.example.com", RecordType::AAAA).map(|m| addrs(&m));
        (m, connects(CLOUD6, 443))
    });
    assert_eq!(v6.0, Some(vec![CLOUD6.to_string()]));
    assert!(
        v6.1,
        "an AAAA asked over IPv4 did not open the device's IPv6 address"
    );
    assert!(
        !in_ns(&b, || connects(CLOUD6, 443)),
        "cam-b used cam-a's answer"
    );
    // IPv4 stays closed: only the AAAA was asked.
    assert!(!in_ns(&a, || connects(CLOUD, 443)));
    // A asked over IPv6 (to the firewall's IPv6 address): the IPv4 peer opens for cam-a's
    // IPv4 address.
    let v4 = in_ns(&a, || {
        let m = ask(FW6, "cloud.example.com", RecordType::A).map(|m| addrs(&m));
        (m, connects(CLOUD, 443))
    });
    assert_eq!(v4.0, Some(vec![CLOUD.to_string()]));
    assert!(
        v4.1,
        "an A asked over IPv6 did not open the device's IPv4 address"
    );
    assert!(!in_ns(&b, || connects(CLOUD, 443)));
    let live = status(
        &scopes(&policy()).expect("layout"),
        &Where::Netns(lab.fw.clone()),
    )
    .expect("status");
    let mut pairs: Vec<(String, String)> = live
        .iter()
        .map(|l| (l.device.to_string(), l.peer.to_string()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("10.70.0.10".to_string(), CLOUD.to_string()),
            ("fd70::10".to_string(), CLOUD6.to_string()),
        ]
    );
}

/// The metrics endpoint's samples, parsed by prometheus_client's text parser: name and
/// labels (sorted, `k=v,...`) to value.
fn scrape(addr: SocketAddr) -> std::collections::BTreeMap<String, f64> {
    let mut c = TcpStream::connect(addr).expect("metrics");
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut resp = String::new();
    c.read_to_string(&mut resp).expect("response");
    let (head, body) = resp.split_once("\r\n\r\n").expect("http");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[f"{fam.type}:{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;
    let mut py = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (Debian python3-prometheus-client)");
    py.stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = py.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "prometheus_client rejects the exposition: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn bypassing_dns_is_redirected_doh_endpoints_blocked_and_all_of_it_counted() {
    let _turn = kernel::turn();
    let emit_opts = EmitOptions {
        dns_redirect: true,
        doh: vec![DOH_SITE.parse().expect("ip")],
        ..EmitOptions::default()
    };
    let opts = Options {
        metrics: Some("127.0.0.1:0".parse().expect("addr")),
        ..Options::default()
    };
    let Some(lab) = lab(emit_opts, timing(1, 1), opts) else {
        return;
    };
    let metrics = lab
        .running
        .as_ref()
        .and_then(|r| r.metrics)
        .expect("metrics bound");
    let before = scrape(metrics);
    assert_eq!(
        before.get("counter:portolan_enforce_bypass_attempts_total{kind=redirect}"),
        Some(&0.0)
    );
    let a = lab.dev_a.clone();

    // The device asks 8.8.8.8 directly, over UDP and TCP: the firewall's forwarder answers
    // (the upstream's address, not the public resolver's DECOY), and its answer opens.
    let got = in_ns(&a, || {
        let udp = ask(PUBLIC, "cloud.example.com", RecordType::A).map(|m| addrs(&m));
        let tcp = ask_tcp(PUBLIC, "cloud.example.com").map(|m| addrs(&m));
        // Over IPv6 to Google's resolver address, where nothing listens in this lab: only
        // the redirect can answer.
        let v6 = ask("2001:4860:4860::8888", "cloud.example.com", RecordType::A).map(|m| addrs(&m));
        (udp, tcp, connects(CLOUD, 443), v6)
    });
    assert_eq!(
        got.3,
        Some(vec![CLOUD.to_string()]),
        "IPv6 UDP 53 not redirected"
    );
    assert_eq!(
        got.0,
        Some(vec![CLOUD.to_string()]),
        "UDP 53 not redirected"
    );
    assert_eq!(
        got.1,
        Some(vec![CLOUD.to_string()]),
        "TCP 53 not redirected"
    );
    assert!(got.2, "the redirected answer did not open");
    // DNS over TLS is still dropped.
    assert!(!in_ns(&a, || connects(PUBLIC, 853)));

    // The profile admits 1.1.1.1 and 198.51.100.77 on 8080 (its `web` flow): that passes,
    // but 443 to them is DoH and dropped (1.1.1.1 shipped, 198.51.100.77 the site's own),
    // whatever the flows say; and a device's lookup of dns.google is reported.
    let doh = in_ns(&a, || {
        (
            connects(DOH_SHIPPED, 8080),
            connects(DOH_SHIPPED, 443),
            connects(DOH_SITE, 443),
            ask(FW4, "dns.google", RecordType::A).is_some(),
        )
    });
    assert_eq!(doh, (true, false, false, true));
    let lookups = events_of(&lab, "doh-lookup");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0]["name"], "dns.google");

    let after = scrape(metrics);
    let get = |k: &str| {
        *after
            .get(k)
            .unwrap_or_else(|| panic!("no {k} in {after:?}"))
    };
    // By hand: three redirected connections (two UDP flows, one TCP connection; a nat chain
    // sees each connection's first packet only); two DoH SYNs (one each, well within the
    // first retransmission); one SYN to 853; one DoH lookup.
    assert_eq!(
        get("counter:portolan_enforce_bypass_attempts_total{kind=redirect}"),
        3.0
    );
    assert_eq!(
        get("counter:portolan_enforce_bypass_attempts_total{kind=doh}"),
        2.0
    );
    assert_eq!(
        get("counter:portolan_enforce_bypass_attempts_total{kind=dns}"),
        1.0
    );
    assert_eq!(get("counter:portolan_enforce_doh_lookups_total{}"), 1.0);
    // Four answers: the three redirected and dns.google; the first opened one element and
    // the others found it already there (no transaction).
    assert_eq!(get("counter:portolan_enforce_answers_total{}"), 4.0);
    assert_eq!(get("counter:portolan_enforce_elements_added_total{}"), 1.0);
    assert_eq!(
        get("histogram:portolan_enforce_commit_seconds_count{}"),
        1.0
    );
    assert_eq!(
        get("histogram:portolan_enforce_commit_seconds_bucket{le=+Inf}"),
        1.0
    );
    assert!(get("histogram:portolan_enforce_commit_seconds_sum{}") > 0.0);
}
