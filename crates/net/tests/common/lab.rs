//! A three-namespace lab, created by the test and removed when it is dropped (also when the
//! test fails): `dev` (the device's network, 10.20.0.33 and .34), `fw` (a router whose
//! nftables ruleset the test writes, and whose conntrack timeouts it may shorten) and `srv`
//! (the far side, 198.51.100.0/24, addresses added per test). Nothing touches the machine's
//! own namespace: the namespaces and veth pairs come from `portolan-testkit`, and rules are
//! loaded only into `fw`.

use portolan_testkit::netns::{ip_in, must_in, run_in, Net};

pub struct Lab {
    pub dev: String,
    pub fw: String,
    pub srv: String,
    _net: Net,
}

impl Lab {
    /// Builds the lab; the test fails when this machine cannot (the kit's skip policy).
    pub fn new() -> Lab {
        let mut net = Net::new();
        let (d, f, s) = (net.ns("dev"), net.ns("fw"), net.ns("srv"));
        net.veth(&d, "eth0", &f, "lan0");
        net.veth(&f, "wan0", &s, "eth0");
        for (ns, cmds) in [
            (
                &d,
                vec![
                    vec!["addr", "add", "10.20.0.33/24", "dev", "eth0"],
                    vec!["addr", "add", "10.20.0.34/24", "dev", "eth0"],
                    vec!["addr", "add", "10.20.0.35/24", "dev", "eth0"],
                    vec!["route", "add", "default", "via", "10.20.0.1"],
                ],
            ),
            (
                &f,
                vec![
                    vec!["addr", "add", "10.20.0.1/24", "dev", "lan0"],
                    vec!["addr", "add", "198.51.100.1/24", "dev", "wan0"],
                ],
            ),
            (
                &s,
                vec![
                    vec!["addr", "add", "198.51.100.7/24", "dev", "eth0"],
                    vec!["route", "add", "default", "via", "198.51.100.1"],
                ],
            ),
        ] {
            for c in cmds {
                ip_in(ns, &c);
            }
        }
        must_in(&f, &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None);
        // Addresses appear at once ("nodad" is only for IPv6); nothing else to wait for.
        Lab {
            dev: d,
            fw: f,
            srv: s,
            _net: net,
        }
    }

    /// Adds addresses (host /32s in 198.51.100.0/24) to the far side.
    pub fn srv_addresses(&self, addrs: &[&str]) {
        for a in addrs {
            ip_in(
                &self.srv,
                &["addr", "add", &format!("{a}/32"), "dev", "eth0"],
            );
        }
    }

    /// Loads the firewall's forward chain: established traffic, then `blocks` (nft statements,
    /// one per line), then everything from the device side; the rest is dropped.
    pub fn firewall(&self, blocks: &[&str]) {
        let rules = format!(
            "table inet lab {{\n  chain forward {{\n    type filter hook forward priority 0; policy drop;\n    ct state established,related accept\n    ct state invalid drop\n{}\n    iifname \"lan0\" accept\n  }}\n}}\n",
            blocks.iter().map(|b| format!("    {b}\n")).collect::<String>()
        );
        let _ = run_in(&self.fw, &["nft", "delete", "table", "inet", "lab"], None);
        if let Err(e) = run_in(&self.fw, &["nft", "-f", "-"], Some(&rules)) {
            panic!("loading the lab's firewall rules failed: {e}");
        }
    }

    /// Sets a conntrack sysctl in the firewall namespace (e.g. `nf_conntrack_udp_timeout`).
    pub fn conntrack(&self, key: &str, value: u32) {
        must_in(
            &self.fw,
            &["sysctl", "-qw", &format!("net.netfilter.{key}={value}")],
            None,
        );
    }
}
