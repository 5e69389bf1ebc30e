//! A peer learnt from a DNS SRV record, enforced on a real kernel: a firewall namespace
//! holding the emitted enforce ruleset (`device . target . port` sets) and `portolan
//! enforce`'s forwarder as the devices' resolver, two devices of one profile, and an outside
//! namespace with the target and a real dnsmasq as the site's upstream serving the SRV record
//! (`--srv-host`, RFC 2782: target `broker.example.com`, port 1883) and the target's A record
//! (`--host-record`). The judge is the kernel: does a TCP handshake complete? The expected
//! outcomes come from the dnsmasq configuration this test writes (the record's target and
//! port), not from the code under test. Nothing is loaded outside the test's namespaces.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use portolan_emit::{emit, Options, Target};
use portolan_enforce::{scopes, start, status, Config, Timing};
use portolan_nft::Where;
use portolan_testkit::kernel;
use portolan_testkit::netns::{ip_in, must_in, veth, Net, Procs};
use portolan_testkit::profiles::Profiles;
use serde_json::Value;

/// The broker is learnt from `_mqtt._tcp.example.com`; the profile leaves the port to the
/// record (`ports: unspecified`).
const PROFILE: &str = r#"portolan: 2
id: srv-gw
vendor: Example
product: Gateway that finds its broker by SRV
sources:
  - id: doc
    title: Example vendor page
    file: example.txt
endpoints:
  - id: dns
    service: dns
    source: {doc: doc, ref: "dns"}
  - id: broker
    discovered: {via: srv, name: _mqtt._tcp.example.com}
    source: {doc: doc, ref: "broker discovery"}
flows:
  - id: dns
    from: device
    to: dns
    initiation: device
    protocol: udp
    ports: 53
    source: {doc: doc, ref: "row 1"}
  - id: mqtt
    from: device
    to: broker
    initiation: device
    protocol: tcp
    ports: unspecified
    source: {doc: doc, ref: "row 2"}
listens: none
"#;

const SITE: &str = r#"portolan: 1
site: srv-lab
zones:
  - id: lan
    interface: lan0
    networks: [10.71.0.0/24]
services:
  dns: firewall
devices:
  - id: gw-a
    profile: srv-gw
    zone: lan
    addresses: [10.71.0.10]
  - id: gw-b
    profile: srv-gw
    zone: lan
    addresses: [10.71.0.11]
"#;

const FW_LAN: &str = "10.71.0.1";
const UPSTREAM: &str = "198.51.100.53";
/// The SRV record's target.
const BROKER: &str = "203.0.113.50";
/// Another host of the upstream's, named by no SRV record.
const OTHER: &str = "203.0.113.51";
const SRV_NAME: &str = "_mqtt._tcp.example.com";

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

/// One UDP question from the current namespace; the answer, or `None` after 3 s.
fn ask(server: &str, name: &str, rtype: RecordType) -> Option<Message> {
    let mut m = Message::new(0x5151, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.queries
        .push(Query::query(Name::from_ascii(name).expect("name"), rtype));
    let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    s.send_to(&m.to_vec().expect("encodes"), (server, 53))
        .expect("send");
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok()
}

/// Whether a TCP handshake to `peer:port` completes within one SYN's wait.
fn connects(peer: &str, port: u16) -> bool {
    let addr: SocketAddr = format!("{peer}:{port}").parse().expect("addr");
    TcpStream::connect_timeout(&addr, Duration::from_millis(700)).is_ok()
}

#[test]
fn a_device_that_resolved_the_srv_reaches_its_target_at_its_port_only() {
    let _turn = kernel::turn();
    if let Some(why) = kernel::lacks().expect("kernel test prerequisites") {
        eprintln!("{}", kernel::skip_banner(&why));
        return;
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
    for (ns, port, addr) in [(&dev_a, "a0", "10.71.0.10"), (&dev_b, "b0", "10.71.0.11")] {
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
    for a in [BROKER, OTHER] {
        ip_in(&out, &["addr", "add", &format!("{a}/32"), "dev", "eth0"]);
    }
    ip_in(
        &out,
        &["route", "add", "10.71.0.0/24", "via", "198.51.100.1"],
    );
    must_in(&fw, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], None);

    // The enforce policy, loaded into the firewall only.
    let policy = Profiles::catalog()
        .with_text("srv-gw", PROFILE)
        .compile("srv-lab.yaml", SITE);
    let opts = Options {
        enforce: true,
        ..Options::default()
    };
    let ruleset = emit(Target::Nftables, &policy, &opts).expect("the enforce policy emits");
    must_in(&fw, &["nft", "-f", "-"], Some(&ruleset));

    // The peers listen on the record's port and on another.
    let _listeners = in_ns(&out, || {
        [1883u16, 8883]
            .iter()
            .map(|p| TcpListener::bind(("0.0.0.0", *p)).expect("listen"))
            .collect::<Vec<_>>()
    });
    // The site's resolver: the SRV record (priority 10, weight 5, port 1883) and the
    // target's A record, TTL 300 (`--local-ttl` for the SRV record, which has none of its
    // own); another host's A record.
    let mut procs = Procs::new();
    procs.spawn(portolan_testkit::netns::command_in(
        &out,
        &[
            "dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--conf-file=/dev/null",
            "--bind-interfaces",
            &format!("--listen-address={UPSTREAM}"),
            "--port=53",
            "--local-ttl=300",
            &format!("--srv-host={SRV_NAME},broker.example.com,1883,10,5"),
            &format!("--host-record=broker.example.com,{BROKER},300"),
            &format!("--host-record=other.example.com,{OTHER},300"),
        ],
    ));
    let ready = (0..50)
        .any(|_| in_ns(&fw, || ask(UPSTREAM, "broker.example.com", RecordType::A)).is_some());
    assert!(ready, "dnsmasq does not answer");

    let events = Arc::new(Mutex::new(Vec::<Value>::new()));
    let ev = events.clone();
    let config = Config {
        listen: format!("{FW_LAN}:53").parse().expect("addr"),
        upstream: format!("{UPSTREAM}:53").parse().expect("addr"),
        netns: Some(fw.clone()),
        timing: Timing {
            grace: Duration::from_secs(1),
            floor: Duration::from_secs(1),
            cap: Duration::from_secs(3600),
        },
        upstream_timeout: Duration::from_secs(2),
    };
    let scopes = scopes(&policy).expect("layout");
    let running = start(
        scopes.clone(),
        config,
        Arc::new(move |v| ev.lock().expect("events").push(v)),
    )
    .expect("the forwarder starts");

    // Before any answer nothing is open.
    assert!(!in_ns(&dev_a, || connects(BROKER, 1883)));

    // gw-a asks the SRV name: the answer names the target and port dnsmasq was given.
    let srv = in_ns(&dev_a, || ask(FW_LAN, SRV_NAME, RecordType::SRV)).expect("an SRV answer");
    let got: Vec<(String, u16)> = srv
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.target.to_ascii(), s.port)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![("broker.example.com.".to_string(), 1883)]);
    // Then its A record, as a client following RFC 2782 does.
    let a = in_ns(&dev_a, || ask(FW_LAN, "broker.example.com", RecordType::A));
    assert!(a.is_some_and(|m| !m.answers.is_empty()));

    // The record's target at the record's port passes; another port does not.
    assert!(
        in_ns(&dev_a, || connects(BROKER, 1883)),
        "the SRV target at its port did not open"
    );
    assert!(
        !in_ns(&dev_a, || connects(BROKER, 8883)),
        "the SRV target opened on a port the record does not give"
    );
    // A name no SRV answer named: answered or not, it opens nothing.
    let _ = in_ns(&dev_a, || ask(FW_LAN, "other.example.com", RecordType::A));
    assert!(!in_ns(&dev_a, || connects(OTHER, 1883)));

    // gw-b never resolved the SRV name: closed, even after asking the target's name itself.
    assert!(
        !in_ns(&dev_b, || connects(BROKER, 1883)),
        "a device that never resolved reached the target"
    );
    let _ = in_ns(&dev_b, || ask(FW_LAN, "broker.example.com", RecordType::A));
    assert!(
        !in_ns(&dev_b, || connects(BROKER, 1883)),
        "the target's name alone opened it"
    );

    // The kernel's set, read back: gw-a's triple only, for the TTL + 1 s grace.
    let live = status(&scopes, &Where::Netns(fw.clone())).expect("status");
    let mine: Vec<_> = live
        .iter()
        .map(|l| (l.device.to_string(), l.peer.to_string(), l.port, l.timeout))
        .collect();
    assert_eq!(
        mine,
        vec![(
            "10.71.0.10".to_string(),
            BROKER.to_string(),
            Some(1883),
            Some(301)
        )]
    );
    assert_eq!(live[0].flow.as_deref(), Some("srv-gw/mqtt"));
    running.stop();
    let events = events.lock().expect("events").clone();
    let srv_ev = events
        .iter()
        .find(|e| e["name"] == SRV_NAME)
        .expect("an event for the SRV answer");
    assert_eq!(srv_ev["permitted"], true);
    drop(procs);
}
