//! Flow records from real exporters. In network namespaces the test creates (and removes),
//! the test site's sensor (10.20.0.10) talks to its DNS server, its NTP server and its VPN
//! peer, is reached over SSH from the management zone, and makes one stray connection
//! (TCP 8080 to the VPN peer, which its profile does not allow). tcpdump records the traffic;
//! softflowd (Debian `softflowd`) exports it as IPFIX and as NetFlow v9 to UDP sockets that
//! write the datagrams to files, and to nfcapd (Debian `nfdump`). Audit of each file must find
//! the profile's flows conforming and the stray flow as the one violation; nfdump's own count
//! of the records nfcapd stored is the cross-check of the records decoded.
//!
//! softflowd reads the capture with `-r`, then exports everything at `softflowctl shutdown`
//! (in this version it starts reading only after its control socket was spoken to, hence the
//! `statistics` call first).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portolan_audit::input::Format;
use portolan_audit::{audit, Collector, Options, Report, Status};

use crate::scenario::policy;

fn missing() -> Option<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Some("not root".into());
    }
    for tool in [
        "ip",
        "tcpdump",
        "softflowd",
        "softflowctl",
        "nfcapd",
        "nfdump",
        "socat",
        "ping",
    ] {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup.sh installs it)"
            ));
        }
    }
    None
}

/// Namespaces and background processes, removed on drop (also when an assertion fails).
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Lab {
    fn ns(&self, n: &str) -> String {
        format!("{}{n}", self.prefix)
    }

    fn add_ns(&mut self, n: &str) {
        let ns = self.ns(n);
        run("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        // No IPv6: its neighbour discovery would only add flows of no device to the records.
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
            ],
        );
    }

    fn exec(&self, n: &str, args: &[&str]) {
        let ns = self.ns(n);
        let mut all = vec!["netns", "exec", &ns];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    fn spawn(&mut self, n: &str, args: &[&str]) {
        let ns = self.ns(n);
        let child = Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        self.children.push(child);
    }
}

impl Lab {
    /// Ends the background processes with SIGTERM (tcpdump and nfcapd write their files
    /// then), and waits for them.
    fn stop_all(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            // Whatever still runs in it (nfcapd daemonises), then the namespace.
            if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").arg(pid).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for(path: &Path) {
    for _ in 0..50 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} did not appear", path.display());
}

/// Records the test traffic into `pcap`.
fn traffic(lab: &mut Lab, pcap: &Path) {
    lab.add_ns("s");
    lab.add_ns("p");
    let (s, p) = (lab.ns("s"), lab.ns("p"));
    let (va, vb) = (format!("{}a", lab.prefix), format!("{}b", lab.prefix));
    run(
        "ip",
        &[
            "link", "add", &va, "netns", &s, "type", "veth", "peer", "name", &vb, "netns", &p,
        ],
    );
    run(
        "ip",
        &["-n", &s, "addr", "add", "10.20.0.10/24", "dev", &va],
    );
    run("ip", &["-n", &s, "link", "set", &va, "up"]);
    run(
        "ip",
        &["-n", &s, "route", "add", "default", "via", "10.20.0.1"],
    );
    for a in [
        "10.20.0.1/24",
        "10.99.0.123/32",
        "198.51.100.10/32",
        "10.99.0.5/32",
    ] {
        run("ip", &["-n", &p, "addr", "add", a, "dev", &vb]);
    }
    run("ip", &["-n", &p, "link", "set", &vb, "up"]);
    let pcap_s = pcap.display().to_string();
    lab.spawn(
        "s",
        &[
            "tcpdump",
            "-i",
            &va,
            "-n",
            "--immediate-mode",
            "-U",
            "-w",
            &pcap_s,
        ],
    );
    lab.spawn(
        "p",
        &["socat", "TCP-LISTEN:8080,fork,reuseaddr", "SYSTEM:echo hi"],
    );
    lab.spawn(
        "s",
        &["socat", "TCP-LISTEN:22,fork,reuseaddr", "SYSTEM:echo ssh"],
    );
    lab.spawn("p", &["socat", "-u", "UDP-RECV:53", "OPEN:/dev/null"]);
    lab.spawn("p", &["socat", "-u", "UDP-RECV:123", "OPEN:/dev/null"]);
    wait_for(pcap);
    std::thread::sleep(Duration::from_millis(700));
    lab.exec(
        "s",
        &["ping", "-c", "2", "-i", "0.2", "-q", "198.51.100.10"],
    );
    lab.exec("s", &["sh", "-c", "echo q | socat -u - UDP:10.20.0.1:53"]);
    lab.exec(
        "s",
        &["sh", "-c", "echo q | socat -u - UDP:10.99.0.123:123"],
    );
    lab.exec(
        "p",
        &[
            "socat",
            "-u",
            "TCP:10.20.0.10:22,bind=10.99.0.5",
            "OPEN:/dev/null",
        ],
    );
    lab.exec(
        "s",
        &["socat", "-u", "TCP:198.51.100.10:8080", "OPEN:/dev/null"],
    );
    std::thread::sleep(Duration::from_millis(500));
    // tcpdump writes each packet as it comes (--immediate-mode, -U); it ends at SIGTERM.
    lab.stop_all();
}

/// softflowd reads `pcap` and exports it as `version` to 127.0.0.1:`port` in namespace `n`.
fn export(lab: &Lab, n: &str, pcap: &Path, version: &str, port: u16, dir: &Path) {
    let ctl = dir.join(format!("sf-{version}-{port}.ctl"));
    let pid = dir.join(format!("sf-{version}-{port}.pid"));
    let ns = lab.ns(n);
    let dest = format!("127.0.0.1:{port}");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns, "softflowd", "-d", "-a", "-r"])
        .arg(pcap)
        .args(["-v", version, "-n", &dest, "-p"])
        .arg(&pid)
        .arg("-c")
        .arg(&ctl)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("softflowd");
    wait_for(&ctl);
    let ctl_s = ctl.display().to_string();
    run("softflowctl", &["-c", &ctl_s, "statistics"]);
    std::thread::sleep(Duration::from_millis(300));
    run("softflowctl", &["-c", &ctl_s, "shutdown"]);
    let status = child.wait().expect("softflowd ends");
    assert!(status.success(), "softflowd -v {version}: {status}");
}

/// The records nfdump counts in a directory of nfcapd files (its summary's `flows`), and its
/// CSV output (UTC times).
fn nfdump(dir: &Path) -> (u64, String) {
    let out = Command::new("nfdump")
        .env("TZ", "UTC")
        .arg("-R")
        .arg(dir)
        .args(["-o", "csv"])
        .output()
        .expect("nfdump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("flows,bytes"));
    lines.next();
    let flows = lines
        .next()
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in nfdump's output:\n{text}"));
    (flows, text)
}

fn audit_file(path: &Path) -> (Report, Format, u64) {
    let mut c = Collector::new();
    let s = c.read(path).expect("readable");
    assert_eq!(s.problem, None, "{}", path.display());
    let format = s.format;
    let records = s.flow_records.as_ref().expect("flow records").records;
    (
        audit(&policy(), c.finish(), &Options::default()),
        format,
        records,
    )
}

fn check(r: &Report, what: &str) {
    let show: Vec<String> = r
        .flows
        .iter()
        .map(|f| {
            format!(
                "{:?} {} {}:{:?} -> {}:{:?} {:?} {:?}",
                f.status, f.protocol, f.src, f.sport, f.dst, f.dport, f.rule, f.violation
            )
        })
        .collect();
    let rules: Vec<&str> = r
        .flows
        .iter()
        .filter(|f| f.status == Status::Conforming)
        .filter_map(|f| f.rule.as_deref())
        .collect();
    for want in [
        "test-sensor/dns",
        "test-sensor/ntp",
        "test-sensor/ping",
        "test-sensor/ssh",
    ] {
        assert!(
            rules.contains(&want),
            "{what}: {want} not conforming:\n{show:#?}"
        );
    }
    let bad: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.status == Status::Violation)
        .collect();
    assert_eq!(bad.len(), 1, "{what}: one violation:\n{show:#?}");
    assert_eq!(
        (
            bad[0].protocol.as_str(),
            bad[0].dst.to_string(),
            bad[0].dport
        ),
        ("tcp", "198.51.100.10".to_string(), Some(8080)),
        "{what}: the stray flow:\n{show:#?}"
    );
    assert_eq!(r.violations, 1, "{what}");
    assert_eq!(r.unknown_device, 0, "{what}:\n{show:#?}");
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("portolan-exporters-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

#[test]
fn softflowd_ipfix_and_v9_audit_clean_but_the_stray_flow() {
    if let Some(why) = missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = scratch();
    let mut lab = Lab {
        prefix: format!("pfl{}", std::process::id() % 100_000),
        namespaces: Vec::new(),
        children: Vec::new(),
    };
    let pcap = dir.join("traffic.pcap");
    traffic(&mut lab, &pcap);

    // The collectors: UDP sockets writing datagrams to files, nfcapd for each version.
    lab.add_ns("c");
    let ipfix = dir.join("ipfix.bin");
    let v9 = dir.join("v9.bin");
    let (nf10, nf9) = (dir.join("nfcapd-ipfix"), dir.join("nfcapd-v9"));
    for (port, file) in [(4739, &ipfix), (2055, &v9)] {
        let recv = format!("UDP-RECV:{port}");
        let create = format!("CREATE:{}", file.display());
        lab.spawn("c", &["socat", "-u", &recv, &create]);
    }
    for (port, d) in [("9995", &nf10), ("9996", &nf9)] {
        std::fs::create_dir_all(d).expect("nfcapd dir");
        let ds = d.display().to_string();
        lab.spawn("c", &["nfcapd", "-p", port, "-w", &ds]);
    }
    std::thread::sleep(Duration::from_millis(500));
    export(&lab, "c", &pcap, "10", 4739, &dir);
    export(&lab, "c", &pcap, "9", 2055, &dir);
    export(&lab, "c", &pcap, "10", 9995, &dir);
    export(&lab, "c", &pcap, "9", 9996, &dir);
    std::thread::sleep(Duration::from_millis(500));
    // nfcapd writes its file when it ends.
    lab.stop_all();

    let (r10, f10, n10) = audit_file(&ipfix);
    assert_eq!(f10, Format::Ipfix);
    check(&r10, "IPFIX");
    let (r9, f9, n9) = audit_file(&v9);
    assert_eq!(f9, Format::NetflowV9);
    check(&r9, "NetFlow v9");

    // nfdump's count of what nfcapd stored is the count of records decoded here.
    let (c10, csv10) = nfdump(&nf10);
    let (c9, csv9) = nfdump(&nf9);
    assert_eq!(
        (n10, n9),
        (c10, c9),
        "records: portolan (IPFIX, v9) against nfdump"
    );
    // By hand: ping request and reply, DNS and NTP queries (unanswered), SSH both ways, the
    // stray connection both ways: 8 one-way records (no IPv6, ARP is not IP).
    assert_eq!((n10, n9), (8, 8), "one-way records");
    // And nfdump's CSV of the same records audits the same.
    for (csv, what) in [(csv10, "nfdump csv of IPFIX"), (csv9, "nfdump csv of v9")] {
        let path = dir.join("nfdump.csv");
        std::fs::write(&path, csv).expect("write csv");
        let (r, f, n) = audit_file(&path);
        assert_eq!(f, Format::NfdumpCsv);
        check(&r, what);
        assert_eq!(n, if what.contains("IPFIX") { c10 } else { c9 }, "{what}");
    }
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}
