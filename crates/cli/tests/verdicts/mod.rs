//! The lab for `probe_verdicts.rs`: three namespaces — `dev` (the device, 10.20.0.33), `fw`
//! (a router whose nftables forward chain the test writes, ICMP rate limit off), `srv`
//! (198.51.100.0/24: dnsmasq, socat listeners, `openssl s_server` for TLS and DTLS) — and
//! `/etc/netns/<dev>/resolv.conf`, all removed when the lab is dropped; and the helpers that
//! run `portolan probe` in it and read its two outputs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use portolan_testkit::netns::{
    command_in, ip_in, must_in, run_in, start_logged, wait_for, Net, Procs,
};
use portolan_testkit::openssl;
use serde_json::Value;

pub struct Lab {
    pub dev: String,
    pub fw: String,
    pub srv: String,
    pub dir: tempfile::TempDir,
    /// Stopped before the namespaces go.
    pub children: Procs,
    _net: Net,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.dev));
    }
}

impl Lab {
    /// The lab; the test fails when this machine cannot build it (the kit's skip policy).
    pub fn new() -> Lab {
        let mut net = Net::new();
        let (d, f, s) = (net.ns("dev"), net.ns("fw"), net.ns("srv"));
        net.veth(&d, "eth0", &f, "lan0");
        net.veth(&f, "wan0", &s, "eth0");
        let setup: [(&str, &[&[&str]]); 3] = [
            (
                &d,
                &[
                    &["addr", "add", "10.20.0.33/24", "dev", "eth0"],
                    &["route", "add", "default", "via", "10.20.0.1"],
                ],
            ),
            (
                &f,
                &[
                    &["addr", "add", "10.20.0.1/24", "dev", "lan0"],
                    &["addr", "add", "198.51.100.1/24", "dev", "wan0"],
                ],
            ),
            (
                &s,
                &[
                    &["addr", "add", "198.51.100.7/24", "dev", "eth0"],
                    &["route", "add", "default", "via", "198.51.100.1"],
                ],
            ),
        ];
        for (ns, cmds) in setup {
            for c in cmds {
                ip_in(ns, c);
            }
        }
        // The router answers every probe's packet with its ICMP error: the kernel's default
        // rate limit (one a second after a burst of six per destination) would turn the
        // second run's rejections into silence.
        must_in(
            &f,
            &[
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv4.icmp_ratelimit=0",
            ],
            None,
        );
        let lab = Lab {
            dev: d,
            fw: f,
            srv: s,
            dir: tempfile::tempdir().expect("temporary folder"),
            children: Procs::new(),
            _net: net,
        };
        lab.machine_resolver("198.51.100.53");
        lab
    }

    /// What `ip netns exec` shows the device namespace as its resolv.conf.
    pub fn machine_resolver(&self, addr: &str) {
        let d = Path::new("/etc/netns").join(&self.dev);
        std::fs::create_dir_all(&d).expect("/etc/netns/<dev>");
        std::fs::write(d.join("resolv.conf"), format!("nameserver {addr}\n")).expect("write");
    }

    pub fn srv_addresses(&self, addrs: &[&str]) {
        for a in addrs {
            ip_in(
                &self.srv,
                &["addr", "add", &format!("{a}/32"), "dev", "eth0"],
            );
        }
    }

    /// A process in `srv`, stopped with the lab.
    pub fn spawn(&mut self, args: &[&str]) -> &mut Child {
        let mut cmd = command_in(&self.srv, args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        self.children.spawn(cmd)
    }

    /// dnsmasq on 198.51.100.53, the site's resolver, answering `hosts` (name, address).
    pub fn dns(&mut self, hosts: &[(&str, &str)]) {
        let log = self.dir.path().join("dnsmasq.log");
        let mut args = vec![
            "dnsmasq".to_string(),
            "--keep-in-foreground".into(),
            format!("--conf-file={}", self.write("empty.conf", "")),
            "--user=root".into(),
            "--local-ttl=300".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--bind-interfaces".into(),
            "--listen-address=198.51.100.53".into(),
            "--except-interface=lo".into(),
            format!(
                "--pid-file={}",
                self.dir.path().join("dnsmasq.pid").display()
            ),
            format!("--log-facility={}", log.display()),
        ];
        for (n, a) in hosts {
            args.push(format!("--host-record={n},{a}"));
        }
        let mut cmd = command_in(&self.srv, &[]);
        cmd.args(&args);
        start_logged(
            &mut self.children,
            cmd,
            &log,
            "started",
            Duration::from_secs(10),
        );
    }

    /// socat accepting TCP on each `ADDR:PORT` (and closing at once).
    pub fn tcp(&mut self, listen: &[&str]) {
        for l in listen {
            let (a, p) = l.split_once(':').expect("ADDR:PORT");
            let spec = format!("TCP-LISTEN:{p},bind={a},reuseaddr,fork");
            self.spawn(&["socat", &spec, "SYSTEM:true"]);
        }
        // Listening when a connect succeeds from srv itself.
        for l in listen {
            wait_for(
                &format!("socat on {l}"),
                Duration::from_secs(10),
                Duration::from_millis(20),
                || {
                    let connect = ["socat", "-u", &format!("TCP:{l}"), "OPEN:/dev/null"];
                    run_in(&self.srv, &connect, None).is_ok()
                },
            );
        }
    }

    /// A CA (`CN = ca`) and a leaf for `host` signed by it; returns (cert, key) paths.
    pub fn cert(&self, ca: &str, host: &str) -> (PathBuf, PathBuf) {
        openssl::leaf(self.dir.path(), ca, &format!("/CN={ca}"), host)
    }

    /// `openssl s_server` on `addr` (TLS, or DTLS 1.2 with `dtls`), ready when it says ACCEPT,
    /// stopped with the lab.
    pub fn openssl(&mut self, addr: &str, cert: &Path, key: &Path, dtls: bool) {
        let child = self.openssl_server(addr, cert, key, dtls);
        self.children.push(child);
    }

    /// [`Lab::openssl`], stopped by the caller.
    pub fn openssl_server(&self, addr: &str, cert: &Path, key: &Path, dtls: bool) -> Child {
        openssl::s_server(&self.srv, addr, cert, key, dtls)
    }

    /// `fw`'s forward chain: established traffic, `blocks`, then everything from the device.
    pub fn firewall(&self, blocks: &[&str]) {
        let _ = run_in(&self.fw, &["nft", "delete", "table", "inet", "lab"], None);
        let rules = format!(
            "table inet lab {{\n  chain forward {{\n    type filter hook forward priority 0; policy drop;\n    ct state established,related accept\n{}    iifname \"lan0\" accept\n  }}\n}}\n",
            blocks.iter().map(|b| format!("    {b}\n")).collect::<String>()
        );
        must_in(&self.fw, &["nft", "-f", "-"], Some(&rules));
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    }
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub took: Duration,
}

/// `portolan probe` in the device namespace, human and JSON; both must exit alike.
pub fn probe(lab: &Lab, args: &[&str]) -> (Out, Value) {
    probe_with(lab, args, || {})
}

/// [`probe`], calling `before` before each of the two runs.
pub fn probe_with(lab: &Lab, args: &[&str], mut before: impl FnMut()) -> (Out, Value) {
    let mut one = |json: bool| {
        before();
        let mut cmd = cargo_bin_cmd!("portolan");
        cmd.arg("probe").args(args).args([
            "--netns",
            &lab.dev,
            "--timeout",
            "600ms",
            "--attempts",
            "1",
            "--ttl-queries",
            "1",
        ]);
        if json {
            cmd.args(["--format", "json"]);
        }
        let start = Instant::now();
        let out = cmd.output().expect("run portolan");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            took: start.elapsed(),
        }
    };
    let human = one(false);
    let json = one(true);
    assert_eq!(human.code, json.code, "{}\n{}", human.stdout, json.stdout);
    let j: Value = serde_json::from_str(&json.stdout).expect("JSON on stdout");
    (human, j)
}

pub fn checks(j: &Value) -> Vec<&Value> {
    j["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| s["checks"].as_array().expect("checks"))
        .collect()
}

pub fn one<'a>(j: &'a Value, kind: &str, flow: &str, port: Option<u16>) -> &'a Value {
    let found: Vec<&Value> = checks(j)
        .into_iter()
        .filter(|c| c["kind"] == kind && c["flow"] == flow && port.is_none_or(|p| c["port"] == p))
        .collect();
    match found.as_slice() {
        [c] => c,
        _ => panic!("expected one {kind} check for {flow} {port:?}: {found:#?}"),
    }
}

/// The remedies, as JSON gives them and as the human report lists them.
pub fn remedies(human: &str, j: &Value) -> Vec<String> {
    let from_json: Vec<String> = j["remedies"]
        .as_array()
        .expect("remedies")
        .iter()
        .map(|r| r.as_str().expect("text").to_string())
        .collect();
    let from_text: Vec<String> = human
        .split("\nremedies:\n")
        .nth(1)
        .unwrap_or("")
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.trim().split_once(". ").map_or("", |x| x.1).to_string())
        .collect();
    assert_eq!(from_json, from_text, "{human}");
    from_json
}
