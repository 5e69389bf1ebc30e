//! Least privilege against an adversary, in a real kernel: the emitted rulesets (nftables and
//! iptables) loaded into a firewall namespace between namespaces standing for the zones, and
//! packets sent as an attacker would send them.
//!
//! - A source address of the management zone sent from the WAN side (spoofed) must not reach
//!   the SNMP and ser2net ports of the example site's WCC Lite, and a device's address sent
//!   from the WAN side must not reach the device's telemetry server; the same packets from the
//!   right interfaces pass. The spoofing check also guards the firewall's own input.
//! - DHCP discovery (source 0.0.0.0, to 255.255.255.255) is admitted only from the device's
//!   MAC; its rebinding broadcast from its own address (RFC 2131 section 4.4.5) passes from
//!   its MAC, and a device whose profile has no DHCP flow cannot send DHCP broadcasts from
//!   its own address, even from its own MAC.
//! - A multicast flow (SSDP, 239.255.255.250:1900) admits its group on the zone's interface,
//!   and never unicast to the peer's port.
//!
//! What passed and what did not is read from the kernel: nftables counters in the receiving
//! namespace (or, for the firewall's own input, in a chain after the filter). Each drop is
//! preceded by a control that sends the same packet with no ruleset loaded and sees it
//! arrive, so a drop is the ruleset's doing, not the topology's. Every namespace is created
//! here, named `pl<pid>…`, and removed when the test ends (also on failure).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use portolan_emit::{emit, Options, Target};
use portolan_lab::netns::Handle;
use portolan_model::ir::Policy;
use portolan_testkit::kernel;
use portolan_testkit::netns::{ip_in, must_in, Net};
use portolan_testkit::Profiles;
use socket2::{Domain, Socket, Type};

fn compile(file: &str, text: &str, inline: &[(&str, &str)]) -> Policy {
    let mut profiles = Profiles::catalog();
    for (name, yaml) in inline {
        profiles = profiles.with_text(name, yaml);
    }
    profiles.compile(file, text)
}

fn example() -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site.yaml");
    let text = std::fs::read_to_string(&path).expect("example site");
    compile(&path.display().to_string(), &text, &[])
}

/// Runs a program in a namespace, `stdin` as its input; panics when it fails.
fn run(ns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut all = vec![program];
    all.extend_from_slice(args);
    must_in(ns, &all, stdin)
}

/// A router that forwards and does not filter by reverse path itself (the kernel's own
/// `rp_filter` would drop a spoofed packet before the ruleset sees it).
fn router(fw: &str) {
    for s in [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ] {
        run(fw, "sysctl", &["-qw", s], None);
    }
}

fn no_rp_filter(fw: &str, ifs: &[&str]) {
    for i in ifs {
        run(
            fw,
            "sysctl",
            &["-qw", &format!("net.ipv4.conf.{i}.rp_filter=0")],
            None,
        );
    }
}

/// A table counting packets by port, in `hook` at a priority after the filter's.
fn observer(ns: &str, hook: &str, counted: &[(&str, &str)]) {
    let mut rules = String::new();
    for (m, name) in counted {
        rules.push_str(&format!("\t\t{m} counter comment \"{name}\"\n"));
    }
    let text = format!(
        "table inet obs {{\n\tchain obs_{hook} {{\n\t\ttype filter hook {hook} priority 10; policy accept;\n{rules}\t}}\n}}\n"
    );
    run(ns, "nft", &["-f", "-"], Some(&text));
}

/// The packets counted by the rule whose comment is `name` (or whose text holds it).
fn counted(ns: &str, table: &str, chain: &str, name: &str) -> u64 {
    let listed = run(ns, "nft", &["list", "chain", "inet", table, chain], None);
    listed
        .lines()
        .find(|l| l.contains(name) && l.contains("counter packets"))
        .and_then(|l| {
            let rest = &l[l.find("counter packets ")? + "counter packets ".len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no counter `{name}` in {chain} of {ns}:\n{listed}"))
}

/// The packets the iptables rule of `chain` ending in `target` counted (`iptables-save -c`).
fn ipt_counted(ns: &str, chain: &str, target: &str) -> u64 {
    let saved = run(ns, "iptables-save", &["-c"], None);
    saved
        .lines()
        .find(|l| l.contains(&format!("-A {chain} ")) && l.ends_with(&format!("-j {target}")))
        .and_then(|l| l.strip_prefix('[')?.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no rule -A {chain} … -j {target}:\n{saved}"))
}

/// Runs `f` on a thread inside namespace `ns`.
fn inside<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let h = Handle::open(ns).expect("namespace handle");
    std::thread::spawn(move || {
        h.enter().expect("enter namespace");
        f()
    })
    .join()
    .expect("thread in namespace")
}

/// One UDP datagram from `src` to `dst`; `device` binds the socket to an interface (needed
/// to broadcast from 0.0.0.0).
fn udp(ns: &str, src: SocketAddr, dst: SocketAddr, device: Option<&str>) {
    let device = device.map(str::to_string);
    inside(ns, move || {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("socket");
        s.set_reuse_address(true).expect("reuse");
        s.set_broadcast(true).expect("broadcast");
        if let Some(d) = &device {
            s.bind_device(Some(d.as_bytes())).expect("bind device");
        }
        s.bind(&src.into()).expect("bind source");
        s.send_to(b"portolan least privilege", &dst.into())
            .expect("send");
    });
    std::thread::sleep(Duration::from_millis(200));
}

/// A TCP SYN from `src` to `dst` (the connection is not awaited).
fn syn(ns: &str, src: SocketAddr, dst: SocketAddr) {
    inside(ns, move || {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        s.bind(&src.into()).expect("bind source");
        s.set_nonblocking(true).expect("nonblocking");
        let _ = s.connect(&dst.into());
        std::thread::sleep(Duration::from_millis(300));
    });
}

fn sa(a: &str, port: u16) -> SocketAddr {
    SocketAddr::new(a.parse().expect("address"), port)
}

/// The example's firewall: field (lan0), mgmt (mgmt0) and a WAN (wan0) that an attacker
/// sends from.
struct Example {
    _net: Net,
    fw: String,
    field: String,
    mgmt: String,
    wan: String,
}

fn example_topology() -> Example {
    let mut net = Net::new();
    let (fw, field, mgmt, wan) = (net.ns("fw"), net.ns("field"), net.ns("mgmt"), net.ns("wan"));
    router(&fw);
    net.veth(&fw, "lan0", &field, "eth0");
    net.veth(&fw, "mgmt0", &mgmt, "eth0");
    net.veth(&fw, "wan0", &wan, "eth0");
    no_rp_filter(&fw, &["lan0", "mgmt0", "wan0"]);
    for (ns, dev, a) in [
        (&fw, "lan0", "10.20.0.1/24"),
        (&fw, "mgmt0", "10.99.0.1/24"),
        (&fw, "wan0", "192.0.2.1/24"),
        (&field, "eth0", "10.20.0.5/24"),
        (&mgmt, "eth0", "10.99.0.7/24"),
        (&mgmt, "eth0", "10.99.0.50/24"),
        (&wan, "eth0", "192.0.2.2/24"),
    ] {
        ip_in(ns, &["addr", "add", a, "dev", dev]);
    }
    for (ns, gw) in [
        (&field, "10.20.0.1"),
        (&mgmt, "10.99.0.1"),
        (&wan, "192.0.2.1"),
    ] {
        ip_in(ns, &["route", "add", "default", "via", gw]);
    }
    observer(
        &field,
        "prerouting",
        &[("udp dport 161", "snmp"), ("tcp dport 4001", "ser2net")],
    );
    observer(&mgmt, "prerouting", &[("udp dport 5140", "telemetry")]);
    observer(&fw, "input", &[("udp dport 7", "echo-port")]);
    Example {
        _net: net,
        fw,
        field,
        mgmt,
        wan,
    }
}

/// What arrived where, for the spoofing probes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Seen {
    snmp: u64,
    ser2net: u64,
    telemetry: u64,
    fw_input: u64,
}

fn seen(e: &Example) -> Seen {
    Seen {
        snmp: counted(&e.field, "obs", "obs_prerouting", "\"snmp\""),
        ser2net: counted(&e.field, "obs", "obs_prerouting", "\"ser2net\""),
        telemetry: counted(&e.mgmt, "obs", "obs_prerouting", "\"telemetry\""),
        fw_input: counted(&e.fw, "obs", "obs_input", "\"echo-port\""),
    }
}

/// The attacker on the WAN side sends with a management address to the WCC Lite's SNMP and
/// ser2net ports, with the WCC Lite's own address to its telemetry server, and with a
/// management address to the firewall itself.
fn spoofed_probes(e: &Example) -> Seen {
    let before = seen(e);
    ip_in(&e.wan, &["addr", "add", "10.99.0.7/32", "dev", "eth0"]);
    udp(&e.wan, sa("10.99.0.7", 40161), sa("10.20.0.5", 161), None);
    syn(&e.wan, sa("10.99.0.7", 44001), sa("10.20.0.5", 4001));
    udp(&e.wan, sa("10.99.0.7", 40007), sa("192.0.2.1", 7), None);
    ip_in(&e.wan, &["addr", "del", "10.99.0.7/32", "dev", "eth0"]);
    ip_in(&e.wan, &["addr", "add", "10.20.0.5/32", "dev", "eth0"]);
    udp(&e.wan, sa("10.20.0.5", 45140), sa("10.99.0.50", 5140), None);
    ip_in(&e.wan, &["addr", "del", "10.20.0.5/32", "dev", "eth0"]);
    delta(before, seen(e))
}

/// The same flows from where the site puts their sources.
fn legit_probes(e: &Example) -> Seen {
    let before = seen(e);
    udp(&e.mgmt, sa("10.99.0.7", 40161), sa("10.20.0.5", 161), None);
    syn(&e.mgmt, sa("10.99.0.7", 44001), sa("10.20.0.5", 4001));
    udp(
        &e.field,
        sa("10.20.0.5", 45140),
        sa("10.99.0.50", 5140),
        None,
    );
    udp(&e.wan, sa("192.0.2.2", 40007), sa("192.0.2.1", 7), None);
    delta(before, seen(e))
}

fn delta(a: Seen, b: Seen) -> Seen {
    Seen {
        snmp: b.snmp - a.snmp,
        ser2net: b.ser2net - a.ser2net,
        telemetry: b.telemetry - a.telemetry,
        fw_input: b.fw_input - a.fw_input,
    }
}

const NOTHING: Seen = Seen {
    snmp: 0,
    ser2net: 0,
    telemetry: 0,
    fw_input: 0,
};

fn load_iptables(fw: &str, text: &str) {
    use portolan_emit::iptables::section;
    portolan_testkit::netns::restore_iptables(
        fw,
        &section(text, "ipset"),
        &section(text, "iptables"),
        &section(text, "ip6tables"),
    );
}

#[test]
fn spoofed_zone_sources_from_the_wan_side_are_dropped_nftables() {
    let _turn = kernel::turn();
    let e = example_topology();
    // Control: without a ruleset the spoofed packets arrive (the topology delivers them).
    let open = spoofed_probes(&e);
    assert!(
        open.snmp == 1 && open.ser2net >= 1 && open.telemetry == 1 && open.fw_input == 1,
        "without a ruleset the spoofed packets must arrive: {open:?}"
    );
    let text = emit(Target::Nftables, &example(), &Options::default()).expect("emits");
    run(&e.fw, "nft", &["-f", "-"], Some(&text));
    let legit = legit_probes(&e);
    assert!(
        legit.snmp == 1 && legit.ser2net >= 1 && legit.telemetry == 1 && legit.fw_input == 1,
        "the profile's flows from the right interfaces pass: {legit:?}"
    );
    let mgmt_before = counted(&e.fw, "portolan", "from_mgmt", "drop");
    let field_before = counted(&e.fw, "portolan", "from_field", "drop");
    assert_eq!(spoofed_probes(&e), NOTHING, "spoofed sources reach nothing");
    // Dropped by the spoofing check of the zone whose address was forged (forward and
    // input), which logs before it drops.
    let mgmt_drops = counted(&e.fw, "portolan", "from_mgmt", "drop") - mgmt_before;
    let field_drops = counted(&e.fw, "portolan", "from_field", "drop") - field_before;
    assert!(mgmt_drops >= 3, "from_mgmt dropped {mgmt_drops}");
    assert_eq!(field_drops, 1, "from_field dropped {field_drops}");
}

#[test]
fn spoofed_zone_sources_from_the_wan_side_are_dropped_iptables() {
    let _turn = kernel::turn();
    let e = example_topology();
    let open = spoofed_probes(&e);
    assert!(
        open.snmp == 1 && open.ser2net >= 1 && open.telemetry == 1 && open.fw_input == 1,
        "without a ruleset the spoofed packets must arrive: {open:?}"
    );
    let text = emit(Target::Iptables, &example(), &Options::default()).expect("emits");
    load_iptables(&e.fw, &text);
    let legit = legit_probes(&e);
    assert!(
        legit.snmp == 1 && legit.ser2net >= 1 && legit.telemetry == 1 && legit.fw_input == 1,
        "the profile's flows from the right interfaces pass: {legit:?}"
    );
    let before = (
        ipt_counted(&e.fw, "Z-mgmt", "DROP"),
        ipt_counted(&e.fw, "Z-field", "DROP"),
    );
    assert_eq!(spoofed_probes(&e), NOTHING, "spoofed sources reach nothing");
    let mgmt_drops = ipt_counted(&e.fw, "Z-mgmt", "DROP") - before.0;
    let field_drops = ipt_counted(&e.fw, "Z-field", "DROP") - before.1;
    assert!(mgmt_drops >= 3, "Z-mgmt dropped {mgmt_drops}");
    assert_eq!(field_drops, 1, "Z-field dropped {field_drops}");
}

const DHCP_SITE: &str = r#"portolan: 1
site: dhcp-mac
zones:
  - id: field
    interface: lan0
    networks: [10.77.0.0/24]
services:
  dns: firewall
  dhcp: firewall
devices:
  - id: oscar
    profile: oscar-templog-gateway
    zone: field
    addresses: [10.77.0.20]
    mac: "02:00:5e:77:00:20"
  - id: izuma
    profile: izuma-device-management
    mode: device
    zone: field
    addresses: [10.77.0.30]
    mac: "02:00:5e:77:00:30"
"#;

/// DHCP discovery as a client without an address sends it: 0.0.0.0:68 to
/// 255.255.255.255:67, from the MAC `mac`. Returns the discoveries the firewall accepted.
fn discover(fw: &str, client: &str, mac: &str) -> u64 {
    dhcp_broadcast(fw, client, mac, "0.0.0.0")
}

/// A DHCP broadcast, 68 to 255.255.255.255:67, from `src` (0.0.0.0: no address on the
/// client's link; else `src` is the link's address while it is sent) and the MAC `mac`.
/// Returns how many the firewall accepted.
fn dhcp_broadcast(fw: &str, client: &str, mac: &str, src: &str) -> u64 {
    ip_in(client, &["link", "set", "eth0", "address", mac]);
    let with = format!("{src}/24");
    if src != "0.0.0.0" {
        ip_in(client, &["addr", "add", &with, "dev", "eth0"]);
    }
    let before = counted(fw, "obs", "obs_input", "\"dhcp\"");
    udp(
        client,
        sa(src, 68),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), 67),
        Some("eth0"),
    );
    if src != "0.0.0.0" {
        ip_in(client, &["addr", "del", &with, "dev", "eth0"]);
    }
    counted(fw, "obs", "obs_input", "\"dhcp\"") - before
}

fn dhcp_topology() -> (Net, String, String) {
    let mut net = Net::new();
    let (fw, client) = (net.ns("fw"), net.ns("client"));
    router(&fw);
    net.veth(&fw, "lan0", &client, "eth0");
    ip_in(&fw, &["addr", "add", "10.77.0.1/24", "dev", "lan0"]);
    observer(&fw, "input", &[("udp dport 67", "dhcp")]);
    (net, fw, client)
}

#[test]
fn dhcp_discovery_only_from_the_devices_mac() {
    let _turn = kernel::turn();
    let policy = compile("dhcp-mac.yaml", DHCP_SITE, &[]);
    for target in [Target::Nftables, Target::Iptables] {
        let (_net, fw, client) = dhcp_topology();
        // Control: with no ruleset every discovery reaches the firewall.
        assert_eq!(discover(&fw, &client, "02:00:5e:77:00:99"), 1, "{target:?}");
        let text = emit(target, &policy, &Options::default()).expect("emits");
        if target == Target::Nftables {
            run(&fw, "nft", &["-f", "-"], Some(&text));
        } else {
            load_iptables(&fw, &text);
        }
        assert_eq!(
            discover(&fw, &client, "02:00:5e:77:00:20"),
            1,
            "{target:?}: the device's MAC is admitted"
        );
        assert_eq!(
            discover(&fw, &client, "02:00:5e:77:00:99"),
            0,
            "{target:?}: another host on the segment is not"
        );
        assert_eq!(
            dhcp_broadcast(&fw, &client, "02:00:5e:77:00:20", "10.77.0.20"),
            1,
            "{target:?}: the device rebinding from its own address and MAC is admitted"
        );
        assert_eq!(
            dhcp_broadcast(&fw, &client, "02:00:5e:77:00:30", "10.77.0.30"),
            0,
            "{target:?}: a device whose profile has no DHCP flow may not broadcast DHCP"
        );
        assert_eq!(
            dhcp_broadcast(&fw, &client, "02:00:5e:77:00:30", "0.0.0.0"),
            0,
            "{target:?}: nor, from its MAC, without an address"
        );
        let dropped = if target == Target::Nftables {
            counted(&fw, "portolan", "unlisted_mac", "drop")
        } else {
            ipt_counted(&fw, "PORTOLAN-UNLISTED", "DROP")
        };
        // The foreign MAC's discovery, and izuma's two broadcasts: every device of lan0 gives
        // its MAC, so each DHCP broadcast not admitted above it meets that drop first.
        assert_eq!(dropped, 3, "{target:?}: dropped as unlisted");
    }
}

/// Issue 12: where the site gives no MACs, DHCP discovery is admitted from any MAC, but only
/// from 0.0.0.0; from its own address only a device whose profile has DHCP (the Oscar
/// gateway, rebinding) broadcasts DHCP to the firewall, and the Izuma device, whose profile
/// has no DHCP flow, is dropped (the emitted rule once named no source and admitted it).
#[test]
fn dhcp_broadcast_from_an_address_only_for_a_dhcp_device() {
    let _turn = kernel::turn();
    let site = DHCP_SITE
        .replace("    mac: \"02:00:5e:77:00:20\"\n", "")
        .replace("    mac: \"02:00:5e:77:00:30\"\n", "");
    assert!(!site.contains("mac:"));
    let policy = compile("dhcp-any-mac.yaml", &site, &[]);
    for target in [Target::Nftables, Target::Iptables] {
        let (_net, fw, client) = dhcp_topology();
        // Control: with no ruleset the Izuma device's broadcast reaches the firewall.
        assert_eq!(
            dhcp_broadcast(&fw, &client, "02:00:5e:77:00:30", "10.77.0.30"),
            1,
            "{target:?}"
        );
        let text = emit(target, &policy, &Options::default()).expect("emits");
        if target == Target::Nftables {
            run(&fw, "nft", &["-f", "-"], Some(&text));
        } else {
            load_iptables(&fw, &text);
        }
        let mac = "02:00:5e:77:00:99";
        assert_eq!(discover(&fw, &client, mac), 1, "{target:?}: discovery");
        assert_eq!(
            dhcp_broadcast(&fw, &client, mac, "10.77.0.20"),
            1,
            "{target:?}: the gateway rebinding from its own address"
        );
        assert_eq!(
            dhcp_broadcast(&fw, &client, mac, "10.77.0.30"),
            0,
            "{target:?}: the Izuma device has no DHCP flow"
        );
    }
}

/// SSDP announcements (UPnP Device Architecture 2.0, section 1.3.2): UDP to the group
/// 239.255.255.250, port 1900.
const SSDP_PROFILE: &str = r#"portolan: 1
id: ssdp-device
vendor: Example
product: SSDP device
sources:
  - id: upnp
    title: UPnP Device Architecture 2.0
    file: upnp.txt
endpoints:
  - id: control-point
    role: true
flows:
  - id: notify
    from: device
    to: control-point
    initiation: device
    protocol: udp
    ports: 1900
    cast: multicast
    group: 239.255.255.250
    source: {doc: upnp, ref: "section 1.3.2"}
listens: none
"#;

const SSDP_SITE: &str = r#"portolan: 1
site: ssdp
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
  - id: mgmt
    interface: mgmt0
    networks: [10.99.0.0/24]
devices:
  - id: tv-to-mgmt
    profile: ssdp-device
    zone: field
    addresses: [10.20.0.30]
    bind:
      control-point: [zone:mgmt]
  - id: tv-to-firewall
    profile: ssdp-device
    zone: field
    addresses: [10.20.0.31]
    bind:
      control-point: [firewall]
"#;

/// A member of `group` on the firewall's `lan0` (a multicast packet reaches `input` only on
/// an interface that joined its group), until the sender is dropped.
fn join(fw: &str, group: Ipv4Addr, local: Ipv4Addr) -> mpsc::Sender<()> {
    let (stop, wait) = mpsc::channel::<()>();
    let (ready, joined) = mpsc::channel::<()>();
    let h = Handle::open(fw).expect("handle");
    std::thread::spawn(move || {
        h.enter().expect("enter");
        let s = UdpSocket::bind("0.0.0.0:1900").expect("bind 1900");
        s.join_multicast_v4(&group, &local).expect("join");
        let _ = ready.send(());
        let _ = wait.recv();
    });
    joined.recv().expect("joined");
    stop
}

#[test]
fn multicast_flows_admit_their_group_and_never_unicast() {
    let _turn = kernel::turn();
    let policy = compile("ssdp.yaml", SSDP_SITE, &[("ssdp-device", SSDP_PROFILE)]);
    let mut net = Net::new();
    let (fw, field, mgmt) = (net.ns("fw"), net.ns("field"), net.ns("mgmt"));
    router(&fw);
    net.veth(&fw, "lan0", &field, "eth0");
    net.veth(&fw, "mgmt0", &mgmt, "eth0");
    for (ns, dev, a) in [
        (&fw, "lan0", "10.20.0.1/24"),
        (&fw, "mgmt0", "10.99.0.1/24"),
        (&field, "eth0", "10.20.0.30/24"),
        (&field, "eth0", "10.20.0.31/24"),
        (&mgmt, "eth0", "10.99.0.7/24"),
    ] {
        ip_in(ns, &["addr", "add", a, "dev", dev]);
    }
    ip_in(&field, &["route", "add", "default", "via", "10.20.0.1"]);
    ip_in(&mgmt, &["route", "add", "default", "via", "10.99.0.1"]);
    ip_in(
        &field,
        &["route", "add", "239.255.255.250/32", "dev", "eth0"],
    );
    observer(&mgmt, "prerouting", &[("udp dport 1900", "ssdp")]);
    observer(
        &fw,
        "input",
        &[
            ("ip daddr 239.255.255.250 udp dport 1900", "ssdp-group"),
            ("ip daddr 10.20.0.1 udp dport 1900", "ssdp-unicast"),
        ],
    );
    let _member = join(
        &fw,
        Ipv4Addr::new(239, 255, 255, 250),
        Ipv4Addr::new(10, 20, 0, 1),
    );
    let probes = || {
        let c = |ns: &str, ch: &str, n: &str| counted(ns, "obs", ch, n);
        let before = [
            c(&mgmt, "obs_prerouting", "\"ssdp\""),
            c(&fw, "obs_input", "\"ssdp-group\""),
            c(&fw, "obs_input", "\"ssdp-unicast\""),
        ];
        // Unicast to the bound peer's port, and to the firewall's: the profile states
        // neither. Then the announcement to the group, to the firewall it is bound to.
        udp(&field, sa("10.20.0.30", 41900), sa("10.99.0.7", 1900), None);
        udp(&field, sa("10.20.0.31", 41900), sa("10.20.0.1", 1900), None);
        udp(
            &field,
            sa("10.20.0.31", 41901),
            sa("239.255.255.250", 1900),
            None,
        );
        [
            c(&mgmt, "obs_prerouting", "\"ssdp\"") - before[0],
            c(&fw, "obs_input", "\"ssdp-group\"") - before[1],
            c(&fw, "obs_input", "\"ssdp-unicast\"") - before[2],
        ]
    };
    assert_eq!(
        probes(),
        [1, 1, 1],
        "without a ruleset every packet arrives"
    );
    let text = emit(Target::Nftables, &policy, &Options::default()).expect("emits");
    run(&fw, "nft", &["-f", "-"], Some(&text));
    assert_eq!(
        probes(),
        [0, 1, 0],
        "only the group passes, on lan0; unicast to port 1900 is dropped:\n{text}"
    );
    // The flow bound to another zone is a rule on the group towards that zone's interface
    // (it passes where the firewall routes multicast), never one on the peers' addresses.
    assert!(
        text.contains("iifname \"lan0\" oifname \"mgmt0\" ip daddr 239.255.255.250 udp dport 1900 accept comment \"ssdp-device/notify\""),
        "{text}"
    );
    assert!(!text.contains("10.99.0.0/24 udp dport 1900"), "{text}");
}
