//! The iptables output as a value — ipsets, the chains and rules of each family, the dispatch
//! rules of `PORTOLAN-FORWARD` and `PORTOLAN-INPUT`, dnsmasq's `ipset=` lines — and its
//! rendering ([`fmt::Display`]) as the four sections of the file.

use std::fmt;

use crate::names::{object, Family};

/// Everything the file holds.
pub(super) struct Ruleset {
    /// The site's name, checked.
    pub(super) site: String,
    /// Comment lines after the header: what is documented but not enforced, where DHCP is
    /// admitted from any MAC.
    pub(super) notes: Vec<String>,
    /// The name sets' default timeout, in seconds.
    pub(super) dns_timeout: u64,
    /// Sets DNS fills (`hash:ip`): created when missing, never flushed.
    pub(super) dns_sets: Vec<IpSet>,
    /// Static sets: refilled in a twin and swapped in.
    pub(super) static_sets: Vec<IpSet>,
    /// IPv4, then IPv6.
    pub(super) families: Vec<FamilyRules>,
    /// dnsmasq `ipset=` lines: the domains, and the sets their answers go to.
    pub(super) dns_lines: Vec<(Vec<String>, Vec<String>)>,
    /// `-m limit …` of the log rules.
    pub(super) limit: String,
}

/// A set of the output.
pub(super) struct IpSet {
    pub(super) name: String,
    /// `hash:net`, `hash:net,port` or `hash:ip`.
    pub(super) ty: &'static str,
    pub(super) fam: Family,
    pub(super) elements: Vec<String>,
}

/// The rules of one family's `filter` table.
pub(super) struct FamilyRules {
    pub(super) fam: Family,
    pub(super) table: Table,
    pub(super) dispatch: Dispatch,
}

/// The dispatch rules of one family, by the part of `PORTOLAN-FORWARD` / `PORTOLAN-INPUT` they
/// go to. `cast` and `dhcp` hold whole `-A` lines, the others what follows the chain name.
#[derive(Default)]
pub(super) struct Dispatch {
    pub(super) spoof: Vec<String>,
    pub(super) cast: Vec<String>,
    pub(super) out: Vec<String>,
    pub(super) inn: Vec<String>,
    pub(super) local: Vec<String>,
    pub(super) dhcp: Vec<String>,
    pub(super) drop_src: Vec<String>,
    pub(super) drop_dst: Vec<String>,
}

/// The user chains of one family, each with its `-A` lines.
#[derive(Default)]
pub(super) struct Table {
    /// Chains in order, each with its rules.
    pub(super) chains: Vec<(String, Vec<String>)>,
    /// Each name's last declared chain, by position: found by a scan from the end, a group's
    /// drop chain declared long before its rules made 100,000 groups compile in 15 s.
    index: rustc_hash::FxHashMap<String, usize>,
    /// (chain position, hash of a rule line) for every rule: a rule whose hash its chain has
    /// not seen is new without a scan of the chain (a class's drop chains hold a rule per
    /// group: scanned, 100,000 groups took 14 s).
    hashes: rustc_hash::FxHashSet<(usize, u64)>,
}

/// `-A CHAIN MATCHES -m comment --comment "C" -j TARGET`.
pub(super) fn line(chain: &str, matches: &str, comment: &str, target: &str) -> String {
    let sep = if matches.is_empty() { "" } else { " " };
    format!("-A {chain}{sep}{matches} -m comment --comment \"{comment}\" -j {target}")
}

/// Pushes a rule unless the list has it already: a scan of the list, counted
/// (`portolan_model::work`; `tests/backends/work.rs`).
pub(super) fn push(list: &mut Vec<String>, rule: String) {
    portolan_model::work::visit(list.len());
    if !list.contains(&rule) {
        list.push(rule);
    }
}

impl Table {
    pub(super) fn chain(&mut self, name: &str) {
        self.index.insert(name.to_string(), self.chains.len());
        self.chains.push((name.to_string(), Vec::new()));
    }

    /// Drops the chains without rules (they are not written).
    pub(super) fn retain_filled(&mut self) {
        self.chains.retain(|(_, rules)| !rules.is_empty());
        self.index = self
            .chains
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (c.clone(), i))
            .collect();
        self.hashes = self
            .chains
            .iter()
            .enumerate()
            .flat_map(|(i, (_, rules))| rules.iter().map(move |r| (i, line_hash(r))))
            .collect();
    }

    /// Appends a rule to the chain of that name last declared, once.
    pub(super) fn add(&mut self, chain: &str, matches: &str, comment: &str, target: &str) -> bool {
        let Some(&i) = self.index.get(chain) else {
            return false;
        };
        let Some((_, rules)) = self.chains.get_mut(i) else {
            return false;
        };
        let l = line(chain, matches, comment, target);
        // A hash the chain has seen may be the same rule: only then is the chain scanned.
        let seen = !self.hashes.insert((i, line_hash(&l)));
        portolan_model::work::visit(1 + if seen { rules.len() } else { 0 });
        if seen && rules.contains(&l) {
            return false;
        }
        rules.push(l);
        true
    }
}

/// A rule line's hash, for [`Table::add`].
fn line_hash(l: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(l)
}

/// The set a static set is refilled in before the swap.
pub(super) fn twin(name: &str) -> String {
    if name.len() <= 29 {
        format!("t_{name}")
    } else {
        object(&["t", name])
    }
}

impl fmt::Display for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# Portolan policy for site {} (iptables and ipset): generated, do not edit.",
            self.site
        )?;
        writeln!(
            f,
            "# Every rule's comment names the profile/flow row it enforces."
        )?;
        writeln!(f, "# Sections start at `#> NAME`; load them in this order:")?;
        writeln!(
            f,
            "#   sec() {{ awk -v s=\"#> $1\" '/^#> /{{on=($0==s);next}} on' THIS_FILE; }}"
        )?;
        writeln!(f, "#   sec ipset | ipset restore -exist && sec iptables | iptables-restore -w && sec ip6tables | ip6tables-restore -w")?;
        writeln!(
            f,
            "# The restore input replaces the whole filter table of each family."
        )?;
        for n in &self.notes {
            writeln!(f, "{n}")?;
        }
        self.ipset(f)?;
        for fr in &self.families {
            fr.render(f, &self.limit)?;
        }
        self.dnsmasq(f)
    }
}

impl Ruleset {
    /// The `ipset` section.
    fn ipset(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "#> ipset")?;
        writeln!(f, "# DNS-filled sets: created when missing, never flushed, so their elements survive a reload.")?;
        for s in &self.dns_sets {
            writeln!(
                f,
                "create {} {} family {} timeout {}",
                s.name,
                s.ty,
                s.fam.ipset(),
                self.dns_timeout
            )?;
            for e in &s.elements {
                writeln!(f, "add {} {e}", s.name)?;
            }
        }
        writeln!(
            f,
            "# Static sets: filled in a twin, then swapped in at once."
        )?;
        for s in &self.static_sets {
            let twin = twin(&s.name);
            let max = s.elements.len().max(65536);
            for n in [&s.name, &twin] {
                writeln!(
                    f,
                    "create {n} {} family {} maxelem {max}",
                    s.ty,
                    s.fam.ipset()
                )?;
            }
            writeln!(f, "flush {twin}")?;
            for e in &s.elements {
                writeln!(f, "add {twin} {e}")?;
            }
            writeln!(f, "swap {twin} {}", s.name)?;
            writeln!(f, "destroy {twin}")?;
        }
        Ok(())
    }

    /// The `dnsmasq` section.
    fn dnsmasq(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "#> dnsmasq")?;
        writeln!(
            f,
            "# For dnsmasq.conf: each address dnsmasq resolves for these names goes into the set."
        )?;
        writeln!(
            f,
            "# dnsmasq also matches the apex and every name below each domain listed."
        )?;
        for (domains, sets) in &self.dns_lines {
            writeln!(f, "ipset=/{}/{}", domains.join("/"), sets.join(","))?;
        }
        Ok(())
    }
}

impl FamilyRules {
    /// The `iptables` or `ip6tables` section.
    fn render(&self, f: &mut fmt::Formatter<'_>, limit: &str) -> fmt::Result {
        let (t, d) = (&self.table, &self.dispatch);
        let name = match self.fam {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        };
        writeln!(f, "#> {name}")?;
        writeln!(f, "*filter")?;
        writeln!(
            f,
            ":INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]"
        )?;
        writeln!(f, ":PORTOLAN-FORWARD - [0:0]\n:PORTOLAN-INPUT - [0:0]")?;
        for (c, _) in &t.chains {
            writeln!(f, ":{c} - [0:0]")?;
        }
        writeln!(
            f,
            "-A FORWARD -m comment --comment \"portolan\" -j PORTOLAN-FORWARD"
        )?;
        writeln!(
            f,
            "-A INPUT -m comment --comment \"portolan\" -j PORTOLAN-INPUT"
        )?;
        for r in &d.spoof {
            writeln!(f, "-A PORTOLAN-FORWARD {r}")?;
        }
        writeln!(f, "-A PORTOLAN-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \"return traffic\" -j ACCEPT")?;
        writeln!(f, "-A PORTOLAN-FORWARD -m conntrack --ctstate INVALID -m comment --comment \"invalid\" -j DROP")?;
        for r in &d.cast {
            writeln!(f, "{r}")?;
        }
        for r in d
            .out
            .iter()
            .chain(&d.inn)
            .chain(&d.drop_src)
            .chain(&d.drop_dst)
        {
            writeln!(f, "-A PORTOLAN-FORWARD {r}")?;
        }
        writeln!(f, "-A PORTOLAN-FORWARD {limit} -m comment --comment \"portolan unmatched\" -j LOG --log-prefix \"portolan unmatched: \" --log-level info")?;
        // The firewall's own packets to its own addresses come in on `lo`.
        if !d.spoof.is_empty() {
            writeln!(
                f,
                "-A PORTOLAN-INPUT -i lo -m comment --comment \"the firewall itself\" -j RETURN"
            )?;
        }
        for r in &d.spoof {
            writeln!(f, "-A PORTOLAN-INPUT {r}")?;
        }
        writeln!(f, "-A PORTOLAN-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \"return traffic\" -j ACCEPT")?;
        for r in &d.dhcp {
            writeln!(f, "{r}")?;
        }
        // As in nftables: IPv6 devices need neighbour discovery with the firewall (ARP's
        // role, which unlike ARP passes this table); on-link messages only (RFC 4861).
        if self.fam == Family::V6 && !d.drop_src.is_empty() {
            for t in [
                "neighbour-solicitation",
                "neighbour-advertisement",
                "router-solicitation",
            ] {
                writeln!(f, "-A PORTOLAN-INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m hl --hl-eq 255 -m comment --comment \"IPv6 neighbour discovery\" -j ACCEPT")?;
            }
        }
        for r in d.local.iter().chain(&d.drop_src) {
            writeln!(f, "-A PORTOLAN-INPUT {r}")?;
        }
        for r in t.chains.iter().flat_map(|(_, rules)| rules) {
            writeln!(f, "{r}")?;
        }
        writeln!(f, "COMMIT")
    }
}
