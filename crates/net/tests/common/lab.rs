//! A three-namespace lab, created by the test and removed when it is dropped (also when the
//! test fails): `dev` (the device's network, 10.20.0.33 and .34), `fw` (a router whose
//! nftables ruleset the test writes, and whose conntrack timeouts it may shorten) and `srv`
//! (the far side, 198.51.100.0/24, addresses added per test). Nothing touches the machine's
//! own namespace: veth pairs are created directly inside the lab's namespaces, and rules are
//! loaded only into `fw`.

use std::process::Command;

pub struct Lab {
    pub dev: String,
    pub fw: String,
    pub srv: String,
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
        panic!("lab setup failed: {e}");
    }
}

impl Lab {
    /// Builds the lab, or says loudly why this kernel cannot and returns `None`.
    pub fn new() -> Option<Lab> {
        let tag = format!("{}-{:04x}", std::process::id(), portolan_net::nonce::u16());
        let lab = Lab {
            dev: format!("ptn-{tag}-dev"),
            fw: format!("ptn-{tag}-fw"),
            srv: format!("ptn-{tag}-srv"),
        };
        if let Err(e) = run(&["ip", "netns", "add", &lab.dev]) {
            eprintln!("SKIPPED (LOUDLY): cannot create network namespaces here: {e}");
            return None;
        }
        must(&["ip", "netns", "add", &lab.fw]);
        must(&["ip", "netns", "add", &lab.srv]);
        let (d, f, s) = (lab.dev.as_str(), lab.fw.as_str(), lab.srv.as_str());
        must(&[
            "ip", "-n", d, "link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns",
            f,
        ]);
        must(&[
            "ip", "-n", f, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns",
            s,
        ]);
        for (ns, cmds) in [
            (
                d,
                vec![
                    vec!["addr", "add", "10.20.0.33/24", "dev", "eth0"],
                    vec!["addr", "add", "10.20.0.34/24", "dev", "eth0"],
                    vec!["addr", "add", "10.20.0.35/24", "dev", "eth0"],
                    vec!["link", "set", "lo", "up"],
                    vec!["link", "set", "eth0", "up"],
                    vec!["route", "add", "default", "via", "10.20.0.1"],
                ],
            ),
            (
                f,
                vec![
                    vec!["addr", "add", "10.20.0.1/24", "dev", "lan0"],
                    vec!["addr", "add", "198.51.100.1/24", "dev", "wan0"],
                    vec!["link", "set", "lo", "up"],
                    vec!["link", "set", "lan0", "up"],
                    vec!["link", "set", "wan0", "up"],
                ],
            ),
            (
                s,
                vec![
                    vec!["addr", "add", "198.51.100.7/24", "dev", "eth0"],
                    vec!["link", "set", "lo", "up"],
                    vec!["link", "set", "eth0", "up"],
                    vec!["route", "add", "default", "via", "198.51.100.1"],
                ],
            ),
        ] {
            for c in cmds {
                let mut args = vec!["ip", "-n", ns];
                args.extend(c);
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
        // Addresses appear at once ("nodad" is only for IPv6); nothing else to wait for.
        Some(lab)
    }

    /// Adds addresses (host /32s in 198.51.100.0/24) to the far side.
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

    /// Loads the firewall's forward chain: established traffic, then `blocks` (nft statements,
    /// one per line), then everything from the device side; the rest is dropped.
    pub fn firewall(&self, blocks: &[&str]) {
        let rules = format!(
            "table inet lab {{\n  chain forward {{\n    type filter hook forward priority 0; policy drop;\n    ct state established,related accept\n    ct state invalid drop\n{}\n    iifname \"lan0\" accept\n  }}\n}}\n",
            blocks.iter().map(|b| format!("    {b}\n")).collect::<String>()
        );
        let _ = run(&[
            "ip", "netns", "exec", &self.fw, "nft", "delete", "table", "inet", "lab",
        ]);
        let path = std::env::temp_dir().join(format!("{}.nft", self.fw));
        std::fs::write(&path, rules).expect("write ruleset");
        let r = run(&[
            "ip",
            "netns",
            "exec",
            &self.fw,
            "nft",
            "-f",
            &path.display().to_string(),
        ]);
        let _ = std::fs::remove_file(&path);
        if let Err(e) = r {
            panic!("loading the lab's firewall rules failed: {e}");
        }
    }

    /// Sets a conntrack sysctl in the firewall namespace (e.g. `nf_conntrack_udp_timeout`).
    pub fn conntrack(&self, key: &str, value: u32) {
        must(&[
            "ip",
            "netns",
            "exec",
            &self.fw,
            "sysctl",
            "-qw",
            &format!("net.netfilter.{key}={value}"),
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.dev, &self.fw, &self.srv] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}
