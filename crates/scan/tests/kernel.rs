//! Scans of real hosts in network namespaces the tests create, with nmap (Debian package
//! `nmap`) run on the same targets in the same test as the oracle: the open sets must be
//! equal, and every other state must be what the test built (a listener it started, a rule
//! it loaded). Kernel tests: root, `ip`, `nft`, `nmap`, `socat`, and for UDP `dnsmasq`,
//! `snmpd` and `chronyd`; each takes the kit's turn.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use portolan_scan::{Options, PortState, Reason, Scan, Transport};
use portolan_testkit::kernel;
use portolan_testkit::netns::{start_logged, wait_for};
use portolan_testkit::{Net, Procs};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address literal")
}

fn require(tools: &[&str]) {
    kernel::require_tools_checked(tools).unwrap_or_else(|e| panic!("KERNEL TEST CANNOT RUN: {e}"));
}

/// Scans from namespace `ns`.
fn scan_from(ns: &str, opts: Options) -> Scan {
    portolan_net::netns::run_in(ns, move || portolan_scan::run(&opts, &|_, _| {}))
        .expect("enter the scanner's namespace")
        .expect("the scan runs")
}

fn options(target: &str, tcp: std::ops::RangeInclusive<u16>, udp: &[u16]) -> Options {
    Options {
        target: ip(target),
        tcp: tcp.collect(),
        udp: udp.to_vec(),
        rate: portolan_scan::DEFAULT_RATE,
        interface: None,
        source: None,
        icmp: true,
        connect: false,
    }
}

/// nmap's verdicts from its grepable output (`-oG -`): the ports it lists, by state, and
/// the state and count of the ports it did not list ("Ignored State: closed (65533)").
struct Nmap {
    listed: Vec<(u16, String)>,
    ignored: Option<(String, usize)>,
}

impl Nmap {
    fn open(&self) -> BTreeSet<u16> {
        self.listed
            .iter()
            .filter(|(_, s)| s == "open")
            .map(|(p, _)| *p)
            .collect()
    }
}

fn nmap(ns: &str, args: &[&str], target: &str) -> Nmap {
    let mut all = vec!["nmap", "-n", "-Pn", "-T4", "-oG", "-"];
    all.extend_from_slice(args);
    all.push(target);
    let out = portolan_testkit::netns::must_in(ns, &all, None);
    eprintln!("nmap {}:\n{out}", all.join(" "));
    let line = out
        .lines()
        .find(|l| l.contains("Ports:") || l.contains("Ignored State:"))
        .unwrap_or_else(|| panic!("nmap printed no port line:\n{out}"));
    let mut listed = Vec::new();
    if let Some(ports) = line.split("Ports: ").nth(1) {
        let ports = ports.split('\t').next().unwrap_or_default();
        for p in ports.split(", ") {
            let f: Vec<&str> = p.split('/').collect();
            listed.push((
                f[0].trim().parse().expect("a port number"),
                f[1].to_string(),
            ));
        }
    }
    let ignored = line.split("Ignored State: ").nth(1).map(|rest| {
        let (state, count) = rest.trim().split_once(" (").expect("state (count)");
        let count = count.trim_end_matches(')').parse().expect("a count");
        (state.to_string(), count)
    });
    Nmap { listed, ignored }
}

fn open(scan: &Scan, t: Transport) -> BTreeSet<u16> {
    scan.open(t).into_iter().collect()
}

/// A TCP listener (socat) on `addr:port` inside `ns`.
fn listen_tcp(procs: &mut Procs, ns: &str, addr: &str, port: u16) {
    let mut c = portolan_testkit::netns::command_in(
        ns,
        &[
            "socat",
            &format!("TCP-LISTEN:{port},bind={addr},reuseaddr,fork"),
            "SYSTEM:true",
        ],
    );
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    procs.spawn(c);
    wait_for(
        &format!("socat on {addr}:{port}"),
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            portolan_testkit::netns::run_in(ns, &["ss", "-Htln", &format!("sport = :{port}")], None)
                .is_ok_and(|o| !o.trim().is_empty())
        },
    );
}

/// Two namespaces joined by a veth: the scanner at .1, the target at .2 of `net24`.
fn pair(net: &mut Net, net24: &str) -> (String, String) {
    let sc = net.ns("sc");
    let dev = net.ns("dev");
    net.veth(&sc, "s0", &dev, "d0");
    portolan_testkit::netns::ip_in(&sc, &["addr", "add", &format!("{net24}.1/24"), "dev", "s0"]);
    portolan_testkit::netns::ip_in(
        &dev,
        &["addr", "add", &format!("{net24}.2/24"), "dev", "d0"],
    );
    (sc, dev)
}

#[test]
fn a_resetting_host_with_real_udp_services() {
    let _turn = kernel::turn();
    require(&["ip", "nmap", "socat", "dnsmasq", "snmpd", "chronyd", "ss"]);
    let mut procs = Procs::new();
    let mut net = Net::new();
    let (sc, dev) = pair(&mut net, "10.61.0");
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = tmp.path().to_path_buf();
    for port in [22, 8443, 40022] {
        listen_tcp(&mut procs, &dev, "10.61.0.2", port);
    }
    // DNS: dnsmasq answering from no upstream (a REFUSED answer is still a DNS answer).
    let dns_log = dir.join("dnsmasq.log");
    let mut c = portolan_testkit::netns::command_in(
        &dev,
        &[
            "dnsmasq",
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--listen-address=10.61.0.2",
            "--bind-interfaces",
            "--port=53",
            &format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
            &format!("--log-facility={}", dns_log.display()),
        ],
    );
    c.env_remove("LANG");
    start_logged(&mut procs, c, &dns_log, "started", Duration::from_secs(5));
    // SNMP: net-snmp's agent, community public.
    let snmp_conf = dir.join("snmpd.conf");
    std::fs::write(
        &snmp_conf,
        "agentaddress udp:10.61.0.2:161\nrocommunity public default\n",
    )
    .expect("write snmpd.conf");
    let snmp_log = dir.join("snmpd.log");
    let c = portolan_testkit::netns::command_in(
        &dev,
        &[
            "snmpd",
            "-f",
            "-C",
            "-c",
            &snmp_conf.display().to_string(),
            "-Lf",
            &snmp_log.display().to_string(),
            "-p",
            &dir.join("snmpd.pid").display().to_string(),
        ],
    );
    start_logged(
        &mut procs,
        c,
        &snmp_log,
        "NET-SNMP version",
        Duration::from_secs(10),
    );
    // NTP: chrony serving its local clock, without touching this machine's.
    let chrony_conf = dir.join("chrony.conf");
    std::fs::write(
        &chrony_conf,
        format!(
            "allow all\nport 123\nbindaddress 10.61.0.2\nlocal stratum 8\ncmdport 0\npidfile {}\ndriftfile {}\n",
            dir.join("chrony.pid").display(),
            dir.join("drift").display()
        ),
    )
    .expect("write chrony.conf");
    let chrony_log = dir.join("chrony.log");
    let c = portolan_testkit::netns::command_in(
        &dev,
        &[
            "chronyd",
            "-d",
            "-x",
            "-f",
            &chrony_conf.display().to_string(),
            "-l",
            &chrony_log.display().to_string(),
        ],
    );
    start_logged(
        &mut procs,
        c,
        &chrony_log,
        "chronyd version",
        Duration::from_secs(10),
    );

    // Eight closed UDP ports: more than the target kernel's burst of six port unreachables,
    // so the rest come only under its one-a-second limit.
    let udp = [53, 123, 161, 500, 1900, 4500, 5353, 5683, 5684, 7000, 7001];
    let scan = scan_from(&sc, options("10.61.0.2", 1..=65535, &udp));
    let oracle_tcp = nmap(&sc, &["-sS", "-p1-65535"], "10.61.0.2");
    let oracle_udp = nmap(
        &sc,
        &["-sU", "-p53,123,161,500,1900,4500,5353,5683,5684,7000,7001"],
        "10.61.0.2",
    );

    // What the test started — the three socat listeners, dnsmasq's DNS over TCP (53) and
    // snmpd's SMUX port (199/tcp, net-snmp's default) — and what nmap says of the same host.
    assert_eq!(
        open(&scan, Transport::Tcp),
        BTreeSet::from([22, 53, 199, 8443, 40022])
    );
    assert_eq!(open(&scan, Transport::Tcp), oracle_tcp.open());
    assert_eq!(oracle_tcp.ignored, Some(("closed".to_string(), 65530)));
    assert_eq!(scan.count(Transport::Tcp, PortState::Closed), 65530);
    assert_eq!(open(&scan, Transport::Udp), BTreeSet::from([53, 123, 161]));
    assert_eq!(open(&scan, Transport::Udp), oracle_udp.open());
    // Each open UDP port answered its application's request, not just any datagram.
    for r in scan
        .ports
        .iter()
        .filter(|r| r.transport == Transport::Udp && r.state == PortState::Open)
    {
        assert!(matches!(r.reason, Reason::Answered { .. }), "{r:?}");
    }
    // The others have nothing listening (the test started nothing there): closed, each
    // by its ICMP port unreachable, also those the target's limiter held back at first.
    // nmap never calls them open; it may call a limited one open|filtered.
    for p in [500, 1900, 4500, 5353, 5683, 5684, 7000, 7001] {
        let r = scan
            .ports
            .iter()
            .find(|r| r.transport == Transport::Udp && r.port == p)
            .expect("scanned");
        assert_eq!(r.state, PortState::Closed, "{r:?}");
        assert!(
            oracle_udp.listed.contains(&(p, "closed".into()))
                || oracle_udp.listed.contains(&(p, "open|filtered".into())),
            "nmap on {p}: {:?}",
            oracle_udp.listed
        );
    }
    assert_eq!(scan.method, portolan_scan::Method::Syn);
    drop(procs);
}

#[test]
fn a_host_behind_a_dropping_router() {
    let _turn = kernel::turn();
    require(&["ip", "nft", "nmap", "socat", "ss"]);
    let mut procs = Procs::new();
    let mut net = Net::new();
    let sc = net.ns("sc");
    let rt = net.ns("rt");
    let dev = net.ns("dev");
    net.veth(&sc, "s0", &rt, "r0");
    net.veth(&rt, "r1", &dev, "d0");
    use portolan_testkit::netns::ip_in;
    ip_in(&sc, &["addr", "add", "10.62.0.1/24", "dev", "s0"]);
    ip_in(&rt, &["addr", "add", "10.62.0.254/24", "dev", "r0"]);
    ip_in(&rt, &["addr", "add", "10.62.1.254/24", "dev", "r1"]);
    ip_in(&dev, &["addr", "add", "10.62.1.2/24", "dev", "d0"]);
    ip_in(&sc, &["route", "add", "default", "via", "10.62.0.254"]);
    ip_in(&dev, &["route", "add", "default", "via", "10.62.1.254"]);
    portolan_testkit::netns::must_in(&rt, &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None);
    // The router passes 22, rejects 3000-3009 with ICMP administratively prohibited
    // (type 3 code 13), and drops the rest. 80 listens behind it, unseen.
    portolan_testkit::netns::must_in(
        &rt,
        &["nft", "-f", "-"],
        Some(
            "table ip t {\n chain forward {\n  type filter hook forward priority 0; policy drop;\n  \
             ct state established,related accept\n  tcp dport 22 accept\n  \
             tcp dport 3000-3009 reject with icmp type admin-prohibited\n }\n}\n",
        ),
    );
    listen_tcp(&mut procs, &dev, "10.62.1.2", 22);
    listen_tcp(&mut procs, &dev, "10.62.1.2", 80);

    let scan = scan_from(&sc, options("10.62.1.2", 1..=4000, &[]));
    let oracle = nmap(&sc, &["-sS", "-p1-4000"], "10.62.1.2");

    assert_eq!(open(&scan, Transport::Tcp), BTreeSet::from([22]));
    assert_eq!(open(&scan, Transport::Tcp), oracle.open());
    // Nothing closed: the router answers for nothing but 22; every other port filtered,
    // as nmap says.
    assert_eq!(scan.count(Transport::Tcp, PortState::Closed), 0);
    assert_eq!(scan.count(Transport::Tcp, PortState::Filtered), 3999);
    let nmap_filtered = oracle
        .listed
        .iter()
        .filter(|(_, s)| s == "filtered")
        .count()
        + oracle
            .ignored
            .as_ref()
            .filter(|(s, _)| s == "filtered")
            .map_or(0, |(_, n)| *n);
    assert_eq!(nmap_filtered, 3999);
    // The rejected ten are filtered too; those whose ICMP error got past the router's
    // limiter (Linux: a burst of 6, then one a second per peer) were decided by it, and it
    // names the router and code 13.
    let mut by_icmp = 0;
    for p in 3000..=3009u16 {
        let r = scan.ports.iter().find(|r| r.port == p).expect("scanned");
        assert_eq!(r.state, PortState::Filtered);
        if let Reason::Unreachable { detail } = &r.reason {
            assert!(
                detail.contains("code 13") && detail.contains("10.62.0.254"),
                "{detail}"
            );
            by_icmp += 1;
        }
    }
    assert!(
        by_icmp >= 1,
        "no rejected port was decided by the router's ICMP error"
    );
    drop(procs);
}

#[test]
fn a_host_that_limits_its_resets() {
    let _turn = kernel::turn();
    require(&["ip", "nft", "nmap", "socat", "ss"]);
    let mut procs = Procs::new();
    let mut net = Net::new();
    let (sc, dev) = pair(&mut net, "10.63.0");
    // At most 300 resets a second (a burst of 20), as an embedded stack's limiter would.
    portolan_testkit::netns::must_in(
        &dev,
        &["nft", "-f", "-"],
        Some(
            "table inet t {\n chain out {\n  type filter hook output priority 0; policy accept;\n  \
             tcp flags & rst == rst limit rate over 300/second burst 20 packets drop\n }\n}\n",
        ),
    );
    listen_tcp(&mut procs, &dev, "10.63.0.2", 2222);

    let scan = scan_from(&sc, options("10.63.0.2", 1..=3000, &[]));
    let oracle = nmap(&sc, &["-sS", "-p1-3000"], "10.63.0.2");

    assert_eq!(open(&scan, Transport::Tcp), BTreeSet::from([2222]));
    assert_eq!(open(&scan, Transport::Tcp), oracle.open());
    // Nothing on the path filters: every other port is closed, none called filtered for a
    // reset the limiter held back.
    assert_eq!(
        scan.count(Transport::Tcp, PortState::Filtered),
        0,
        "{:?}",
        scan.ports
            .iter()
            .filter(|r| r.state == PortState::Filtered)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(scan.count(Transport::Tcp, PortState::Closed), 2999);
    drop(procs);
}

#[test]
fn without_raw_sockets_connect_decides_the_same() {
    let _turn = kernel::turn();
    require(&["ip", "socat", "ss"]);
    let mut procs = Procs::new();
    let mut net = Net::new();
    let (sc, dev) = pair(&mut net, "10.64.0");
    listen_tcp(&mut procs, &dev, "10.64.0.2", 631);
    let mut o = options("10.64.0.2", 1..=2000, &[]);
    o.connect = true;
    let scan = scan_from(&sc, o);
    assert_eq!(scan.method, portolan_scan::Method::Connect);
    assert_eq!(open(&scan, Transport::Tcp), BTreeSet::from([631]));
    assert_eq!(scan.count(Transport::Tcp, PortState::Closed), 1999);
    drop(procs);
}

#[test]
fn an_ipv6_host() {
    let _turn = kernel::turn();
    require(&["ip", "nmap", "socat", "ss"]);
    let mut procs = Procs::new();
    let mut net = Net::new();
    let sc = net.ns("sc");
    let dev = net.ns("dev");
    net.veth(&sc, "s0", &dev, "d0");
    use portolan_testkit::netns::ip_in;
    ip_in(&sc, &["addr", "add", "fd00:65::1/64", "dev", "s0", "nodad"]);
    ip_in(
        &dev,
        &["addr", "add", "fd00:65::2/64", "dev", "d0", "nodad"],
    );
    let mut c = portolan_testkit::netns::command_in(
        &dev,
        &[
            "socat",
            "TCP6-LISTEN:8022,bind=[fd00:65::2],reuseaddr,fork",
            "SYSTEM:true",
        ],
    );
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    procs.spawn(c);
    wait_for(
        "socat on [fd00:65::2]:8022",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            portolan_testkit::netns::run_in(&dev, &["ss", "-Htln", "sport = :8022"], None)
                .is_ok_and(|o| !o.trim().is_empty())
        },
    );
    let scan = scan_from(&sc, options("fd00:65::2", 1..=10000, &[]));
    let oracle = nmap(&sc, &["-6", "-sS", "-p1-10000"], "fd00:65::2");
    assert_eq!(scan.method, portolan_scan::Method::Syn);
    assert_eq!(open(&scan, Transport::Tcp), BTreeSet::from([8022]));
    assert_eq!(open(&scan, Transport::Tcp), oracle.open());
    assert_eq!(oracle.ignored, Some(("closed".to_string(), 9999)));
    assert_eq!(scan.count(Transport::Tcp, PortState::Closed), 9999);
    drop(procs);
}
