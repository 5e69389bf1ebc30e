//! DNS in the lab: two dnsmasq processes (under `--dns enforce` the firewall's resolver is
//! `portolan enforce` instead: [`crate::lab`] starts it).
//!
//! - The *upstream* server, in the outside namespace, stands for the Internet's DNS: it
//!   answers every name the site's rules use (and a test name under each wildcard domain, and
//!   one name no profile lists) with the lab address that stands for it.
//! - The *firewall's resolver*, in the firewall namespace, is what the devices ask. It
//!   forwards to the upstream server and carries the `nftset=` lines of Portolan's dnsmasq
//!   back end unchanged, so the name sets are filled exactly as on a real firewall. (dnsmasq
//!   fills sets only from forwarded answers, never from its own `address=` lines: hence two
//!   servers.)

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::Where;
use crate::error::{Error, Result};
use crate::netns::Handle;
use crate::topology::Topology;
use crate::wire;

/// The upstream server's configuration.
pub fn upstream_conf(topo: &Topology, resolver: IpAddr) -> String {
    let mut s = String::from(
        "# Portolan lab: the upstream DNS server, answering the site's names with lab addresses.\n\
         no-resolv\nno-hosts\nbind-interfaces\nport=53\nlocal-ttl=300\n",
    );
    s.push_str(&format!("listen-address={resolver}\n"));
    for (name, addrs) in topo.dns_answers() {
        for a in addrs {
            s.push_str(&format!("address=/{name}/{a}\n"));
        }
    }
    s
}

/// The firewall resolver's configuration: forwarding, plus the emitted `nftset=` lines.
pub fn firewall_conf(topo: &Topology, resolver: IpAddr, emitted: &str) -> String {
    let mut s = String::from(
        "# Portolan lab: the firewall's resolver (forwards upstream; fills the nftables sets).\n\
         no-resolv\nno-hosts\nbind-interfaces\nport=53\ncache-size=0\n",
    );
    for sp in &topo.spaces {
        for a in &sp.fw_addrs {
            s.push_str(&format!("listen-address={}\n", a.addr()));
        }
    }
    s.push_str(&format!("server={resolver}\n"));
    s.push_str("# --- from `portolan compile --target dnsmasq` ---\n");
    s.push_str(emitted);
    s
}

/// Starts dnsmasq in a namespace with a configuration file; its log goes to `log`.
pub fn start(netns: &str, conf: &Path, log: &Path) -> Result<Child> {
    let logf = std::fs::File::create(log)
        .map_err(|e| Error::io(format!("cannot create {}", log.display()), e))?;
    let conf_arg = format!("--conf-file={}", conf.display());
    let mut cmd = Where::Netns(netns.to_string()).command(
        "dnsmasq",
        &["--no-daemon", "--log-queries", "--pid-file=", &conf_arg],
    );
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(logf);
    cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Unsupported("`ip` is not installed (Debian package iproute2)".into())
        } else {
            Error::io("cannot start dnsmasq", e)
        }
    })
}

/// Asks `server` for `name` from inside a namespace until it answers with `expect`.
pub fn wait_ready(
    handle: &Arc<Handle>,
    server: IpAddr,
    name: &str,
    expect: IpAddr,
    child: &mut Child,
    log: &Path,
) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(Error::Command {
                command: "dnsmasq".into(),
                detail: format!(
                    "exited ({status}): {}",
                    crate::command::first_lines(&text, 12)
                ),
            });
        }
        let got = ask(handle, server, name, expect.is_ipv4());
        if got.is_some_and(|a| a.contains(&expect)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    Err(Error::Command {
        command: "dnsmasq".into(),
        detail: format!(
            "did not answer {name} within 8 s: {}",
            crate::command::first_lines(&text, 12)
        ),
    })
}

/// Asks `server` for `name` (A when `v4`, else AAAA) once from inside a namespace; its
/// addresses, or `None` without an answer in 300 ms.
pub fn ask(handle: &Arc<Handle>, server: IpAddr, name: &str, v4: bool) -> Option<Vec<IpAddr>> {
    let h = handle.clone();
    let name = name.to_string();
    std::thread::spawn(move || -> Option<Vec<IpAddr>> {
        h.enter().ok()?;
        let sock = std::net::UdpSocket::bind(if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .ok()?;
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .ok()?;
        sock.connect((server, 53)).ok()?;
        let q = wire::dns_query(4242, &name, v4).ok()?;
        sock.send(&q).ok()?;
        let mut buf = [0u8; 2048];
        let n = sock.recv(&mut buf).ok()?;
        wire::dns_answers(4242, &buf[..n])
    })
    .join()
    .ok()
    .flatten()
}

/// Whether `server` answers `name` with `expect` within `wait` (asked every 100 ms).
pub fn wait_ready_at(
    handle: &Arc<Handle>,
    server: IpAddr,
    name: &str,
    expect: IpAddr,
    wait: Duration,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < wait {
        if ask(handle, server, name, expect.is_ipv4()).is_some_and(|a| a.contains(&expect)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
