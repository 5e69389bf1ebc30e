//! Network namespaces of a test, and the processes it starts in them.
//!
//! A [`Netns`] is created with `ip netns add` under a unique name (`pl<pid><hex>-<role>`: the
//! lab's convention, so a person sees whose it is and the lab's runner finds leftovers) with
//! its loopback up, and removed when dropped — on success and when the test panics. A [`Net`]
//! holds the namespaces of one topology under one prefix and joins them with veth pairs made
//! inside the namespaces, so nothing is ever created in, or loaded into, the machine's own
//! namespace. [`Procs`] stops the processes a test started when it is dropped; declare it
//! before the namespaces so that it drops first.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cmd::{self, Output};

/// A prefix no other namespace shares: `pl<pid><4 hex>`.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = (u64::from(nanos) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) & 0xffff;
    format!("pl{}{mixed:04x}", std::process::id())
}

/// A command running `args` (program first) inside namespace `ns` (`ip netns exec`).
pub fn command_in(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

/// Runs `args` inside `ns` with `stdin`; its standard output, or the command line and its
/// standard error.
pub fn run_in(ns: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    cmd::run_cmd(command_in(ns, args), stdin)
}

/// [`run_in`], panicking with the command line, the namespace's name and standard error.
pub fn must_in(ns: &str, args: &[&str], stdin: Option<&str>) -> String {
    run_in(ns, args, stdin).unwrap_or_else(|e| panic!("in {ns}: {e}"))
}

/// `ip -n NS ARGS`, panicking when it fails.
pub fn ip_in(ns: &str, args: &[&str]) {
    let mut all = vec!["ip", "-n", ns];
    all.extend_from_slice(args);
    cmd::must(&all);
}

/// [`Netns::load_iptables`] in namespace `ns`.
pub fn restore_iptables(ns: &str, ipset: &str, v4: &str, v6: &str) {
    for (args, text) in [
        (&["ipset", "restore", "-exist"][..], ipset),
        (&["iptables-restore", "-w"][..], v4),
        (&["ip6tables-restore", "-w"][..], v6),
    ] {
        must_in(ns, args, Some(text));
    }
}

/// The namespaces that exist now (`ip netns list`), by name.
pub fn list() -> Vec<String> {
    cmd::run(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// One network namespace, removed when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// A namespace named `<unique prefix>-<role>`; the test fails (a panic naming what is
    /// missing) when it cannot be created — see the crate's skip policy.
    pub fn new(role: &str) -> Netns {
        Netns::named(&format!("{}-{role}", unique_prefix()))
    }

    /// A namespace of exactly this name; panics when it cannot be created.
    pub fn named(name: &str) -> Netns {
        Netns::try_named(name).unwrap_or_else(|e| {
            panic!(
                "KERNEL TEST CANNOT RUN: {e}\n(kernel tests need root, iproute2 and a kernel \
                 with network namespaces; CI runs them as root)"
            )
        })
    }

    /// A namespace of this name with its loopback up, or why not.
    pub fn try_named(name: &str) -> Result<Netns, String> {
        cmd::run(&["ip", "netns", "add", name])?;
        // From here on dropping removes it.
        let ns = Netns {
            name: name.to_string(),
        };
        cmd::run(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command running `args` (program first) inside this namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        command_in(&self.name, args)
    }

    /// Runs `args` inside with `stdin`; `Err` only when the program cannot start.
    pub fn output(&self, args: &[&str], stdin: Option<&str>) -> Result<Output, String> {
        cmd::output(self.command(args), stdin)
    }

    /// Runs `args` inside; its standard output, or the command line and its standard error.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        run_in(&self.name, args, stdin)
    }

    /// [`Netns::run`], panicking when it fails.
    pub fn must(&self, args: &[&str], stdin: Option<&str>) -> String {
        must_in(&self.name, args, stdin)
    }

    /// `ip -n NAME ARGS`, panicking when it fails.
    pub fn ip(&self, args: &[&str]) {
        ip_in(&self.name, args);
    }

    /// `sysctl -qw KEY=VALUE` inside, for each setting.
    pub fn sysctl(&self, settings: &[&str]) {
        for s in settings {
            self.must(&["sysctl", "-qw", s], None);
        }
    }

    /// Loads an nftables ruleset (`nft -f -`) inside, panicking with nft's message.
    pub fn load_nft(&self, ruleset: &str) {
        self.must(&["nft", "-f", "-"], Some(ruleset));
    }

    /// Loads an iptables back end's three parts inside: `ipset restore -exist`, then
    /// `iptables-restore -w` and `ip6tables-restore -w`; panics naming the part that fails.
    pub fn load_iptables(&self, ipset: &str, v4: &str, v6: &str) {
        restore_iptables(&self.name, ipset, v4, v6);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(&["ip", "netns", "del", &self.name]) {
            eprintln!("portolan-testkit: cannot remove namespace: {e}");
        }
    }
}

impl AsRef<str> for Netns {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// The namespaces of one topology under one prefix (`<prefix>-<role>`), removed together.
#[derive(Debug)]
pub struct Net {
    prefix: String,
    spaces: Vec<Netns>,
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl Net {
    pub fn new() -> Net {
        Net {
            prefix: unique_prefix(),
            spaces: Vec::new(),
        }
    }

    /// Creates the namespace `<prefix>-<role>` and returns its name.
    pub fn ns(&mut self, role: &str) -> String {
        let ns = Netns::named(&format!("{}-{role}", self.prefix));
        let name = ns.name().to_string();
        self.spaces.push(ns);
        name
    }

    /// The namespaces created so far, in order.
    pub fn names(&self) -> Vec<&str> {
        self.spaces.iter().map(Netns::name).collect()
    }

    /// A veth pair made inside namespace `a` (`a_if`) with its peer moved to `b` (`b_if`),
    /// both ends up.
    pub fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) {
        veth(a, a_if, b, b_if);
    }
}

/// A veth pair made inside namespace `a` (`a_if`) with its peer in `b` (`b_if`), both up.
pub fn veth(a: &str, a_if: &str, b: &str, b_if: &str) {
    ip_in(
        a,
        &[
            "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
        ],
    );
    ip_in(a, &["link", "set", a_if, "up"]);
    ip_in(b, &["link", "set", b_if, "up"]);
}

/// Processes a test started, killed and reaped when dropped.
#[derive(Debug, Default)]
pub struct Procs {
    children: Vec<Child>,
}

impl Procs {
    pub fn new() -> Procs {
        Procs::default()
    }

    /// Takes `child` into care; returns it for the caller to read its pipes.
    pub fn push(&mut self, child: Child) -> &mut Child {
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Starts `cmd`, taken into care; panics naming the command when it cannot start.
    pub fn spawn(&mut self, mut cmd: Command) -> &mut Child {
        let shown = cmd::show(&cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
        self.push(child)
    }

    /// Stops every process now.
    pub fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `ready` every `every` until it holds; panics naming `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, every: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// Starts `cmd` (a daemon logging to `log`; no input, standard output discarded, standard
/// error kept for the failure message) and waits until the log holds `ready`; panics with
/// the log when the process exits first or `limit` passes. The process is `procs`'.
pub fn start_logged(
    procs: &mut Procs,
    mut cmd: Command,
    log: &std::path::Path,
    ready: &str,
    limit: Duration,
) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let shown = cmd::show(&cmd);
    let child = procs.spawn(cmd);
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(ready) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("{shown} exited ({status}): {err}\n{text}");
        }
        assert!(
            start.elapsed() < limit,
            "{shown} did not say `{ready}` within {limit:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_distinct_and_carry_the_pid() {
        let (a, b) = (unique_prefix(), unique_prefix());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("pl{}", std::process::id())), "{a}");
        assert_eq!(a.len(), format!("pl{}", std::process::id()).len() + 4);
    }

    #[test]
    fn commands_enter_the_namespace() {
        let c = command_in("x", &["nft", "-f", "-"]);
        assert_eq!(cmd::show(&c), "ip netns exec x nft -f -");
    }
}
