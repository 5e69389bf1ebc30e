//! The lab for `probe_verdicts.rs`: three namespaces — `dev` (the device, 10.20.0.33), `fw`
//! (a router whose nftables forward chain the test writes, ICMP rate limit off), `srv`
//! (198.51.100.0/24: dnsmasq, socat listeners, `openssl s_server` for TLS and DTLS) — and
//! `/etc/netns/<dev>/resolv.conf`, all removed when the lab is dropped; and the helpers that
//! run `portolan probe` in it and read its two outputs.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn must(args: &[&str]) {
    if let Err(e) = run(args) {
        panic!("lab setup failed: {e}");
    }
}

pub struct Lab {
    pub dev: String,
    pub fw: String,
    pub srv: String,
    pub dir: tempfile::TempDir,
    pub children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.dev, &self.fw, &self.srv] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.dev));
    }
}

impl Lab {
    pub fn new() -> Option<Lab> {
        let tag = format!("{}-{:04x}", std::process::id(), portolan_net::nonce::u16());
        let dev = format!("ptv-{tag}-dev");
        if let Err(e) = run(&["ip", "netns", "add", &dev]) {
            eprintln!("SKIPPED (LOUDLY): cannot create network namespaces here: {e}");
            return None;
        }
        let lab = Lab {
            dev,
            fw: format!("ptv-{tag}-fw"),
            srv: format!("ptv-{tag}-srv"),
            dir: tempfile::tempdir().expect("temporary folder"),
            children: Vec::new(),
        };
        let (d, f, s) = (lab.dev.as_str(), lab.fw.as_str(), lab.srv.as_str());
        must(&["ip", "netns", "add", f]);
        must(&["ip", "netns", "add", s]);
        must(&[
            "ip", "-n", d, "link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns",
            f,
        ]);
        must(&[
            "ip", "-n", f, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns",
            s,
        ]);
        let setup: [(&str, &[&[&str]]); 3] = [
            (
                d,
                &[
                    &["addr", "add", "10.20.0.33/24", "dev", "eth0"],
                    &["link", "set", "lo", "up"],
                    &["link", "set", "eth0", "up"],
                    &["route", "add", "default", "via", "10.20.0.1"],
                ],
            ),
            (
                f,
                &[
                    &["addr", "add", "10.20.0.1/24", "dev", "lan0"],
                    &["addr", "add", "198.51.100.1/24", "dev", "wan0"],
                    &["link", "set", "lo", "up"],
                    &["link", "set", "lan0", "up"],
                    &["link", "set", "wan0", "up"],
                ],
            ),
            (
                s,
                &[
                    &["addr", "add", "198.51.100.7/24", "dev", "eth0"],
                    &["link", "set", "lo", "up"],
                    &["link", "set", "eth0", "up"],
                    &["route", "add", "default", "via", "198.51.100.1"],
                ],
            ),
        ];
        for (ns, cmds) in setup {
            for c in cmds {
                let mut args = vec!["ip", "-n", ns];
                args.extend_from_slice(c);
                must(&args);
            }
        }
        must(&[
            "ip",
            "netns",
            "exec",
            f,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        // The router answers every probe's packet with its ICMP error: the kernel's default
        // rate limit (one a second after a burst of six per destination) would turn the
        // second run's rejections into silence.
        must(&[
            "ip",
            "netns",
            "exec",
            f,
            "sysctl",
            "-qw",
            "net.ipv4.icmp_ratelimit=0",
        ]);
        lab.machine_resolver("198.51.100.53");
        Some(lab)
    }

    /// What `ip netns exec` shows the device namespace as its resolv.conf.
    pub fn machine_resolver(&self, addr: &str) {
        let d = Path::new("/etc/netns").join(&self.dev);
        std::fs::create_dir_all(&d).expect("/etc/netns/<dev>");
        std::fs::write(d.join("resolv.conf"), format!("nameserver {addr}\n")).expect("write");
    }

    pub fn srv_addresses(&self, addrs: &[&str]) {
        for a in addrs {
            must(&[
                "ip",
                "-n",
                &self.srv,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                "eth0",
            ]);
        }
    }

    /// A process in `srv`, stopped with the lab.
    pub fn spawn(&mut self, args: &[&str]) -> &mut Child {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.srv])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a lab process");
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
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
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.srv])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dnsmasq");
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("started") {
                self.children.push(child);
                return;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("dnsmasq exited ({status}): {err}\n{text}");
            }
            if start.elapsed() > Duration::from_secs(10) {
                self.children.push(child);
                panic!("dnsmasq did not start:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
            let start = Instant::now();
            while run(&[
                "ip",
                "netns",
                "exec",
                &self.srv,
                "socat",
                "-u",
                &format!("TCP:{l}"),
                "OPEN:/dev/null",
            ])
            .is_err()
            {
                assert!(start.elapsed() < Duration::from_secs(10), "socat on {l}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// A CA (`CN = ca`) and a leaf for `host` signed by it; returns (cert, key) paths.
    pub fn cert(&self, ca: &str, host: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let p = |n: &str| d.join(n).display().to_string();
        let (ca_key, ca_pem) = (p(&format!("{ca}.key")), p(&format!("{ca}.pem")));
        if !Path::new(&ca_pem).exists() {
            must(&[
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/CN={ca}"),
                "-keyout",
                &ca_key,
                "-out",
                &ca_pem,
            ]);
        }
        let (key, csr, pem) = (
            p(&format!("{host}.key")),
            p(&format!("{host}.csr")),
            p(&format!("{host}.pem")),
        );
        must(&[
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={host}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        must(&[
            "openssl",
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &pem,
        ]);
        (PathBuf::from(pem), PathBuf::from(key))
    }

    /// `openssl s_server` on `addr` (TLS, or DTLS 1.2 with `dtls`), ready when it says ACCEPT,
    /// stopped with the lab.
    pub fn openssl(&mut self, addr: &str, cert: &Path, key: &Path, dtls: bool) {
        let child = self.openssl_server(addr, cert, key, dtls);
        self.children.push(child);
    }

    /// [`Lab::openssl`], stopped by the caller.
    pub fn openssl_server(&self, addr: &str, cert: &Path, key: &Path, dtls: bool) -> Child {
        let (c, k) = (cert.display().to_string(), key.display().to_string());
        let mut args = vec![
            "openssl", "s_server", "-accept", addr, "-cert", &c, "-key", &k,
        ];
        if dtls {
            // -listen: every ClientHello gets a stateless HelloVerifyRequest (RFC 6347 §4.2.1)
            // until one comes back with its cookie, so the server answers each probe.
            args.extend(["-dtls1_2", "-listen"]);
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.srv])
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ACCEPT") {
                    let _ = tx.send(());
                }
            }
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "openssl s_server did not start on {addr}"
        );
        child
    }

    /// `fw`'s forward chain: established traffic, `blocks`, then everything from the device.
    pub fn firewall(&self, blocks: &[&str]) {
        let _ = run(&[
            "ip", "netns", "exec", &self.fw, "nft", "delete", "table", "inet", "lab",
        ]);
        let rules = format!(
            "table inet lab {{\n  chain forward {{\n    type filter hook forward priority 0; policy drop;\n    ct state established,related accept\n{}    iifname \"lan0\" accept\n  }}\n}}\n",
            blocks.iter().map(|b| format!("    {b}\n")).collect::<String>()
        );
        let path = self.dir.path().join("fw.nft");
        std::fs::write(&path, rules).expect("write ruleset");
        must(&[
            "ip",
            "netns",
            "exec",
            &self.fw,
            "nft",
            "-f",
            &path.display().to_string(),
        ]);
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
            "600",
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
