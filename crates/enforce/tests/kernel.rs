//! `portolan enforce` on a real kernel: a firewall namespace holding the emitted enforce
//! ruleset and the forwarder, two devices of one profile (so they share one class of
//! chains), and an outside namespace with the peers, a real dnsmasq as the site's upstream
//! (answering the names, TTLs and CNAMEs the test chose, `--host-record`/`--cname`) and a
//! second dnsmasq playing a public resolver at 8.8.8.8. The judges are the kernel (does a
//! TCP handshake to the peer complete?) and dnsmasq's configured TTLs (the element timeouts,
//! by hand: TTL + grace). Nothing is loaded outside the namespaces the test makes.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use portolan_emit::{emit, Options, Target};
use portolan_enforce::{scopes, start, status, Config, Running, Timing};
use portolan_nft::Where;
use portolan_testkit::kernel;
use portolan_testkit::netns::{ip_in, must_in, run_in, veth, Net, Procs};
use portolan_testkit::profiles::Profiles;
use serde_json::Value;

const PROFILE: &str = r#"portolan: 1
id: enforce-cam
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
    hosts: [cloud.example.com, cdn-front.example.com, brief.example.com]
    source: {doc: doc, ref: "hosts"}
  - id: fleet
    domains: ["*.fleet.example.net"]
    source: {doc: doc, ref: "domains"}
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
  - id: fleet-8883
    from: device
    to: fleet
    initiation: device
    protocol: tcp
    ports: 8883
    source: {doc: doc, ref: "row 4"}
listens: none
"#;

const SITE: &str = r#"portolan: 1
site: enforce-lab
zones:
  - id: lan
    interface: lan0
    networks: [10.70.0.0/24]
services:
  dns: firewall
devices:
  - id: cam-a
    profile: enforce-cam
    zone: lan
    addresses: [10.70.0.10]
  - id: cam-b
    profile: enforce-cam
    zone: lan
    addresses: [10.70.0.11]
"#;

const FW_LAN: &str = "10.70.0.1";
const UPSTREAM: &str = "198.51.100.53";
const PUBLIC: &str = "8.8.8.8";
const CLOUD: &str = "203.0.113.10";
const EDGE: &str = "203.0.113.20";
const BRIEF: &str = "203.0.113.30";
const FLEET_DEEP: &str = "203.0.113.40";
const FLEET_APEX: &str = "203.0.113.41";

/// Runs `f` on a thread inside namespace `ns`.
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

/// One UDP question from the current namespace; the answer, or `None` after `wait`.
fn ask_udp(server: &str, name: &str, wait: Duration) -> Option<Message> {
    let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
    s.set_read_timeout(Some(wait)).expect("timeout");
    s.send_to(&query(name, RecordType::A, 0x4242), (server, 53))
        .expect("send");
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok()
}

/// One TCP question (RFC 1035 section 4.2.2 framing).
fn ask_tcp(server: &str, name: &str) -> Option<Message> {
    use std::io::{Read, Write};
    let addr: SocketAddr = format!("{server}:53").parse().expect("addr");
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let q = query(name, RecordType::A, 0x4343);
    let mut out = u16::try_from(q.len()).expect("len").to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    c.write_all(&out).ok()?;
    let mut len = [0u8; 2];
    c.read_exact(&mut len).ok()?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    c.read_exact(&mut msg).ok()?;
    Message::from_vec(&msg).ok()
}

/// Whether a TCP handshake to `peer:port` completes within one SYN's wait (no retransmission:
/// the first packet must pass).
fn connects(peer: &str, port: u16) -> bool {
    let addr: SocketAddr = format!("{peer}:{port}").parse().expect("addr");
    TcpStream::connect_timeout(&addr, Duration::from_millis(700)).is_ok()
}

fn a_records(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

struct Lab {
    running: Option<Running>,
    /// How the forwarder was started, to start it again.
    config: Config,
    ruleset: String,
    events: Arc<Mutex<Vec<Value>>>,
    fw: String,
    dev_a: String,
    dev_b: String,
    out: String,
    _listeners: Vec<TcpListener>,
    // Dropped before the namespaces: the daemons stop first.
    _procs: Procs,
    _net: Net,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

fn lab(timing: Timing) -> Option<Lab> {
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
    ip_in(
        &fw,
        &["addr", "add", &format!("{FW_LAN}/24"), "dev", "lan0"],
    );
    for (ns, port, addr) in [(&dev_a, "a0", "10.70.0.10"), (&dev_b, "b0", "10.70.0.11")] {
        veth(&fw, port, ns, "eth0");
        ip_in(&fw, &["link", "set", port, "master", "lan0"]);
        ip_in(ns, &["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        ip_in(ns, &["route", "add", "default", "via", FW_LAN]);
    }
    veth(&fw, "wan0", &out, "eth0");
    ip_in(&fw, &["addr", "add", "198.51.100.1/24", "dev", "wan0"]);
    ip_in(&fw, &["route", "add", "default", "via", UPSTREAM]);
    ip_in(
        &out,
        &["addr", "add", &format!("{UPSTREAM}/24"), "dev", "eth0"],
    );
    for a in [PUBLIC, CLOUD, EDGE, BRIEF, FLEET_DEEP, FLEET_APEX] {
        ip_in(&out, &["addr", "add", &format!("{a}/32"), "dev", "eth0"]);
    }
    ip_in(
        &out,
        &["route", "add", "10.70.0.0/24", "via", "198.51.100.1"],
    );
    must_in(&fw, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], None);

    // The enforce policy, loaded into the firewall only.
    let policy = Profiles::catalog()
        .with_text("enforce-cam", PROFILE)
        .compile("enforce-lab.yaml", SITE);
    let opts = Options {
        enforce: true,
        ..Options::default()
    };
    let ruleset = emit(Target::Nftables, &policy, &opts).expect("the enforce policy emits");
    must_in(&fw, &["nft", "-f", "-"], Some(&ruleset));

    // Peers listen (the handshake completes in the backlog; nothing needs to accept).
    let listeners = in_ns(&out, || {
        [443u16, 8883, 853, 8443]
            .iter()
            .map(|p| TcpListener::bind(("0.0.0.0", *p)).expect("listen"))
            .collect::<Vec<_>>()
    });

    let mut procs = Procs::new();
    let dnsmasq = |listen: &str, extra: &[&str]| {
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
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // The site's resolver: the names, TTLs and CNAMEs this test chose.
    let up = dnsmasq(
        UPSTREAM,
        &[
            &format!("--host-record=cloud.example.com,{CLOUD},300"),
            "--cname=cdn-front.example.com,edge.cdn.test,60",
            &format!("--host-record=edge.cdn.test,{EDGE},300"),
            // An outside name whose CNAME points at a permitted one.
            "--cname=sneaky.test,cloud.example.com,300",
            &format!("--host-record=brief.example.com,{BRIEF},1"),
            &format!("--host-record=a.b.fleet.example.net,{FLEET_DEEP},300"),
            &format!("--host-record=fleet.example.net,{FLEET_APEX},300"),
        ],
    );
    let public = dnsmasq(
        PUBLIC,
        &[&format!("--host-record=cloud.example.com,{CLOUD},300")],
    );
    for args in [up, public] {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        procs.spawn(portolan_testkit::netns::command_in(&out, &refs));
    }
    // Wait for both to answer (from the firewall's own namespace, which nothing filters).
    for server in [UPSTREAM, PUBLIC] {
        let ok = (0..50).any(|_| {
            let s = server.to_string();
            let got = in_ns(&fw, move || {
                ask_udp(&s, "cloud.example.com", Duration::from_millis(200))
            });
            got.is_some()
        });
        assert!(ok, "dnsmasq at {server} does not answer");
    }

    let events = Arc::new(Mutex::new(Vec::new()));
    let config = Config {
        listen: format!("{FW_LAN}:53").parse().expect("addr"),
        upstream: format!("{UPSTREAM}:53").parse().expect("addr"),
        netns: Some(fw.clone()),
        timing,
        upstream_timeout: Duration::from_secs(2),
    };
    let running = forwarder(&config, &events);
    Some(Lab {
        running: Some(running),
        config,
        ruleset,
        events,
        fw,
        dev_a,
        dev_b,
        out,
        _listeners: listeners,
        _procs: procs,
        _net: net,
    })
}

fn forwarder(config: &Config, events: &Arc<Mutex<Vec<Value>>>) -> Running {
    let ev = events.clone();
    start(
        scopes_of_site(),
        config.clone(),
        Arc::new(move |v| ev.lock().expect("events").push(v)),
    )
    .expect("the forwarder starts")
}

fn quick() -> Timing {
    Timing {
        grace: Duration::from_secs(1),
        floor: Duration::from_secs(1),
        cap: Duration::from_secs(3600),
    }
}

#[test]
fn only_the_device_that_asked_reaches_a_permitted_name() {
    let _turn = kernel::turn();
    let Some(lab) = lab(quick()) else { return };
    let (a, b) = (lab.dev_a.clone(), lab.dev_b.clone());

    // Before any answer nothing is open.
    assert!(!in_ns(&a, || connects(CLOUD, 443)));

    // An outside name whose CNAME leads to a permitted name: answered, opens nothing.
    let got = in_ns(&a, || {
        ask_udp(FW_LAN, "sneaky.test", Duration::from_secs(3))
    });
    let got = got.expect("the forwarder answers an outside name");
    assert_eq!(a_records(&got), vec![CLOUD.parse::<IpAddr>().expect("ip")]);
    assert!(
        !in_ns(&a, || connects(CLOUD, 443)),
        "a CNAME into the profile opened"
    );

    // The permitted name: the first SYN right after the answer passes.
    let first = in_ns(&a, || {
        let m = ask_udp(FW_LAN, "cloud.example.com", Duration::from_secs(3));
        (m.map(|m| a_records(&m)), connects(CLOUD, 443))
    });
    assert_eq!(first.0, Some(vec![CLOUD.parse::<IpAddr>().expect("ip")]));
    assert!(first.1, "the first packet after the answer was dropped");
    // Only the flow's port, and only the device that asked.
    assert!(!in_ns(&a, || connects(CLOUD, 8443)));
    assert!(
        !in_ns(&b, || connects(CLOUD, 443)),
        "another device used cam-a's answer"
    );

    // The same device asking over TCP: the answer is there too.
    let tcp = in_ns(&a, || ask_tcp(FW_LAN, "cloud.example.com"));
    assert_eq!(
        tcp.map(|m| a_records(&m)),
        Some(vec![CLOUD.parse().expect("ip")])
    );

    // A permitted name whose CNAME leads outside the profile (a CDN): the final address opens,
    // for the smallest TTL on the chain (60 s) plus the grace.
    let cdn = in_ns(&a, || {
        ask_udp(FW_LAN, "cdn-front.example.com", Duration::from_secs(3)).is_some()
            && connects(EDGE, 443)
    });
    assert!(cdn, "a permitted name's CNAME target did not open");
    assert!(!in_ns(&b, || connects(EDGE, 443)));

    // `*.fleet.example.net`: two labels below pass, the apex does not.
    let deep = in_ns(&a, || {
        ask_udp(FW_LAN, "a.b.fleet.example.net", Duration::from_secs(3)).is_some()
            && connects(FLEET_DEEP, 8883)
    });
    assert!(deep, "a name two labels below the wildcard did not open");
    let apex = in_ns(&a, || {
        let m = ask_udp(FW_LAN, "fleet.example.net", Duration::from_secs(3));
        (m.is_some(), connects(FLEET_APEX, 8883))
    });
    assert_eq!(apex, (true, false), "the wildcard's apex opened");

    // cam-b asks for itself: now it passes too, through its own element.
    let own = in_ns(&b, || {
        ask_udp(FW_LAN, "cloud.example.com", Duration::from_secs(3)).is_some()
            && connects(CLOUD, 443)
    });
    assert!(own);

    // The kernel's sets, read back: cam-a's and cam-b's elements, with timeouts of the
    // configured TTL + 1 s grace (300 + 1; the CNAME's 60 + 1).
    let live = status(&scopes_of_site(), &Where::Netns(lab.fw.clone())).expect("status");
    let find = |dev: &str, peer: &str| {
        live.iter()
            .find(|l| l.device.to_string() == dev && l.peer.to_string() == peer)
            .cloned()
    };
    let ca = find("10.70.0.10", CLOUD).expect("cam-a's cloud element");
    assert_eq!(ca.timeout, Some(301));
    assert!(ca.expires.is_some_and(|e| e <= 301));
    assert_eq!(ca.group.as_deref(), Some("cam-a"));
    assert_eq!(ca.flow.as_deref(), Some("enforce-cam/cloud-443"));
    assert_eq!(find("10.70.0.10", EDGE).and_then(|l| l.timeout), Some(61));
    assert!(find("10.70.0.11", CLOUD).is_some());
    assert!(find("10.70.0.11", EDGE).is_none());
    assert!(find("10.70.0.10", FLEET_APEX).is_none());

    // The log says what each answer did.
    let events = lab.events.lock().expect("events").clone();
    // For the note, not a timing assertion: how long the held answers waited for the kernel.
    let waits: Vec<f64> = events
        .iter()
        .filter(|e| e["written"].as_u64().unwrap_or(0) > 0)
        .filter_map(|e| e["commit_ms"].as_f64())
        .collect();
    eprintln!("commit waits (ms) of answers that opened something: {waits:.1?}");
    let sneaky = events
        .iter()
        .find(|e| e["name"] == "sneaky.test")
        .expect("an event for sneaky.test");
    assert_eq!(sneaky["permitted"], false);
    assert_eq!(sneaky["opened"].as_array().map(Vec::len), Some(0));
}

#[test]
fn elements_survive_a_reload_and_a_restart_and_a_dead_forwarder_fails_closed() {
    let _turn = kernel::turn();
    let Some(mut lab) = lab(quick()) else { return };
    let (a, b) = (lab.dev_a.clone(), lab.dev_b.clone());
    let opened = in_ns(&a, || {
        ask_udp(FW_LAN, "cloud.example.com", Duration::from_secs(3)).is_some()
            && connects(CLOUD, 443)
    });
    assert!(opened);

    // `apply` of the same policy (the admin's reload): the element stays.
    let state = std::env::temp_dir().join(format!("pl-enforce-{}", std::process::id()));
    let applied = portolan_nft::apply::apply(
        &lab.ruleset,
        &portolan_nft::apply::Options {
            target: Where::Netns(lab.fw.clone()),
            state_dir: state.clone(),
            confirm: None,
            launcher: None,
        },
    );
    let _ = std::fs::remove_dir_all(&state);
    applied.expect("apply reloads the enforce policy");
    assert!(
        in_ns(&a, || connects(CLOUD, 443)),
        "a reload dropped an element"
    );

    // Questions at once, more than the pool has workers: extra workers start, and are still
    // waiting for questions when the forwarder stops (a stopped forwarder must not leave one
    // behind to answer, and open, what comes next).
    let burst = in_ns(&a, || {
        let asks: Vec<_> = (0..16)
            .map(|_| {
                std::thread::spawn(|| {
                    ask_udp(FW_LAN, "cloud.example.com", Duration::from_secs(3)).is_some()
                })
            })
            .collect();
        asks.into_iter()
            .map(|t| t.join().unwrap_or(false))
            .filter(|answered| *answered)
            .count()
    });
    assert_eq!(burst, 16, "every question of the burst answered");

    // The forwarder stops: what the kernel holds still admits, nothing new opens, and the
    // device's lookups fail.
    if let Some(r) = lab.running.take() {
        r.stop();
    }
    // From the moment `stop` returns, and for twice the 200 ms a worker waits for a question
    // at a time: no answer.
    let late = in_ns(&b, || {
        (0..20)
            .filter(|_| {
                ask_udp(FW_LAN, "a.b.fleet.example.net", Duration::from_millis(20)).is_some()
            })
            .count()
    });
    assert_eq!(late, 0, "a stopped forwarder answered");
    assert!(
        in_ns(&a, || connects(CLOUD, 443)),
        "elements died with the forwarder"
    );
    let dead = in_ns(&b, || {
        (
            ask_udp(FW_LAN, "a.b.fleet.example.net", Duration::from_secs(1)).is_some(),
            connects(FLEET_DEEP, 8883),
        )
    });
    assert_eq!(dead, (false, false), "a dead forwarder did not fail closed");

    // A new forwarder (an upgrade, a restart) takes over with the kernel's elements intact.
    lab.running = Some(forwarder(&lab.config, &lab.events));
    assert!(in_ns(&a, || connects(CLOUD, 443)));
    let again = in_ns(&b, || {
        ask_udp(FW_LAN, "a.b.fleet.example.net", Duration::from_secs(3)).is_some()
            && connects(FLEET_DEEP, 8883)
    });
    assert!(again, "the restarted forwarder did not open a name");
}

fn scopes_of_site() -> Vec<portolan_emit::nftables::NameScope> {
    let policy = Profiles::catalog()
        .with_text("enforce-cam", PROFILE)
        .compile("enforce-lab.yaml", SITE);
    scopes(&policy).expect("layout")
}

#[test]
fn an_expired_answer_closes_and_other_resolvers_are_blocked() {
    let _turn = kernel::turn();
    let Some(lab) = lab(quick()) else { return };
    let a = lab.dev_a.clone();

    // brief.example.com has a TTL of 1 s: its element lives 1 + 1 s.
    let first = in_ns(&a, || {
        ask_udp(FW_LAN, "brief.example.com", Duration::from_secs(3)).is_some()
            && connects(BRIEF, 443)
    });
    assert!(first, "the first packet after the answer was dropped");
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        !in_ns(&a, || connects(BRIEF, 443)),
        "an expired answer still admits"
    );
    let live = status(&scopes_of_site(), &Where::Netns(lab.fw.clone())).expect("status");
    assert!(
        !live.iter().any(|l| l.peer.to_string() == BRIEF),
        "an expired element is still listed: {live:?}"
    );

    // A public resolver (8.8.8.8, which answers: see `lab`) used directly: UDP, TCP and DoT
    // all blocked, and nothing opened through it.
    let direct = in_ns(&a, || {
        (
            ask_udp(PUBLIC, "cloud.example.com", Duration::from_secs(1)).is_some(),
            ask_tcp(PUBLIC, "cloud.example.com").is_some(),
            connects(PUBLIC, 853),
        )
    });
    assert_eq!(direct, (false, false, false), "DNS bypassed the forwarder");
    assert!(!in_ns(&a, || connects(CLOUD, 443)));
    // The firewall itself reaches that resolver: the block is the policy's.
    let fw_direct = in_ns(&lab.fw, || {
        ask_udp(PUBLIC, "cloud.example.com", Duration::from_secs(2)).is_some()
    });
    assert!(fw_direct);
    let counters = run_in(
        &lab.fw,
        &["nft", "list", "chain", "inet", "portolan", "dns_bypass"],
        None,
    )
    .expect("the bypass chain");
    assert!(!counters.contains("packets 0 bytes 0"), "{counters}");
    let _ = &lab.out;
}
