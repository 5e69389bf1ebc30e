//! A two-namespace lab for the DHCP check: `dev` (the device's network, `eth0`, no address
//! unless the test adds one) and `srv` (the DHCP server's side, `lan0` 10.77.0.1/24), joined by
//! a veth pair created inside the lab's namespaces. [`DhcpLab::serve`] runs dnsmasq in `srv`,
//! DHCP only (`--port=0`), with its pid, lease and log files in the lab's own temporary folder.
//! Dropping the lab — also when the test fails — stops dnsmasq and removes both namespaces.
//! Nothing touches the machine's own namespace.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DhcpLab {
    pub dev: String,
    pub srv: String,
    dir: tempfile::TempDir,
    dnsmasq: Option<Child>,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = run(args) {
        panic!("DHCP lab setup failed: {e}");
    }
}

impl DhcpLab {
    /// Builds the lab, or says loudly why this kernel cannot and returns `None`.
    pub fn new() -> Option<DhcpLab> {
        let tag = format!("{}-{:04x}", std::process::id(), portolan_net::nonce::u16());
        let dev = format!("ptn-{tag}-dd");
        let srv = format!("ptn-{tag}-ds");
        let dir = tempfile::tempdir().expect("temporary folder");
        if let Err(e) = run(&["ip", "netns", "add", &dev]) {
            eprintln!("SKIPPED (LOUDLY): cannot create network namespaces here: {e}");
            return None;
        }
        // From here on a panic drops the lab, which removes what exists of it.
        let lab = DhcpLab {
            dev,
            srv,
            dir,
            dnsmasq: None,
        };
        let (d, s) = (lab.dev.as_str(), lab.srv.as_str());
        must(&["ip", "netns", "add", s]);
        must(&[
            "ip", "-n", d, "link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns",
            s,
        ]);
        must(&["ip", "-n", d, "link", "set", "lo", "up"]);
        must(&["ip", "-n", d, "link", "set", "eth0", "up"]);
        must(&["ip", "-n", s, "link", "set", "lo", "up"]);
        must(&["ip", "-n", s, "addr", "add", "10.77.0.1/24", "dev", "lan0"]);
        must(&["ip", "-n", s, "link", "set", "lan0", "up"]);
        Some(lab)
    }

    /// Gives the device side an address and a default route through the server side.
    pub fn configure_dev(&self, addr: &str) {
        must(&["ip", "-n", &self.dev, "addr", "add", addr, "dev", "eth0"]);
        must(&[
            "ip",
            "-n",
            &self.dev,
            "route",
            "add",
            "default",
            "via",
            "10.77.0.1",
        ]);
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("dnsmasq.log")
    }

    /// Starts dnsmasq on `lan0` with `dhcp_args` (`--dhcp-range=…`, `--dhcp-option=…`) and
    /// returns once its DHCP socket is bound.
    pub fn serve(&mut self, dhcp_args: &[&str]) {
        let dir = self.dir.path();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.srv, "dnsmasq"])
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=lan0",
                "--bind-interfaces",
                "--user=root",
                "--log-dhcp",
            ])
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .arg(format!(
                "--dhcp-leasefile={}",
                dir.join("dnsmasq.leases").display()
            ))
            .arg(format!("--log-facility={}", self.log().display()))
            .args(dhcp_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot start dnsmasq: {e}"),
        };
        self.dnsmasq = Some(child);
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            if log.contains("DHCP, sockets bound") {
                return;
            }
            if let Some(c) = self.dnsmasq.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("dnsmasq exited ({status}):\n{log}");
                }
            }
            if start.elapsed() > Duration::from_secs(5) {
                panic!("dnsmasq did not bind its DHCP socket within 5 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DhcpLab {
    fn drop(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.dev, &self.srv] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}
