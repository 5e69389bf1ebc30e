//! A capture recorded for real: tcpdump in the firewall namespace of `portolan lab` while the
//! lab proves examples/site.yaml, then the audit of that capture against the same site. Every
//! probe the lab expected to pass must be conforming, every probe it expected to be dropped a
//! violation. The lab creates its own uniquely named namespaces and removes them; tcpdump runs
//! only inside the lab's firewall namespace. Needs root, iproute2, nftables, dnsmasq and
//! tcpdump; without them the test says so loudly and skips.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use portolan_audit::{audit, Collector, Options, Status};
use portolan_lab::probes::Fate;
use portolan_model::ir::Policy;
use portolan_testkit::Profiles;

/// Fails the test — never skips it — where the machine cannot run it: not root, or a tool
/// missing (`portolan-testkit`'s skip policy).
pub(crate) fn require_kernel() {
    match portolan_testkit::kernel::lacks() {
        Ok(None) => {}
        Ok(Some(why)) => panic!("KERNEL TEST CANNOT RUN: this kernel lacks {why}"),
        Err(e) => panic!("KERNEL TEST CANNOT RUN: {e}"),
    }
    portolan_testkit::kernel::require_tools(&["ip", "nft", "dnsmasq", "tcpdump"]);
}

/// examples/site.yaml, compiled with the shipped catalog.
pub(crate) fn example_policy() -> Policy {
    let site = example_site_path();
    let text = std::fs::read_to_string(&site).expect("examples/site.yaml");
    Profiles::catalog().compile("examples/site.yaml", &text)
}

pub(crate) fn example_site_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site.yaml")
}

/// The firewall's own addresses as the lab assigns them (the plan depends on the policy
/// alone), for the flows bound to `firewall` (DNS, DHCP).
pub(crate) fn lab_firewall(policy: &Policy) -> Vec<IpAddr> {
    let topo = portolan_lab::topology::plan(policy, "x").expect("plan");
    topo.spaces
        .iter()
        .flat_map(|s| s.fw_addrs.iter().map(|a| a.addr()))
        .collect()
}

/// One probe the lab sent, as a capture shows it.
#[derive(Clone, Debug)]
pub(crate) struct LabProbe {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) proto: &'static str,
    pub(crate) port: Option<u16>,
    /// The status the lab's verdict stands for: pass → conforming, drop → violation.
    pub(crate) want: Status,
    /// The device group and the `profile/flow` the probe was sent for.
    pub(crate) group: String,
    pub(crate) flow: String,
}

/// The namespace prefix a lab progress line announces: `building N network namespaces
/// (PREFIX-*): ...`.
pub(crate) fn lab_prefix(line: &str) -> Option<String> {
    line.strip_prefix("building ")?
        .split_once('(')
        .and_then(|(_, r)| r.split_once("-*)"))
        .map(|(p, _)| p.to_string())
}

/// Whether a lab progress line reports its last phase of probes (`phase N/N ...`).
pub(crate) fn last_phase(line: &str) -> bool {
    line.strip_prefix("phase ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(n, m)| n == m)
}

/// Every probe of the lab's report that was sent (skipped ones are not), but the spoofed
/// ones: a spoofed packet differs from the device's own only by the interface it arrives on,
/// which a capture's flows do not keep, so an audit cannot tell them apart.
pub(crate) fn lab_probes(report: &portolan_lab::report::Report) -> Vec<LabProbe> {
    let mut probes = Vec::new();
    for row in &report.rows {
        if matches!(row.observed, portolan_lab::send::Observed::Skip(_))
            || row.kind == portolan_lab::probes::Kind::Spoofed
        {
            continue;
        }
        let Some(dst) = row
            .dst
            .rsplit(' ')
            .next()
            .and_then(|d| d.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let (proto, port) = match row.traffic.split([' ', '/']).collect::<Vec<_>>()[..] {
            ["tcp", p, ..] => ("tcp", p.parse::<u16>().ok()),
            ["udp", p, ..] => ("udp", p.parse::<u16>().ok()),
            ["dns", ..] => ("udp", Some(53)),
            ["icmp", ..] if row.src.is_ipv4() => ("icmp", None),
            ["icmp", ..] => ("icmpv6", None),
            ["esp"] => ("esp", None),
            ["ah"] => ("ah", None),
            ["gre"] => ("gre", None),
            _ => continue,
        };
        let want = match row.expected {
            Fate::Pass => Status::Conforming,
            Fate::Drop => Status::Violation,
        };
        probes.push(LabProbe {
            src: row.src,
            dst,
            proto,
            port,
            want,
            group: row.device.clone(),
            flow: row.flow.clone(),
        });
    }
    probes
}

/// Whether an audited flow is the traffic of a lab probe.
pub(crate) fn same(f: &portolan_audit::FlowRecord, p: &LabProbe) -> bool {
    let ends = (f.src == p.src && f.dst == p.dst)
        // ESP SAs pair by address, as connection tracking pairs them: the peer's SA after
        // the device's belongs to the device's conversation.
        || (p.proto == "esp" && f.src == p.dst && f.dst == p.src);
    ends && f.protocol == p.proto && (p.port.is_none() || f.dport == p.port)
}

/// tcpdump inside the lab's firewall namespace, started when the lab loads its ruleset and
/// stopped (SIGTERM, by its process id) when the last phase of probes has ended.
struct Recorder {
    file: PathBuf,
    prefix: Option<String>,
    child: Option<Child>,
    error: Option<String>,
}

impl Recorder {
    fn on(&mut self, line: &str) {
        if let Some(prefix) = lab_prefix(line) {
            self.prefix = Some(prefix);
        } else if line.starts_with("loading the nftables ruleset") {
            if let Err(e) = self.start() {
                self.error = Some(e);
            }
        } else if last_phase(line) {
            self.stop();
        }
    }

    fn start(&mut self) -> Result<(), String> {
        let prefix = self.prefix.clone().ok_or("no namespace prefix seen")?;
        let ns = format!("{prefix}-fw");
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", &ns, "tcpdump", "-i", "any", "-n", "-U", "-w",
            ])
            .arg(&self.file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start tcpdump: {e}"))?;
        let err = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(err).lines();
        // tcpdump says `listening on any` once the capture is active.
        let ready = lines
            .by_ref()
            .take(5)
            .map_while(Result::ok)
            .any(|l| l.contains("listening on"));
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
        if !ready {
            self.stop();
            return Err("tcpdump did not start".into());
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Recorder {
    /// Also when the lab fails or a check panics: no tcpdump outlives the test.
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn lab_capture_audits_as_the_lab_expects() {
    require_kernel();
    let policy = example_policy();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("lab.pcap");
    let rec = Mutex::new(Recorder {
        file: file.clone(),
        prefix: None,
        child: None,
        error: None,
    });
    let progress = |m: &str| {
        eprintln!("lab: {m}");
        rec.lock().unwrap_or_else(|e| e.into_inner()).on(m);
    };
    let report = portolan_lab::lab::run(&policy, &portolan_lab::lab::Options::default(), &progress);
    let mut rec = rec.into_inner().unwrap_or_else(|e| e.into_inner());
    rec.stop();
    let report = report.expect("the lab runs");
    assert_eq!(rec.error, None);
    assert!(report.all_match(), "the lab itself mismatched");

    let firewall = lab_firewall(&policy);
    let mut c = Collector::new();
    let s = c.read(&file).expect("the capture").clone();
    assert!(s.records > 0, "tcpdump captured nothing");
    let r = audit(
        &policy,
        c.finish(),
        &Options {
            firewall: firewall.clone(),
        },
    );

    let probes = lab_probes(&report);
    // 1. Every probe the lab sent shows in the capture with the lab's verdict (a probe to a
    //    named peer is sent before its name is resolved too, as a drop: both are there).
    for p in &probes {
        assert!(
            r.flows.iter().any(|f| same(f, p) && f.status == p.want),
            "no {:?} flow in the capture for lab probe {p:?}: {:#?}",
            p.want,
            r.flows.iter().filter(|f| same(f, p)).collect::<Vec<_>>()
        );
    }
    // 2. Every violation is a probe the lab meant to be dropped, and every conforming flow
    //    that a probe sent is one the lab meant to pass.
    for f in &r.flows {
        let matching: Vec<_> = probes.iter().filter(|p| same(f, p)).collect();
        match f.status {
            Status::Violation => assert!(
                matching.iter().any(|p| p.want == Status::Violation),
                "a violation the lab did not send to be dropped: {f:#?}"
            ),
            Status::Conforming if !matching.is_empty() => assert!(
                matching.iter().any(|p| p.want == Status::Conforming),
                "conforming, but the lab sent it to be dropped: {f:#?}"
            ),
            _ => {}
        }
    }
    assert!(probes.len() > 100, "only {} lab probes", probes.len());
    eprintln!(
        "lab capture: {} frames, {} flows: {} conforming, {} violations (the lab's drop probes), {} of no device; {} lab probes classified as the lab expects",
        r.frames.frames,
        r.flows.len(),
        r.conforming,
        r.violations,
        r.unknown_device,
        probes.len()
    );

    // The lab's unicast probes to a broadcast flow's port (DHCP's 67) go to local addresses
    // that serve nothing; `learn` takes a local peer on that port for the site's DHCP service.
    let unicast: Vec<(IpAddr, IpAddr)> = report
        .rows
        .iter()
        .filter(|r| r.kind == portolan_lab::probes::Kind::Unicast)
        .filter_map(|r| Some((r.src, r.dst.parse().ok()?)))
        .collect();
    learn_then_audit(&file, &firewall, &unicast);
}

/// `learn` on the lab capture, for the ThingPark base station: the draft, bound in a site with
/// the lab's services, audits the same capture with no violation but the lab's `unicast` probes
/// to local addresses on DHCP's port, which the draft takes for its DHCP service.
fn learn_then_audit(file: &Path, firewall: &[IpAddr], unicast: &[(IpAddr, IpAddr)]) {
    use portolan_audit::learn::{draft, parse_device, to_yaml, LearnOptions};

    let mut c = Collector::new();
    c.read(file).expect("the capture");
    let obs = c.finish();
    let opts = LearnOptions {
        device: parse_device("10.20.0.10").expect("address"),
        id: Some("lab-lrr".into()),
        inputs: vec![file.display().to_string()],
    };
    let yaml = to_yaml(&draft(&obs, &opts)).expect("the draft validates");
    let learned = match portolan_model::validate::profile_text("lab-lrr.yaml", &yaml) {
        Ok(l) => l.value,
        Err(d) => panic!("{d:?}"),
    };
    let list = |a: &[IpAddr]| {
        a.iter()
            .map(|x| format!("\"{x}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut ntp = firewall.to_vec();
    ntp.push("10.99.0.123".parse().expect("address"));
    let site = format!(
        "portolan: 1
site: learned
zones:
  - {{id: field, networks: [10.20.0.0/24]}}
services:
  dns: [{fw}]
  dhcp: [{fw}]
  ntp: [{ntp}]
devices:
  - {{id: lrr, profile: lab-lrr, zone: field, addresses: [10.20.0.10]}}
",
        fw = list(firewall),
        ntp = list(&ntp)
    );
    let policy = Profiles::none()
        .named("lab-lrr", learned)
        .compile("learned.yaml", &site);
    let r = audit(&policy, obs, &Options::default());
    let bad: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.status == Status::Violation && !unicast.contains(&(f.src, f.dst)))
        // `learn` drafts no flow from a TCP connection no SYN-ACK answered (the lab's dropped
        // probes): those stay violations of the draft, as they should.
        .filter(|f| !(f.protocol == "tcp" && f.packets[1] == 0))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}\n{yaml}");
    assert!(r.conforming > 10, "{} conforming", r.conforming);
    eprintln!(
        "learned from the lab capture: {} flows of 10.20.0.10, all conforming to the draft",
        r.conforming
    );
}
