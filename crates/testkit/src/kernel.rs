//! The kernel tests' turn and their one skip policy (see the crate's documentation).

use std::sync::{Mutex, MutexGuard};

use crate::cmd;
use crate::netns::{unique_prefix, Netns};

static KERNEL: Mutex<()> = Mutex::new(());

/// Kernel tests of one binary take turns: they share two cores, the xtables lock and the
/// machine's conntrack and ICMP limits. Hold the guard for the whole test.
pub fn turn() -> MutexGuard<'static, ()> {
    // A test that panicked while holding it leaves nothing to repair: take it anyway.
    KERNEL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The effective user id, from `/proc/self/status`.
fn euid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// What this kernel lacks for kernel tests, if anything: network namespaces, or nftables
/// inside one. `Err` when the cause is not the kernel (not root, `ip` or `nft` missing): such
/// a machine fails the tests rather than skipping them.
pub fn lacks() -> Result<Option<String>, String> {
    let uid = euid();
    if uid != Some(0) {
        return Err(format!(
            "kernel tests need root (effective uid {}): network namespaces and nftables need \
             CAP_SYS_ADMIN and CAP_NET_ADMIN",
            uid.map_or("unknown".into(), |u| u.to_string())
        ));
    }
    require_tools_checked(&["ip", "nft"])?;
    let ns = match Netns::try_named(&format!("{}-check", unique_prefix())) {
        Ok(ns) => ns,
        Err(e) => return Ok(Some(format!("network namespaces ({e})"))),
    };
    if let Err(e) = ns.run(&["nft", "list", "ruleset"], None) {
        return Ok(Some(format!("nftables inside a namespace ({e})")));
    }
    Ok(None)
}

/// The tools of `tools` that cannot be run, each with its Debian package.
pub fn missing_tools(tools: &[&str]) -> Vec<String> {
    tools
        .iter()
        .filter(|t| {
            let probe = if **t == "ip" { "-V" } else { "--version" };
            cmd::output(cmd::command(&[t, probe]), None).is_err()
        })
        .map(|t| format!("`{t}` (Debian package {})", package(t)))
        .collect()
}

/// `Err` naming the tools of `tools` that are not installed (with their packages).
pub fn require_tools_checked(tools: &[&str]) -> Result<(), String> {
    let missing = missing_tools(tools);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing {}; run ./scripts/setup.sh",
            missing.join(", ")
        ))
    }
}

/// Panics — the test fails — when a tool it needs is not installed: a missing tool is a
/// set-up to fix, never a reason to skip.
pub fn require_tools(tools: &[&str]) {
    if let Err(e) = require_tools_checked(tools) {
        panic!("KERNEL TEST CANNOT RUN: {e}");
    }
}

fn package(tool: &str) -> &'static str {
    match tool {
        "ip" => "iproute2",
        "nft" => "nftables",
        "dnsmasq" => "dnsmasq-base",
        "tcpdump" => "tcpdump",
        "iptables" | "iptables-restore" | "ip6tables-restore" => "iptables",
        "ipset" => "ipset",
        "socat" => "socat",
        "openssl" => "openssl",
        "nmap" => "nmap",
        "snmpd" => "snmpd",
        "chronyd" => "chrony",
        "ss" => "iproute2",
        _ => "?",
    }
}

/// The one gate of a kernel test: `true` when it can run here; `false`, with the skip banner
/// on standard error, when this kernel lacks namespaces or nftables inside one; a panic (the
/// test fails) when the cause is not the kernel (not root, a tool missing).
pub fn runs() -> bool {
    match lacks() {
        Err(e) => panic!("KERNEL TEST CANNOT RUN: {e}"),
        Ok(Some(why)) => {
            eprintln!("{}", skip_banner(&why));
            false
        }
        Ok(None) => true,
    }
}

/// The banner a skipping binary prints once, before its trials are reported as ignored.
pub fn skip_banner(why: &str) -> String {
    let rule = "=".repeat(72);
    format!(
        "\n{rule}\nKERNEL TESTS SKIPPED: this kernel lacks {why}.\nEvery kernel trial below \
         is reported as ignored; on a kernel with network namespaces and nf_tables they run.\n\
         {rule}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_with_its_package() {
        assert_eq!(
            missing_tools(&["portolan-no-such-tool"]),
            ["`portolan-no-such-tool` (Debian package ?)"]
        );
        assert!(missing_tools(&["sh"]).is_empty());
    }

    #[test]
    fn the_banner_says_what_is_lacking() {
        let b = skip_banner("nftables inside a namespace");
        assert!(b.contains("KERNEL TESTS SKIPPED: this kernel lacks nftables inside a namespace."));
    }
}
