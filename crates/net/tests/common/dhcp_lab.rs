//! A two-namespace lab for the DHCP check: `dev` (the device's network, `eth0`, no address
//! unless the test adds one) and `srv` (the DHCP server's side, `lan0` 10.77.0.1/24), joined by
//! a veth pair created inside the lab's namespaces. [`DhcpLab::serve`] runs dnsmasq in `srv`,
//! DHCP only (`--port=0`), with its pid, lease and log files in the lab's own temporary folder.
//! Dropping the lab — also when the test fails — stops dnsmasq and removes both namespaces
//! (`portolan-testkit`). Nothing touches the machine's own namespace.

use std::path::PathBuf;
use std::time::Duration;

use portolan_testkit::netns::{command_in, ip_in, start_logged, Net, Procs};

pub struct DhcpLab {
    pub dev: String,
    pub srv: String,
    dir: tempfile::TempDir,
    /// Stopped before the namespaces go.
    dnsmasq: Procs,
    /// The DNS-only dnsmasq of [`DhcpLab::serve_dns`], stopped before the namespaces go.
    dns: Procs,
    _net: Net,
}

impl DhcpLab {
    /// Builds the lab; the test fails when this machine cannot (the kit's skip policy).
    pub fn new() -> DhcpLab {
        let mut net = Net::new();
        let (dev, srv) = (net.ns("dd"), net.ns("ds"));
        net.veth(&dev, "eth0", &srv, "lan0");
        ip_in(&srv, &["addr", "add", "10.77.0.1/24", "dev", "lan0"]);
        DhcpLab {
            dev,
            srv,
            dir: tempfile::tempdir().expect("temporary folder"),
            dnsmasq: Procs::new(),
            dns: Procs::new(),
            _net: net,
        }
    }

    /// Gives the device side an address and a default route through the server side.
    pub fn configure_dev(&self, addr: &str) {
        ip_in(&self.dev, &["addr", "add", addr, "dev", "eth0"]);
        ip_in(&self.dev, &["route", "add", "default", "via", "10.77.0.1"]);
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("dnsmasq.log")
    }

    /// Starts dnsmasq on `lan0` with `dhcp_args` (`--dhcp-range=…`, `--dhcp-option=…`) and
    /// returns once its DHCP socket is bound.
    pub fn serve(&mut self, dhcp_args: &[&str]) {
        let dir = self.dir.path();
        let mut cmd = command_in(
            &self.srv,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=lan0",
                "--bind-interfaces",
                "--user=root",
                "--log-dhcp",
            ],
        );
        cmd.arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .arg(format!(
                "--dhcp-leasefile={}",
                dir.join("dnsmasq.leases").display()
            ))
            .arg(format!("--log-facility={}", self.log().display()))
            .args(dhcp_args);
        let log = self.log();
        start_logged(
            &mut self.dnsmasq,
            cmd,
            &log,
            "DHCP, sockets bound",
            Duration::from_secs(5),
        );
    }

    pub fn dns_log(&self) -> PathBuf {
        self.dir.path().join("dnsmasq-dns.log")
    }

    /// Starts a second dnsmasq in `srv`, DNS only, on port 53 of `listen` (addresses of
    /// `lan0`), with `dns_args` (`--host-record=…`, `--local=…`); it asks no upstream server
    /// and reads no hosts file. Returns once it has read its configuration.
    pub fn serve_dns(&mut self, listen: &[&str], dns_args: &[&str], ready: &str) {
        let dir = self.dir.path();
        let mut cmd = command_in(
            &self.srv,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=53",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--log-queries",
            ],
        );
        for l in listen {
            cmd.arg(format!("--listen-address={l}"));
        }
        cmd.arg(format!(
            "--pid-file={}",
            dir.join("dnsmasq-dns.pid").display()
        ))
        .arg(format!("--log-facility={}", self.dns_log().display()))
        .args(dns_args);
        let log = self.dns_log();
        start_logged(&mut self.dns, cmd, &log, ready, Duration::from_secs(5));
    }
}
