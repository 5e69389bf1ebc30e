//! The nftables output as a value — its sets, maps, chains and the rules in them — and its
//! rendering for `nft -f` ([`fmt::Display`]): the header, the DNS-filled sets, the flush, and
//! the table in an order `nft -f` accepts in one transaction.

use std::fmt;

use super::parts::addr_type;
use super::TABLE;
use crate::names::Family;

/// Everything one `nft -f` file holds.
pub(super) struct Ruleset {
    /// The site's name, checked.
    pub(super) site: String,
    /// Comment lines after the title: what is documented but not enforced, where DHCP is
    /// admitted from any MAC.
    pub(super) notes: Vec<String>,
    /// The DNS-filled sets' default element timeout, in seconds.
    pub(super) dns_timeout: u64,
    /// Sets the DNS server fills: declared, never flushed.
    pub(super) dns_sets: Vec<Set>,
    /// Sets of static peer prefixes: declared, flushed and refilled.
    pub(super) static_sets: Vec<Set>,
    /// The regular chains (zones, classes, groups' drops), in order.
    pub(super) chains: Vec<Chain>,
    /// The verdict maps that jump to them, by name.
    pub(super) maps: Vec<Map>,
    /// The base chains (`forward`, `input`) that look the maps up.
    pub(super) hooks: Vec<Chain>,
    /// `ct timeout` objects (`--ct-timeouts`), by name: their bodies.
    pub(super) ct_timeouts: Vec<(String, String)>,
}

impl Ruleset {
    /// About the length of the rendered text: the lines it holds, each with room for its
    /// indentation and punctuation (a little over, so that the buffer is not grown).
    pub(super) fn size_hint(&self) -> usize {
        let lines = |v: &[String]| v.iter().map(|l| l.len() + 16).sum::<usize>();
        let sets = |v: &[Set]| v.iter().map(|s| 256 + lines(&s.elements)).sum::<usize>();
        let chains = |v: &[Chain]| v.iter().map(|c| 256 + lines(&c.rules)).sum::<usize>();
        4096 + lines(&self.notes)
            + sets(&self.dns_sets)
            + sets(&self.static_sets)
            + chains(&self.chains)
            + chains(&self.hooks)
            + self
                .maps
                .iter()
                .map(|m| 256 + lines(&m.elements))
                .sum::<usize>()
            + self
                .ct_timeouts
                .iter()
                .map(|(n, b)| 64 + n.len() + b.len())
                .sum::<usize>()
    }
}

/// A named set of addresses.
pub(super) struct Set {
    pub(super) name: String,
    pub(super) fam: Family,
    /// `device . peer` pairs (`ipv4_addr . ipv4_addr`), for `enforce`; else addresses.
    pub(super) pair: bool,
    /// With `pair`: `device . peer . port` (`. inet_service`), the port an SRV record gave.
    pub(super) port: bool,
    /// `198.51.100.0/24`, or `192.0.2.1 timeout 300s` for a DNS-filled one.
    pub(super) elements: Vec<String>,
}

impl Set {
    /// The set's key type: an address, or a `device . peer` pair.
    pub(super) fn key_type(&self) -> String {
        if self.pair && self.port {
            format!("{0} . {0} . inet_service", addr_type(self.fam))
        } else if self.pair {
            format!("{0} . {0}", addr_type(self.fam))
        } else {
            addr_type(self.fam).to_string()
        }
    }
}

/// A verdict map keyed by address.
pub(super) struct Map {
    pub(super) name: String,
    pub(super) fam: Family,
    /// Prefixes (an interval map), or single addresses (a hash map).
    pub(super) interval: bool,
    /// `10.20.0.33 : jump k_oscar_out`.
    pub(super) elements: Vec<String>,
}

/// A chain and its rules, each one nft statement line.
pub(super) struct Chain {
    pub(super) name: String,
    /// `type filter hook … policy …;` for a base chain.
    pub(super) hook: Option<&'static str>,
    pub(super) rules: Vec<String>,
}

impl Chain {
    pub(super) fn new(name: impl Into<String>, rules: Vec<String>) -> Chain {
        Chain {
            name: name.into(),
            hook: None,
            rules,
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\tchain {} {{", self.name)?;
        if let Some(h) = self.hook {
            writeln!(f, "\t\t{h}")?;
        }
        for r in &self.rules {
            writeln!(f, "\t\t{r}")?;
        }
        writeln!(f, "\t}}")
    }
}

impl fmt::Display for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "#!/usr/sbin/nft -f")?;
        writeln!(
            f,
            "# Portolan policy for site {}: generated, do not edit.",
            self.site
        )?;
        writeln!(
            f,
            "# Every rule's comment names the profile/flow row it enforces."
        )?;
        for n in &self.notes {
            writeln!(f, "{n}")?;
        }
        self.dns_part(f)?;
        self.flush_part(f)?;
        self.chains_part(f)?;
        self.hooks_part(f)
    }
}

impl Ruleset {
    /// 1. The table and the DNS-filled sets.
    fn dns_part(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n# 1. The table and the DNS-filled sets: declared, never flushed, so their elements survive a reload.")?;
        writeln!(f, "table {TABLE} {{")?;
        for s in &self.dns_sets {
            let ty = s.key_type();
            writeln!(
                f,
                "\tset {} {{\n\t\ttype {ty}\n\t\tflags timeout\n\t\ttimeout {}s\n\t}}",
                s.name, self.dns_timeout
            )?;
        }
        writeln!(f, "}}")?;
        for s in self.dns_sets.iter().filter(|s| !s.elements.is_empty()) {
            writeln!(
                f,
                "add element {TABLE} {} {{ {} }}",
                s.name,
                s.elements.join(", ")
            )?;
        }
        Ok(())
    }

    /// 2. The flush, then chains declared and static sets and maps emptied.
    fn flush_part(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n# 2. Every rule goes; chains are declared, static sets and maps emptied, all refilled below.")?;
        writeln!(f, "flush table {TABLE}")?;
        self.ct_timeouts_part(f)?;
        if self.static_sets.is_empty() && self.maps.is_empty() {
            return Ok(());
        }
        writeln!(f, "table {TABLE} {{")?;
        // A map's elements may only jump to chains that existed when the map was declared.
        for c in &self.chains {
            writeln!(f, "\tchain {} {{ }}", c.name)?;
        }
        for s in &self.static_sets {
            writeln!(
                f,
                "\tset {} {{ type {}; flags interval; }}",
                s.name,
                addr_type(s.fam)
            )?;
        }
        for m in &self.maps {
            let flags = if m.interval { " flags interval;" } else { "" };
            writeln!(
                f,
                "\tmap {} {{ type {} : verdict;{flags} }}",
                m.name,
                addr_type(m.fam)
            )?;
        }
        writeln!(f, "}}")?;
        for s in &self.static_sets {
            writeln!(f, "flush set {TABLE} {}", s.name)?;
        }
        for m in &self.maps {
            writeln!(f, "flush map {TABLE} {}", m.name)?;
        }
        Ok(())
    }

    /// The `ct timeout` objects, once the flush has removed the rules that used them: each
    /// declared (a no-op when it exists), deleted and declared again, so that a reload
    /// replaces an object whose timeout changed (re-adding an existing object leaves it as
    /// it was), in the same transaction.
    fn ct_timeouts_part(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, body) in &self.ct_timeouts {
            writeln!(f, "add ct timeout {TABLE} {name} {{ {body} }}")?;
            writeln!(f, "delete ct timeout {TABLE} {name}")?;
            writeln!(f, "add ct timeout {TABLE} {name} {{ {body} }}")?;
        }
        Ok(())
    }

    /// 3. Static sets and the regular chains.
    fn chains_part(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n# 3. Static sets, and the chains of zones, device classes and groups."
        )?;
        writeln!(f, "table {TABLE} {{")?;
        for s in &self.static_sets {
            writeln!(
                f,
                "\tset {} {{\n\t\ttype {}\n\t\tflags interval\n\t\telements = {{ {} }}\n\t}}",
                s.name,
                addr_type(s.fam),
                s.elements.join(", ")
            )?;
        }
        for c in &self.chains {
            write!(f, "{c}")?;
        }
        writeln!(f, "}}")
    }

    /// 4. The maps and the base chains.
    fn hooks_part(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n# 4. The maps that jump to those chains, and the hooks that look them up."
        )?;
        writeln!(f, "table {TABLE} {{")?;
        for m in &self.maps {
            let flags = if m.interval {
                "\t\tflags interval\n"
            } else {
                ""
            };
            writeln!(
                f,
                "\tmap {} {{\n\t\ttype {} : verdict\n{flags}\t\telements = {{ {} }}\n\t}}",
                m.name,
                addr_type(m.fam),
                m.elements.join(",\n\t\t\t")
            )?;
        }
        for c in &self.hooks {
            write!(f, "{c}")?;
        }
        writeln!(f, "}}")
    }
}

/// Prefix of every object `--target openwrt` declares inside fw4's table, so none can meet
/// one of fw4's own (`forward`, `input`, `drop_to_wan`, …).
pub const FW4_PREFIX: &str = "portolan_";

impl Ruleset {
    /// The ruleset as an include for OpenWrt's `table inet fw4` (fw4 reads
    /// `/etc/nftables.d/*.nft` inside that table): the same sets, maps and chains, every name
    /// prefixed with [`FW4_PREFIX`], in one table block (each regular chain declared empty
    /// first, so maps and jumps may name it). The base chains hook one priority before fw4's
    /// (`filter - 1`) with policy accept: they drop what the profiles do not allow for the
    /// devices and leave everything else, and what they accept, to fw4's own zones.
    pub(super) fn fw4_include(&self) -> String {
        use std::collections::BTreeSet;
        use std::fmt::Write as _;
        let names: BTreeSet<&str> = self
            .dns_sets
            .iter()
            .chain(&self.static_sets)
            .map(|s| s.name.as_str())
            .chain(self.maps.iter().map(|m| m.name.as_str()))
            .chain(
                self.chains
                    .iter()
                    .chain(&self.hooks)
                    .map(|c| c.name.as_str()),
            )
            .collect();
        let rename = |line: &str| -> String {
            let mut out = Vec::new();
            let mut prev = "";
            for tok in line.split(' ') {
                let core = tok.trim_end_matches([',', '}', ';']);
                let tail = &tok[core.len()..];
                let renamed = if let Some(n) = core.strip_prefix('@').filter(|n| names.contains(n))
                {
                    format!("@{FW4_PREFIX}{n}{tail}")
                } else if matches!(prev, "jump" | "goto") && names.contains(core) {
                    format!("{FW4_PREFIX}{core}{tail}")
                } else {
                    tok.to_string()
                };
                out.push(renamed);
                prev = tok;
            }
            out.join(" ")
        };
        let mut o = String::new();
        let _ = writeln!(o, "# Portolan policy for site {} as an fw4 include (/etc/nftables.d/): generated, do not edit.", self.site);
        let _ = writeln!(o, "# Every rule's comment names the profile/flow row it enforces. fw4 rebuilds its table on every");
        let _ = writeln!(o, "# reload: the name sets start empty again and dnsmasq refills them at the next lookup.");
        for n in &self.notes {
            let _ = writeln!(o, "{n}");
        }
        for c in &self.chains {
            let _ = writeln!(o, "chain {FW4_PREFIX}{} {{ }}", c.name);
        }
        for s in &self.dns_sets {
            let elements = if s.elements.is_empty() {
                String::new()
            } else {
                format!("\n\telements = {{ {} }}", s.elements.join(", "))
            };
            let _ = writeln!(
                o,
                "set {FW4_PREFIX}{} {{\n\ttype {}\n\tflags timeout\n\ttimeout {}s{elements}\n}}",
                s.name,
                s.key_type(),
                self.dns_timeout
            );
        }
        for s in &self.static_sets {
            let _ = writeln!(
                o,
                "set {FW4_PREFIX}{} {{\n\ttype {}\n\tflags interval\n\telements = {{ {} }}\n}}",
                s.name,
                addr_type(s.fam),
                s.elements.join(", ")
            );
        }
        let chain = |o: &mut String, c: &Chain, hook: Option<String>| {
            let _ = writeln!(o, "chain {FW4_PREFIX}{} {{", c.name);
            if let Some(h) = hook {
                let _ = writeln!(o, "\t{h}");
            }
            for r in &c.rules {
                let _ = writeln!(o, "\t{}", rename(r));
            }
            let _ = writeln!(o, "}}");
        };
        for c in &self.chains {
            chain(&mut o, c, None);
        }
        for m in &self.maps {
            let flags = if m.interval { "\tflags interval\n" } else { "" };
            let elements: Vec<String> = m.elements.iter().map(|e| rename(e)).collect();
            let _ = writeln!(
                o,
                "map {FW4_PREFIX}{} {{\n\ttype {} : verdict\n{flags}\telements = {{ {} }}\n}}",
                m.name,
                addr_type(m.fam),
                elements.join(",\n\t\t")
            );
        }
        for c in &self.hooks {
            let hook = c.hook.map(|h| {
                let h = h.replace("priority filter;", "priority filter - 1;");
                h.replace("policy drop;", "policy accept;")
            });
            // The unmatched log line ends Portolan's own forward chain, whose policy drops; here
            // the rest is fw4's, so it would log every other forwarded packet.
            let rules: Vec<String> = c
                .rules
                .iter()
                .filter(|r| !r.contains("log prefix \"portolan unmatched: \""))
                .cloned()
                .collect();
            chain(
                &mut o,
                &Chain {
                    name: c.name.clone(),
                    hook: None,
                    rules,
                },
                hook,
            );
        }
        o
    }
}
