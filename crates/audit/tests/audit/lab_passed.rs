//! What the firewall let through, recorded for real while `portolan lab` proves
//! examples/site.yaml, then audited against the same site: it must be clean.
//!
//! Before the lab loads its ruleset, its firewall namespace gets a tap: a veth pair
//! (`audit-tap`, `audit-sink`, both inside that namespace) and small `ip` and `ip6` tables whose
//! chains hook forward, input and output *after* the lab's filter (priority filter + 10) and
//! `dup` every packet they see to `audit-tap`. A packet reaches them only when the lab's ruleset
//! accepted it, so tcpdump on `audit-tap` records exactly what the firewall let through —
//! forwarded both ways, delivered to its own DNS and DHCP, and sent by it — and never a probe it
//! dropped. The copies go nowhere: `audit-sink` drops everything at ingress (a netdev chain), and
//! they carry `audit-tap`'s own MAC address, which the IP layer drops as another host's. The
//! tap has no address, no ARP and no IPv6 router duties: it sends nothing of its own.
//!
//! Two captures come off the tap: all of it, and the traffic of the site's device addresses
//! (a BPF filter, as an auditor scopes a capture to the devices). The first shows that the
//! scoping leaves out only the firewall's resolver asking the lab's upstream DNS server and
//! IPv6's neighbour discovery and MLD on the lab's links; the second is the clean capture of
//! the tests below:
//!
//! 1. it audits with no violation and no flow of an unknown device, every flow the lab proved
//!    shows as conforming with the `profile/flow` the lab sent it for (none is missing: DNS and
//!    DHCP to the firewall are there too, seen as they were accepted), and the only flows no
//!    probe sent are the firewall's DHCP answers, to devices that asked;
//! 2. the same capture with one stray connection added (written with the crate's writer) has
//!    exactly that one violation; `portolan audit` exits 0 on the clean capture, 1 on this one;
//! 3. `portolan learn` on the clean capture drafts a profile for the Oscar gateways that
//!    validates and, put in their place in the site, audits the capture clean.
//!
//! The lab creates its own uniquely named namespaces and removes them (the tap with them);
//! every command of the tap goes through `ip -n` or `ip netns exec` of the lab's firewall
//! namespace, which fail rather than fall back to the machine's own. One lab run serves the
//! three tests; its captures are left in `target/tmp/lab-passed/`. The `portolan` binary they
//! run is built by `cargo build -p portolan` (cargo hands an integration test only its own
//! package's binaries). Needs root, iproute2, nftables, dnsmasq and tcpdump; without them every
//! test fails (`portolan-testkit`'s skip policy: it never passes without running).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use assert_cmd::Command as Cmd;
use portolan_audit::capture;
use portolan_audit::decode::linktype;
use portolan_audit::learn::{draft, parse_device, to_yaml, LearnOptions};
use portolan_audit::write::{self, PcapWriter};
use portolan_audit::{audit, Collector, Options, Report, Status};
use portolan_lab::report::Report as LabReport;
use portolan_model::ir::Policy;
use portolan_testkit::netns::run_in;
use portolan_testkit::Profiles;
use serde_json::Value;

use crate::lab::{
    example_policy, example_site_path, lab_firewall, lab_prefix, lab_probes, require_kernel, same,
};
use crate::scenario::Traffic;

/// The tap's end that tcpdump listens on, and the peer end that swallows the copies.
const TAP: &str = "audit-tap";
const SINK: &str = "audit-sink";

/// Runs after the lab's `inet portolan` filter chains: only accepted packets get here.
const TAP_RULES: &str = r#"table ip portolan_audit_tap {
	chain forward {
		type filter hook forward priority filter + 10; policy accept;
		dup to 169.254.77.77 device "audit-tap"
	}
	chain input {
		type filter hook input priority filter + 10; policy accept;
		iifname != "lo" dup to 169.254.77.77 device "audit-tap"
	}
	chain output {
		type filter hook output priority filter + 10; policy accept;
		oifname != { "lo", "audit-tap" } dup to 169.254.77.77 device "audit-tap"
	}
}
table ip6 portolan_audit_tap {
	chain forward {
		type filter hook forward priority filter + 10; policy accept;
		dup to fe80::77 device "audit-tap"
	}
	chain input {
		type filter hook input priority filter + 10; policy accept;
		iifname != "lo" dup to fe80::77 device "audit-tap"
	}
	chain output {
		type filter hook output priority filter + 10; policy accept;
		oifname != { "lo", "audit-tap" } dup to fe80::77 device "audit-tap"
	}
}
table netdev portolan_audit_tap {
	chain sink {
		type filter hook ingress device "audit-sink" priority filter; policy drop;
	}
}
"#;

/// The tap in the lab's firewall namespace and the two tcpdumps on it: set up when the lab
/// says it is loading its ruleset (the namespaces exist, no probe has been sent), stopped
/// (SIGTERM, by process id) when the last phase of probes has ended.
struct Tap {
    dir: PathBuf,
    /// The BPF filter of the device capture.
    devices: String,
    prefix: Option<String>,
    children: Vec<Child>,
    error: Option<String>,
}

impl Tap {
    fn on(&mut self, line: &str) {
        if let Some(prefix) = lab_prefix(line) {
            self.prefix = Some(prefix);
        } else if line.starts_with("loading the nftables ruleset") {
            if let Err(e) = self.start() {
                self.stop();
                self.error = Some(e);
            }
        } else if crate::lab::last_phase(line) {
            self.stop();
        }
    }

    fn start(&mut self) -> Result<(), String> {
        let prefix = self.prefix.clone().ok_or("no namespace prefix seen")?;
        let ns = format!("{prefix}-fw");
        // `ip -n` and `ip netns exec` fail when the namespace does not exist: nothing here
        // can fall back to the machine's own namespace.
        let ip = |args: &[&str]| {
            let mut v = vec!["ip", "-n", ns.as_str()];
            v.extend_from_slice(args);
            portolan_testkit::run(&v).map(drop)
        };
        ip(&["link", "add", TAP, "type", "veth", "peer", "name", SINK])?;
        ip(&["link", "set", TAP, "arp", "off", "addrgenmode", "none"])?;
        ip(&["link", "set", SINK, "arp", "off", "addrgenmode", "none"])?;
        // The lab turns IPv6 forwarding on for every interface, which would have the tap join
        // the all-routers group and report it: not on the tap, and no IPv6 at all on the sink.
        let quiet = format!(
            "echo 0 > /proc/sys/net/ipv6/conf/{TAP}/forwarding && echo 1 > /proc/sys/net/ipv6/conf/{SINK}/disable_ipv6"
        );
        run_in(&ns, &["sh", "-c", &quiet], None)?;
        ip(&["link", "set", SINK, "up"])?;
        ip(&["link", "set", TAP, "up"])?;
        // The IPv6 copies' next hop: on the tap's link, which has no address of its own.
        ip(&["-6", "route", "add", "fe80::77/128", "dev", TAP])?;
        run_in(&ns, &["nft", "-f", "-"], Some(TAP_RULES))?;

        let all = self.dir.join("all.pcap");
        let devices = self.dir.join("devices.pcap");
        let filter = self.devices.clone();
        for (file, filter) in [(all, None), (devices, Some(filter))] {
            let mut cmd = Command::new("ip");
            cmd.args([
                "netns", "exec", &ns, "tcpdump", "-i", TAP, "-Q", "out", "-n", "-U",
            ])
            .arg("-w")
            .arg(&file);
            if let Some(f) = filter {
                cmd.arg(f);
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start tcpdump: {e}"))?;
            let err = child.stderr.take().ok_or("no stderr")?;
            self.children.push(child);
            let mut lines = BufReader::new(err).lines();
            // tcpdump says `listening on audit-tap` once the capture is active (or why not, and
            // exits); stop reading at that line, tcpdump says nothing more until it ends.
            let mut said = Vec::new();
            for line in lines.by_ref().take(5).map_while(Result::ok) {
                let ready = line.contains("listening on");
                said.push(line);
                if ready {
                    break;
                }
            }
            std::thread::spawn(move || for _ in lines {});
            if !said.iter().any(|l| l.contains("listening on")) {
                return Err(format!("tcpdump did not start: {}", said.join("\n")));
            }
        }
        Ok(())
    }

    fn stop(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Tap {
    /// Also when the lab fails or a check panics: no tcpdump outlives the test.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The lab run and what came off the tap.
struct Passed {
    policy: Policy,
    report: LabReport,
    firewall: Vec<IpAddr>,
    /// The lab's upstream DNS server, which the firewall's resolver asks.
    resolver: Option<IpAddr>,
    dir: PathBuf,
    /// Everything the firewall let through.
    all: PathBuf,
    /// The same, scoped to the site's device addresses: the clean capture.
    devices: PathBuf,
}

fn record() -> Result<Passed, String> {
    let policy = example_policy();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab-passed");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let nets: Vec<String> = policy
        .groups
        .iter()
        .flat_map(|g| g.addresses.iter().map(|a| format!("net {a}")))
        .collect();
    let tap = Mutex::new(Tap {
        dir: dir.clone(),
        devices: nets.join(" or "),
        prefix: None,
        children: Vec::new(),
        error: None,
    });
    let progress = |m: &str| {
        eprintln!("lab: {m}");
        tap.lock().unwrap_or_else(|e| e.into_inner()).on(m);
    };
    let report = portolan_lab::lab::run(&policy, &portolan_lab::lab::Options::default(), &progress);
    let mut tap = tap.into_inner().unwrap_or_else(|e| e.into_inner());
    tap.stop();
    let report = report.map_err(|e| format!("the lab failed: {e}"))?;
    if let Some(e) = tap.error.take() {
        return Err(format!("the tap failed: {e}"));
    }
    if !report.all_match() {
        return Err("the lab itself mismatched".into());
    }
    let firewall = lab_firewall(&policy);
    let resolver = portolan_lab::topology::plan(&policy, "x")
        .map_err(|e| e.to_string())?
        .book
        .resolver;
    eprintln!("lab captures in {}", dir.display());
    Ok(Passed {
        policy,
        report,
        firewall,
        resolver,
        all: dir.join("all.pcap"),
        devices: dir.join("devices.pcap"),
        dir,
    })
}

/// The one lab run the tests share (the lab runs one at a time anyway).
fn passed() -> &'static Passed {
    static PASSED: OnceLock<Result<Passed, String>> = OnceLock::new();
    match PASSED.get_or_init(record) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn audit_file(p: &Passed, file: &Path) -> Report {
    let mut c = Collector::new();
    let s = c.read(file).expect("the capture");
    assert!(s.problem.is_none(), "{:?}", s.problem);
    assert!(s.records > 0, "nothing captured in {}", file.display());
    audit(
        &p.policy,
        c.finish(),
        &Options {
            firewall: p.firewall.clone(),
        },
    )
}

fn show(f: &portolan_audit::FlowRecord) -> String {
    format!(
        "{} {} {}:{} → {}:{} {:?} {}",
        f.group.as_deref().unwrap_or("-"),
        f.protocol,
        f.src,
        f.sport.map_or("-".into(), |p| p.to_string()),
        f.dst,
        f.dport.map_or("-".into(), |p| p.to_string()),
        f.status,
        f.rule.as_deref().or(f.reason.as_deref()).unwrap_or("")
    )
}

/// IPv6 neighbour and router discovery and MLD between link-local (or unspecified) addresses
/// and link-scope multicast: the links' own housekeeping, no device's conversation.
fn link_housekeeping(f: &portolan_audit::FlowRecord) -> bool {
    let link = |a: IpAddr| match a {
        IpAddr::V6(v) => v.is_unspecified() || (v.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(_) => false,
    };
    let link_scope = |a: IpAddr| match a {
        IpAddr::V6(v) => v.segments()[0] == 0xff02 || link(a),
        IpAddr::V4(_) => false,
    };
    f.protocol == "icmpv6"
        && link(f.src)
        && link_scope(f.dst)
        && f.icmp_type.as_deref().is_some_and(|t| {
            t.starts_with("nd-") || t.starts_with("mld-") || t == "mld2-listener-report"
        })
}

/// A DHCP answer of the firewall: it goes to the device's address, not back to the
/// broadcast address the request went to, so it is a flow of its own, which the firewall
/// opened (its output is not filtered).
fn dhcp_answer(p: &Passed, f: &portolan_audit::FlowRecord) -> bool {
    f.protocol == "udp"
        && f.sport == Some(67)
        && f.dport == Some(68)
        && p.firewall.contains(&f.src)
        && f.status == Status::Conforming
        && f.rule.is_none()
}

#[test]
fn lab_capture_of_what_the_firewall_let_through_audits_clean() {
    require_kernel();
    let p = passed();

    // Everything off the tap: no violation, and the flows of no device are the firewall's
    // own resolver asking the lab's upstream server and IPv6's housekeeping on the lab's links
    // (the namespaces' interfaces came up just before), which the device scope leaves out.
    let all = audit_file(p, &p.all);
    let bad: Vec<String> = all
        .flows
        .iter()
        .filter(|f| f.status == Status::Violation)
        .map(show)
        .collect();
    assert!(
        bad.is_empty(),
        "violations in what the firewall let through: {bad:#?}"
    );
    let resolver = p
        .resolver
        .expect("the example site has DNS on the firewall");
    let foreign: Vec<String> = all
        .flows
        .iter()
        .filter(|f| f.status == Status::UnknownDevice)
        .filter(|f| {
            let upstream = p.firewall.contains(&f.src)
                && f.dst == resolver
                && f.dport == Some(53)
                && matches!(f.protocol.as_str(), "udp" | "tcp");
            !(upstream || link_housekeeping(f))
        })
        .map(show)
        .collect();
    assert!(
        foreign.is_empty(),
        "flows of no device other than the firewall's resolver's and IPv6 housekeeping: {foreign:#?}"
    );
    let upstream = all
        .flows
        .iter()
        .filter(|f| f.status == Status::UnknownDevice && !link_housekeeping(f))
        .count();
    assert!(upstream > 0, "the firewall's resolver never asked upstream");

    // The clean capture: the device addresses' traffic.
    let r = audit_file(p, &p.devices);
    let listing: Vec<String> = r.flows.iter().map(show).collect();
    assert_eq!(r.violations, 0, "{listing:#?}");
    assert_eq!(r.unknown_device, 0, "{listing:#?}");
    assert_eq!(
        r.conforming, all.conforming,
        "the device scope left out a device's flow"
    );
    assert_eq!(
        r.flows.len() as u64,
        all.flows.len() as u64 - all.unknown_device
    );

    let probes = lab_probes(&p.report);
    let proved: Vec<_> = probes
        .iter()
        .filter(|q| q.want == Status::Conforming)
        .collect();
    assert!(
        proved.len() > 90,
        "only {} probes proved a flow",
        proved.len()
    );
    // Every flow the lab proved is in the capture, conforming to the rule the lab sent it for.
    for q in &proved {
        assert!(
            r.flows.iter().any(|f| same(f, q)
                && f.status == Status::Conforming
                && f.group.as_deref() == Some(q.group.as_str())
                && f.rule.as_deref() == Some(q.flow.as_str())),
            "lab probe {q:?} is not in the capture as conforming to {}: {:#?}",
            q.flow,
            r.flows
                .iter()
                .filter(|f| same(f, q))
                .map(show)
                .collect::<Vec<_>>()
        );
    }
    // Every flow in the capture is one a probe proved, or the firewall's answer to a DHCP
    // request the lab proved: nothing the firewall dropped is there.
    let mut answers = BTreeSet::new();
    for f in &r.flows {
        if proved.iter().any(|q| same(f, q)) {
            continue;
        }
        assert!(
            dhcp_answer(p, f),
            "a flow no passing probe sent: {}",
            show(f)
        );
        answers.insert(f.dst);
    }
    let dhcp: BTreeSet<IpAddr> = proved
        .iter()
        .filter(|q| q.proto == "udp" && q.port == Some(67))
        .map(|q| q.src)
        .collect();
    assert!(!dhcp.is_empty(), "the lab proved no DHCP request");
    // (Whether and when the firewall's DHCP server answers is its own business: the test asks
    // only that every answer goes to a device the lab sent a request from.)
    assert!(
        answers.is_subset(&dhcp),
        "DHCP answers to {answers:?}, requests from {dhcp:?}"
    );
    let dropped = probes
        .iter()
        .filter(|q| q.want == Status::Violation)
        .filter(|q| !r.flows.iter().any(|f| same(f, q)))
        .count();
    let dropped_total = probes.len() - proved.len();
    // A probe to a named peer is also sent before its name is resolved, as a drop; its twin
    // after the answer passes, and that flow is in the capture with the same ends and port.
    let twins = probes
        .iter()
        .filter(|q| q.want == Status::Violation)
        .filter(|q| {
            proved
                .iter()
                .any(|x| (x.src, x.dst, x.proto, x.port) == (q.src, q.dst, q.proto, q.port))
        })
        .count();
    assert_eq!(dropped + twins, dropped_total);
    // Every required flow of every group was used.
    for g in &r.groups {
        assert!(g.unused.is_empty(), "{}: unused {:?}", g.group, g.unused);
        assert_eq!(g.violations, 0, "{}", g.group);
    }
    eprintln!(
        "what the firewall let through: {} frames, {} flows, {} of them the firewall's resolver asking upstream, {} IPv6 link housekeeping; \
         device scope: {} flows, all conforming ({} proved by the lab's {} passing probes, {} DHCP answers), \
         0 violations, 0 of unknown devices; {} drop probes absent, {} more with a passing twin",
        all.frames.frames,
        all.flows.len(),
        upstream,
        all.unknown_device as usize - upstream,
        r.flows.len(),
        r.flows.len() - answers.len(),
        proved.len(),
        answers.len(),
        dropped,
        twins
    );
}

/// The `portolan` binary, built (or found fresh) by cargo: it belongs to another package of the
/// workspace, so cargo does not hand this test its path.
fn portolan_bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "portolan",
                "--bin",
                "portolan",
                "--message-format=json",
            ])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build -p portolan failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "portolan")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .ok_or_else(|| "cargo built no `portolan` executable".to_string())
    });
    match built {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// `portolan audit SITE FILE --firewall ... --format json`: the exit code, the flow lines and
/// the summary line.
fn audit_json(p: &Passed, site: &Path, file: &Path, code: i32) -> (Vec<Value>, Vec<Value>, Value) {
    let mut cmd = Cmd::new(portolan_bin());
    cmd.arg("audit").arg(site).arg(file);
    for a in &p.firewall {
        cmd.args(["--firewall", &a.to_string()]);
    }
    let out = cmd.args(["--format", "json"]).assert().code(code);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let of = |t: &str| -> Vec<Value> { lines.iter().filter(|v| v["type"] == t).cloned().collect() };
    let summary = of("summary").pop().expect("a summary line");
    (of("flow"), of("group"), summary)
}

/// Copies a capture frame by frame with the crate's writer and adds one TCP connection after
/// its last packet.
fn with_stray(from: &Path, to: &Path, client: (&str, u16), server: (&str, u16)) {
    let input = std::fs::File::open(from).expect("the clean capture");
    let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET, 262_144, true).expect("header");
    let mut last = 0;
    let (n, problem) = capture::read(input, |f| {
        assert_eq!(
            f.link,
            linktype::ETHERNET,
            "tcpdump on a veth records Ethernet"
        );
        w.packet(f.ts, f.data, None).expect("in memory");
        last = last.max(f.ts);
    });
    assert!(problem.is_none() && n > 0, "{problem:?}");
    let mut t = Traffic::default();
    t.tcp(last + 1_000_000_000, client, server);
    for (ts, ip) in t.sorted() {
        w.packet(ts, &write::ethernet(&ip, &[]), None)
            .expect("in memory");
    }
    std::fs::write(to, w.into_inner()).expect("write the capture");
}

#[test]
fn stray_flow_added_to_the_lab_capture_is_exactly_one_violation() {
    require_kernel();
    let p = passed();
    let site = example_site_path();

    let (clean, _, s) = audit_json(p, &site, &p.devices, 0);
    assert_eq!(s["violations"], 0, "{s}");
    assert_eq!(s["unknown_device"], 0, "{s}");
    assert!(clean.iter().all(|f| f["status"] == "conforming"));

    // An Oscar gateway opens a connection to an address and port none of its rules names.
    let stray = p.dir.join("stray.pcap");
    with_stray(
        &p.devices,
        &stray,
        ("10.20.0.33", 41000),
        ("203.0.113.66", 8080),
    );
    let (flows, _, s2) = audit_json(p, &site, &stray, 1);
    assert_eq!(s2["violations"], 1, "{s2}");
    assert_eq!(s2["unknown_device"], 0, "{s2}");
    assert_eq!(s2["conforming"], s["conforming"], "{s2}");
    assert_eq!(flows.len(), clean.len() + 1);
    let bad: Vec<&Value> = flows
        .iter()
        .filter(|f| f["status"] != "conforming")
        .collect();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    let v = bad[0];
    assert_eq!(v["status"], "violation", "{v}");
    assert_eq!(v["group"], "oscar-gateways", "{v}");
    assert_eq!(
        v["protocol"],
        serde_json::json!({"name": "tcp", "number": 6}),
        "{v}"
    );
    assert_eq!(v["src"], "10.20.0.33", "{v}");
    assert_eq!(v["sport"], 41000, "{v}");
    assert_eq!(v["dst"], "203.0.113.66", "{v}");
    assert_eq!(v["dport"], 8080, "{v}");
    assert_eq!(v["initiated_by"], "device", "{v}");
    assert_eq!(v["evidence"], "syn", "{v}");
    assert_eq!(v["violation"], serde_json::json!(["peer", "port"]), "{v}");

    // The table a person reads names it too.
    let mut cmd = Cmd::new(portolan_bin());
    cmd.arg("audit").arg(&site).arg(&stray);
    for a in &p.firewall {
        cmd.args(["--firewall", &a.to_string()]);
    }
    let out = cmd.assert().code(1);
    let table = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        table.contains("10.20.0.33:41000 → 203.0.113.66:8080"),
        "{table}"
    );
    assert!(table.contains(" 1 violation(s)"), "{table}");
    eprintln!(
        "clean lab capture: exit 0, {} conforming; with the stray connection: exit 1, exactly one violation: {}",
        s["conforming"], v["reason"]
    );
}

fn row(protocol: &str, port: &str, peer: &str, init: &str) -> (String, String, String, String) {
    (protocol.into(), port.into(), peer.into(), init.into())
}

/// (protocol, port, peer, initiation) of each port of each flow of `p`: the peer by its name,
/// its address, or the site service it stands for.
fn profile_flows(p: &portolan_model::Profile) -> BTreeSet<(String, String, String, String)> {
    let v = serde_json::to_value(p).expect("a profile serialises");
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let peer = |id: &str| {
        let e = v["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no endpoint {id}"));
        let first = |k: &str| e[k].as_array().and_then(|a| a.first()).map(text);
        first("hosts")
            .or_else(|| first("addresses").map(|a| a.trim_end_matches("/32").to_string()))
            .unwrap_or_else(|| text(&e["service"]))
    };
    let mut rows = BTreeSet::new();
    for f in v["flows"].as_array().expect("flows") {
        let other = if f["from"] == "device" {
            &f["to"]
        } else {
            &f["from"]
        };
        let ports: Vec<String> = match &f["ports"] {
            Value::Array(a) => a.iter().map(text).collect(),
            one => vec![text(one)],
        };
        for port in ports {
            rows.insert(row(
                &text(&f["protocol"]),
                &port,
                &peer(&text(other)),
                &text(&f["initiation"]),
            ));
        }
    }
    rows
}

#[test]
fn learned_profile_from_the_lab_capture_audits_it_clean() {
    require_kernel();
    let p = passed();
    let device = "10.20.0.32/28";
    let learned = p.dir.join("lab-oscar.yaml");
    Cmd::new(portolan_bin())
        .arg("learn")
        .arg(&p.devices)
        .args(["--device", device, "--id", "lab-oscar", "-o"])
        .arg(&learned)
        .assert()
        .code(0);
    let yaml = std::fs::read_to_string(&learned).expect("the draft");

    // The library drafts the same profile, and it validates.
    let mut c = Collector::new();
    c.read(&p.devices).expect("the capture");
    let obs = c.finish();
    let opts = LearnOptions {
        device: parse_device(device).expect("prefix"),
        id: Some("lab-oscar".into()),
        inputs: vec![p.devices.display().to_string()],
    };
    assert_eq!(to_yaml(&draft(&obs, &opts)).as_deref(), Ok(yaml.as_str()));
    let profile = match portolan_model::validate::profile_text("lab-oscar.yaml", &yaml) {
        Ok(l) => l.value,
        Err(d) => panic!("{d:?}\n{yaml}"),
    };
    // Its peers by the names the capture resolved, on the ports the gateways used.
    let hosts: BTreeSet<&str> = profile
        .endpoints
        .iter()
        .flat_map(|e| e.hosts.iter().map(String::as_str))
        .collect();
    assert!(
        hosts.contains("gk.sensorist.com") && hosts.contains("gk.sensorist.net"),
        "{yaml}"
    );
    // Independently of `draft()`: written by hand from oscar-templog-gateway.yaml and the
    // example site, what the gateways sent through the firewall — (protocol, port, peer,
    // who initiates), one row per port — and nothing else: HTTPS (cloud-443) and 4321
    // (cloud-4321) to the cloud's names and to the profile's two addresses, where the lab
    // places the cloud; DNS to the site's resolver; DHCP discovery to the broadcast address;
    // and the firewall's DHCP answers (from 10.20.0.254, the lab's firewall, to the client's
    // port 68: RFC 2131 section 4.1), which a capture shows as the server's flow.
    let mut want: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for peer in [
        "gk.sensorist.com",
        "gk.sensorist.net",
        "54.229.203.190",
        "54.229.68.147",
    ] {
        for port in ["443", "4321"] {
            want.insert(row("tcp", port, peer, "device"));
        }
    }
    want.insert(row("udp", "53", "dns", "device"));
    want.insert(row("udp", "67", "255.255.255.255", "device"));
    want.insert(row("udp", "68", "10.20.0.254", "peer"));
    assert_eq!(profile_flows(&profile), want, "{yaml}");

    // The example site with the draft in place of the Oscar gateways' catalog profile.
    let text = std::fs::read_to_string(example_site_path()).expect("examples/site.yaml");
    let from = "    profile: oscar-templog-gateway\n";
    assert_eq!(text.matches(from).count(), 1);
    let site_text_learned = text.replace(from, "    profile: lab-oscar.yaml\n");
    let site = p.dir.join("learned-site.yaml");
    std::fs::write(&site, &site_text_learned).expect("write the site");

    let (flows, groups, s) = audit_json(p, &site, &p.devices, 0);
    assert_eq!(s["violations"], 0, "{s}");
    assert_eq!(s["unknown_device"], 0, "{s}");
    let oscar = groups
        .iter()
        .find(|g| g["group"] == "oscar-gateways")
        .expect("the group");
    assert_eq!(oscar["profile"], "lab-oscar", "{oscar}");
    assert_eq!(oscar["violations"], 0, "{oscar}");
    let by_draft = flows
        .iter()
        .filter(|f| f["group"] == "oscar-gateways")
        .count();
    let before = audit_file(p, &p.devices)
        .flows
        .iter()
        .filter(|f| f.group.as_deref() == Some("oscar-gateways"))
        .count();
    assert_eq!(by_draft, before, "every flow of the gateways is judged");
    assert!(by_draft >= 20, "{by_draft} flows of the gateways");
    let of_draft = flows
        .iter()
        .filter(|f| f["group"] == "oscar-gateways" && f["status"] == "conforming")
        .filter(|f| {
            f["rule"]
                .as_str()
                .is_some_and(|r| r.starts_with("lab-oscar/"))
        })
        .count();

    // The same through the library.
    // The catalog, and the learned profile under the file name the site gives it.
    let policy = Profiles::catalog()
        .named("lab-oscar.yaml", profile)
        .compile("learned-site.yaml", &site_text_learned);
    let r = audit(
        &policy,
        obs,
        &Options {
            firewall: p.firewall.clone(),
        },
    );
    assert_eq!(r.violations, 0);
    assert_eq!(r.unknown_device, 0);
    eprintln!(
        "learned lab-oscar from the lab capture ({} flows of the gateways, {} of them by a lab-oscar rule); \
         in the site in place of oscar-templog-gateway the capture audits clean",
        by_draft, of_draft
    );
}
