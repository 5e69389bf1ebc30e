use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use portolan_audit::{audit, Collector, Options};
use portolan_model::catalog::Catalog;
use portolan_model::compile::site_text;

const RULES: &str = "table ip portolan_capture {
	chain forward { type filter hook forward priority filter + 10; policy accept; dup to 169.254.77.77 device \"pcap0\"; }
	chain input { type filter hook input priority filter + 10; policy accept; iifname != \"lo\" dup to 169.254.77.77 device \"pcap0\"; }
	chain output { type filter hook output priority filter + 10; policy accept; oifname != { \"lo\", \"pcap0\" } dup to 169.254.77.77 device \"pcap0\"; }
}
table ip6 portolan_capture {
	chain forward { type filter hook forward priority filter + 10; policy accept; dup to fe80::77 device \"pcap0\"; }
	chain input { type filter hook input priority filter + 10; policy accept; iifname != \"lo\" dup to fe80::77 device \"pcap0\"; }
	chain output { type filter hook output priority filter + 10; policy accept; oifname != { \"lo\", \"pcap0\" } dup to fe80::77 device \"pcap0\"; }
}
";

struct Tap { file: PathBuf, prefix: Option<String>, child: Option<Child>, error: Option<String> }
impl Tap {
    fn on(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("building ") {
            self.prefix = rest.split_once('(').and_then(|(_, r)| r.split_once("-*)")).map(|(p, _)| p.to_string());
        } else if line.starts_with("loading the nftables ruleset") {
            if let Err(e) = self.start() { self.error = Some(e); }
        } else if line.starts_with("phase 3/3") { self.stop(); }
    }
    fn start(&mut self) -> Result<(), String> {
        let ns = format!("{}-fw", self.prefix.clone().ok_or("no prefix")?);
        let run = |args: &[&str]| -> Result<(), String> {
            let o = Command::new("ip").args(["netns", "exec", &ns]).args(args).output().map_err(|e| e.to_string())?;
            if o.status.success() { Ok(()) } else { Err(format!("{args:?}: {}", String::from_utf8_lossy(&o.stderr))) }
        };
        run(&["ip", "link", "add", "pcap0", "type", "dummy"])?;
        run(&["ip", "link", "set", "pcap0", "up"])?;
        let rules = self.file.with_extension("nft");
        std::fs::write(&rules, RULES).map_err(|e| e.to_string())?;
        run(&["nft", "-f", rules.to_str().ok_or("path")?])?;
        let mut child = Command::new("ip").args(["netns", "exec", &ns, "tcpdump", "-i", "pcap0", "-n", "-U", "-w"]).arg(&self.file)
            .stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
        let err = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(err).lines();
        let ready = lines.by_ref().take(5).map_while(Result::ok).inspect(|l| eprintln!("tcpdump: {l}")).any(|l| l.contains("listening on"));
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
        if !ready { self.stop(); return Err("tcpdump did not start".into()); }
        Ok(())
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}
impl Drop for Tap { fn drop(&mut self) { self.stop(); } }

#[test]
fn explore_egress() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("examples/site.yaml")).expect("site");
    let policy = site_text("examples/site.yaml", &text, &crate::lab::Shipped(Catalog::embedded().expect("c"))).map_err(|d| format!("{d:?}")).expect("x").value;
    let file = PathBuf::from("/tmp/passed.pcap");
    let rec = Mutex::new(Tap { file: file.clone(), prefix: None, child: None, error: None });
    let progress = |m: &str| { eprintln!("lab: {m}"); rec.lock().unwrap_or_else(|e| e.into_inner()).on(m); };
    let report = portolan_lab::lab::run(&policy, &portolan_lab::lab::Options::default(), &progress).expect("lab");
    let mut rec = rec.into_inner().unwrap_or_else(|e| e.into_inner());
    rec.stop();
    assert_eq!(rec.error, None);
    assert!(report.all_match());
    std::fs::write("/tmp/labreport.json", serde_json::to_string_pretty(&report).expect("j")).expect("w");
    let topo = portolan_lab::topology::plan(&policy, "x").expect("plan");
    let firewall: Vec<IpAddr> = topo.spaces.iter().flat_map(|s| s.fw_addrs.iter().map(|a| a.addr())).collect();
    eprintln!("firewall {firewall:?}");
    let mut c = Collector::new();
    c.read(&file).expect("cap");
    let r = audit(&policy, c.finish(), &Options { firewall });
    let mut out = String::new();
    for f in &r.flows { out.push_str(&serde_json::to_string(f).expect("j")); out.push('\n'); }
    std::fs::write("/tmp/egress_flows.jsonl", out).expect("w");
    eprintln!("{} flows {} ok {} bad {} unknown", r.flows.len(), r.conforming, r.violations, r.unknown_device);
    for g in &r.groups { eprintln!("{} unused {:?}", g.group, g.unused); }
}
