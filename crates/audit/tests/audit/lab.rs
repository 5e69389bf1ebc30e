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
use portolan_lab::probes::Verdict;
use portolan_model::catalog::Catalog;
use portolan_model::compile::{site_text, ProfileSource};
use portolan_model::Profile;

pub(crate) struct Shipped(pub(crate) Catalog);

impl ProfileSource for Shipped {
    fn profile(&self, name: &str) -> Result<Profile, String> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no {name}"))
    }
}

fn missing() -> Option<String> {
    if !rustix_is_root() {
        return Some("not root".into());
    }
    for tool in ["ip", "nft", "dnsmasq", "tcpdump"] {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file());
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

fn rustix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// tcpdump inside the lab's firewall namespace, started when the lab loads its ruleset and
/// stopped (SIGTERM, by its process id) when the last phase of probes has ended.
pub(crate) struct Recorder {
    pub(crate) file: PathBuf,
    pub(crate) prefix: Option<String>,
    pub(crate) child: Option<Child>,
    pub(crate) error: Option<String>,
    pub(crate) extra: Vec<String>,
}

impl Recorder {
    pub(crate) fn on(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("building ") {
            // `building N network namespaces (PREFIX-*): ...`
            self.prefix = rest
                .split_once('(')
                .and_then(|(_, r)| r.split_once("-*)"))
                .map(|(p, _)| p.to_string());
        } else if line.starts_with("loading the nftables ruleset") {
            if let Err(e) = self.start() {
                self.error = Some(e);
            }
        } else if line.starts_with("phase 3/3") {
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
            .args(&self.extra)
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

    pub(crate) fn stop(&mut self) {
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
    if let Some(why) = missing() {
        eprintln!("SKIPPED lab_capture_audits_as_the_lab_expects: {why}");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let site = root.join("examples/site.yaml");
    let text = std::fs::read_to_string(&site).expect("examples/site.yaml");
    let catalog = Catalog::embedded().expect("catalog");
    let policy = match site_text("examples/site.yaml", &text, &Shipped(catalog)) {
        Ok(l) => l.value,
        Err(d) => panic!("{d:?}"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("lab.pcap");
    let rec = Mutex::new(Recorder {
        file: file.clone(),
        prefix: None,
        child: None,
        error: None,
        extra: Vec::new(),
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

    // The firewall's own addresses, for the flows bound to `firewall` (DNS, DHCP).
    let topo = portolan_lab::topology::plan(&policy, "x").expect("plan");
    let firewall: Vec<IpAddr> = topo
        .spaces
        .iter()
        .flat_map(|s| s.fw_addrs.iter().map(|a| a.addr()))
        .collect();
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

    // Each lab probe as (source, destination, protocol, port, expected status).
    let mut probes: Vec<(IpAddr, IpAddr, &str, Option<u16>, Status)> = Vec::new();
    for row in &report.rows {
        if matches!(row.observed, portolan_lab::send::Observed::Skip(_)) {
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
            Verdict::Pass => Status::Conforming,
            Verdict::Drop => Status::Violation,
        };
        probes.push((row.src, dst, proto, port, want));
    }
    let same = |f: &portolan_audit::FlowRecord, p: &(IpAddr, IpAddr, &str, Option<u16>, Status)| {
        let ends = (f.src == p.0 && f.dst == p.1)
            // ESP SAs pair by address, as connection tracking pairs them: the peer's SA after
            // the device's belongs to the device's conversation.
            || (p.2 == "esp" && f.src == p.1 && f.dst == p.0);
        ends && f.protocol == p.2 && (p.3.is_none() || f.dport == p.3)
    };
    // 1. Every probe the lab sent shows in the capture with the lab's verdict (a probe to a
    //    named peer is sent before its name is resolved too, as a drop: both are there).
    for p in &probes {
        assert!(
            r.flows.iter().any(|f| same(f, p) && f.status == p.4),
            "no {:?} flow in the capture for lab probe {p:?}: {:#?}",
            p.4,
            r.flows.iter().filter(|f| same(f, p)).collect::<Vec<_>>()
        );
    }
    // 2. Every violation is a probe the lab meant to be dropped, and every conforming flow
    //    that a probe sent is one the lab meant to pass.
    for f in &r.flows {
        let matching: Vec<_> = probes.iter().filter(|p| same(f, p)).collect();
        match f.status {
            Status::Violation => assert!(
                matching.iter().any(|p| p.4 == Status::Violation),
                "a violation the lab did not send to be dropped: {f:#?}"
            ),
            Status::Conforming if !matching.is_empty() => assert!(
                matching.iter().any(|p| p.4 == Status::Conforming),
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

    learn_then_audit(&file, &firewall);
}

/// `learn` on the lab capture, for the ThingPark base station: the draft, bound in a site with
/// the lab's services, audits the same capture with no violation.
fn learn_then_audit(file: &Path, firewall: &[IpAddr]) {
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
    struct One(Profile);
    impl ProfileSource for One {
        fn profile(&self, _: &str) -> Result<Profile, String> {
            Ok(self.0.clone())
        }
    }
    let policy = match site_text("learned.yaml", &site, &One(learned)) {
        Ok(l) => l.value,
        Err(d) => panic!("{d:?}\n{site}"),
    };
    let r = audit(&policy, obs, &Options::default());
    let bad: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.status == Status::Violation)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}\n{yaml}");
    assert!(r.conforming > 10, "{} conforming", r.conforming);
    eprintln!(
        "learned from the lab capture: {} flows of 10.20.0.10, all conforming to the draft",
        r.conforming
    );
}
