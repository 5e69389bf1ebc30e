//! A site against a ruleset: every flow of every device group, then the excess.
//!
//! **Flows.** Each IR rule becomes packet classes: its device addresses and its peers (a
//! static prefix; a name: any address outside the site's zones that the site's DNS puts in
//! the name's set; this firewall: the input hook) with its protocol, ports, source ports and
//! ICMP type, entering on the interface of the sender's zone and leaving on the receiver's.
//! The first packet (ct state new) and the later ones (established) go the initiator's way,
//! replies (established) come back. A flow is **permitted** when every piece is accepted,
//! **blocked** when none is, **depends** when the outcome hinges on a set filled at run time
//! or on an expression outside the supported subset, and **partly** otherwise, with the
//! pieces that are not accepted. A hostname peer counts as permitted only through the
//! sets the site's DNS fills for that name (or a rule wider than the name), or, with
//! `--resolve` ([`DnsFills::current`]), when rules on static addresses admit every address
//! the name resolves to now; [`NameCheck`] says which.
//!
//! **Excess.** For each group, the widest classes the ruleset accepts for new connections
//! from its addresses (forwarded, and to this firewall) and to them (forwarded), minus what
//! its rules allow (interfaces and directions aside: the profile does not say which
//! interface), each with the rule that admits it.
//!
//! The module is cut along those two halves: [`flows`] turns each IR rule into classes and
//! judges them, [`excess`] looks for what the ruleset admits beyond the rules, and
//! [`describe`] puts a class into words for both.

use std::collections::BTreeMap;

use ipnet::IpNet;
use portolan_model::ir::Policy;
use serde::Serialize;

use crate::program::{Path, Program, RuleRef};
use crate::space::{Class, Iv};

mod describe;
mod excess;
mod flows;

pub use describe::{addr_value, describe};

/// Which sets the site's DNS fills, and for which names (from `nftset=` lines).
#[derive(Clone, Debug, Default)]
pub struct DnsFills {
    /// name or domain → (table, set, is IPv4)
    pub fills: BTreeMap<String, Vec<(String, String, bool)>>,
    /// `verify --resolve`: what each hostname resolves to now (or why it did not). A name
    /// whose rule matches static addresses rather than a set the DNS fills counts as
    /// permitted only when every address it resolves to now is permitted.
    pub current: BTreeMap<String, Result<Vec<std::net::IpAddr>, String>>,
}

impl DnsFills {
    /// Reads dnsmasq `nftset=/a/b/4#inet#table#set` lines (dnsmasq(8) `--nftset`) and
    /// `ipset=/a/b/set1,set2` lines (`--ipset`; an ipset's table is
    /// [`crate::iptables::IPSET_TABLE`], and its family is the set's own, so it is listed
    /// under both and only the lookups of its family find it).
    ///
    /// Of two lines naming the same domain, dnsmasq fills the first one's sets only (tried
    /// with dnsmasq 2.90: `--nftset=/a.test/…#s1 --nftset=/a.test/b.test/…#s2` leaves s2
    /// empty for a.test); a later line's sets are not counted for that domain.
    pub fn from_dnsmasq(text: &str) -> DnsFills {
        let mut d = DnsFills::default();
        // (is ipset, domain) → the line that names it first
        let mut first: BTreeMap<(bool, String), usize> = BTreeMap::new();
        let mut keep = |ipset: bool, name: &str, line: usize| {
            *first.entry((ipset, name.to_string())).or_insert(line) == line
        };
        for (at, l) in text.lines().enumerate() {
            if let Some(rest) = l.trim().strip_prefix("ipset=/") {
                let Some((domains, sets)) = rest.rsplit_once('/') else {
                    continue;
                };
                for set in sets.split(',').filter(|s| !s.is_empty()) {
                    for name in domains.split('/').filter(|n| !n.is_empty()) {
                        if !keep(true, name, at) {
                            continue;
                        }
                        for v4 in [true, false] {
                            d.fills.entry(name.to_string()).or_default().push((
                                crate::iptables::IPSET_TABLE.to_string(),
                                set.to_string(),
                                v4,
                            ));
                        }
                    }
                }
                continue;
            }
            let Some(rest) = l.trim().strip_prefix("nftset=/") else {
                continue;
            };
            let Some((domains, targets)) = rest.rsplit_once('/') else {
                continue;
            };
            for target in targets.split(',') {
                let parts: Vec<&str> = target.split('#').collect();
                let (v4, table, set) = match parts.as_slice() {
                    [f, _fam, t, s] => (*f != "6", *t, *s),
                    [_fam, t, s] => (true, *t, *s),
                    _ => continue,
                };
                for name in domains.split('/').filter(|n| !n.is_empty()) {
                    if !keep(false, name, at) {
                        continue;
                    }
                    d.fills.entry(name.to_string()).or_default().push((
                        table.to_string(),
                        set.to_string(),
                        v4,
                    ));
                }
            }
        }
        d
    }

    /// The sets filled for `name`: those of the longest listed domain that is the name or a
    /// parent of it (dnsmasq matches a domain and its subdomains, and fills the sets of the
    /// longest match only, once among `ipset=` lines and once among `nftset=` lines), of the
    /// family asked.
    fn sets_for(&self, name: &str, v4: bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut n = name;
        // [ipset matched, nftset matched]
        let mut matched = [false, false];
        let is_ipset = |t: &str| t == crate::iptables::IPSET_TABLE;
        loop {
            if let Some(v) = self.fills.get(n) {
                for kind in [true, false] {
                    if matched[usize::from(kind)] || !v.iter().any(|x| is_ipset(&x.0) == kind) {
                        continue;
                    }
                    matched[usize::from(kind)] = true;
                    out.extend(
                        v.iter()
                            .filter(|x| is_ipset(&x.0) == kind && x.2 == v4)
                            .map(|x| (x.0.clone(), x.1.clone())),
                    );
                }
            }
            match n.split_once('.') {
                Some((_, rest)) if !rest.is_empty() => n = rest,
                _ => break,
            }
        }
        out
    }

    /// Pairs (A, B) of DNS-filled sets where every address in A is in B: every domain whose
    /// line fills A fills B too (`bootstrap.us-east-1.mbedcloud.com` fills its own set and
    /// `*.mbedcloud.com`'s, so an address in the first is in the second). Both filled by the
    /// same answers with the same timeout; a class with an address in A but not in B cannot
    /// occur. (Not so for a while after a reload that added B while A kept its elements:
    /// A's older addresses are then in A alone until they time out.)
    pub fn subsets(&self) -> Vec<((String, String), (String, String))> {
        // (table, set, family) → the domains that fill it
        let mut by_set: BTreeMap<(String, String, bool), Vec<&str>> = BTreeMap::new();
        for (d, v) in &self.fills {
            for x in v {
                by_set
                    .entry((x.0.clone(), x.1.clone(), x.2))
                    .or_default()
                    .push(d);
            }
        }
        let fills_of = |d: &str, fam: bool| -> Vec<(String, String)> {
            self.fills
                .get(d)
                .map(|v| {
                    v.iter()
                        .filter(|x| x.2 == fam)
                        .map(|x| (x.0.clone(), x.1.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        for ((t, s, fam), domains) in &by_set {
            let mut common: Option<Vec<(String, String)>> = None;
            for d in domains {
                let f = fills_of(d, *fam);
                common = Some(match common {
                    None => f,
                    Some(c) => c.into_iter().filter(|x| f.contains(x)).collect(),
                });
            }
            for b in common.unwrap_or_default() {
                if b != (t.clone(), s.clone())
                    && !out.contains(&((t.clone(), s.clone()), b.clone()))
                {
                    out.push(((t.clone(), s.clone()), b));
                }
            }
        }
        out
    }

    /// Every (table, set) the DNS fills.
    pub fn sets(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .fills
            .values()
            .flatten()
            .map(|x| (x.0.clone(), x.1.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Permitted,
    Partly,
    Blocked,
    Depends,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Permitted => "permitted",
            Status::Partly => "partly",
            Status::Blocked => "blocked",
            Status::Depends => "depends",
        }
    }
}

/// A piece of a class that is not simply accepted, described.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The packets: `10.20.0.10 → 198.51.100.10 tcp dport 22 (new)`.
    pub class: String,
    pub direction: Direction,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The initiator's packets.
    Original,
    /// The answers.
    Reply,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlowResult {
    pub group: String,
    pub flow: String,
    pub optional: bool,
    pub status: Status,
    /// The rules that decide it (accepting rules when permitted, else the ones that do not).
    pub rules: Vec<RuleRef>,
    /// What is not accepted (empty when permitted).
    pub findings: Vec<Finding>,
    /// Names the site's DNS fills no set for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfilled_names: Vec<String>,
    /// With `--resolve`: how each hostname peer is permitted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<NameCheck>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Excess {
    pub group: String,
    pub class: String,
    pub path: Path,
    pub rule: Option<RuleRef>,
    /// Accepted only when a run-time set holds the address (named in `class`).
    pub conditional: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub site: String,
    pub flows: Vec<FlowResult>,
    pub excess: Vec<Excess>,
    /// Parts of the ruleset not evaluated (netdev or bridge tables).
    pub notes: Vec<String>,
}

impl Report {
    /// Every required flow permitted and nothing else.
    pub fn clean(&self) -> bool {
        self.excess.is_empty()
            && self
                .flows
                .iter()
                .all(|f| f.optional || f.status == Status::Permitted)
    }
}

/// A class to check, with its path and direction, and the hostname peer it stands for.
struct Query {
    path: Path,
    direction: Direction,
    class: Class,
    name: Option<String>,
}

/// How a hostname peer of a flow was found permitted (or not), with `--resolve`.
#[derive(Clone, Debug, Serialize)]
pub struct NameCheck {
    pub name: String,
    pub via: NameVia,
    /// The addresses the name resolves to now (empty: it did not resolve).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<std::net::IpAddr>,
    /// Why it did not resolve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameVia {
    /// A set the site's DNS fills for the name (or a rule wider than the name) admits it.
    DnsSet,
    /// Rules on static addresses admit every address the name resolves to now.
    CurrentAddresses,
    /// Neither: the name's addresses now are not all admitted.
    Neither,
    /// The name did not resolve, so its static addresses cannot be confirmed.
    Unresolved,
}

impl NameVia {
    pub fn describe(self) -> &'static str {
        match self {
            NameVia::DnsSet => "by the set its DNS fills",
            NameVia::CurrentAddresses => "by static rules on the addresses it resolves to now",
            NameVia::Neither => "not by its set, nor on every address it resolves to now",
            NameVia::Unresolved => "it does not resolve now",
        }
    }
}

struct Ctx<'a> {
    policy: &'a Policy,
    prog: &'a Program,
    dns: &'a DnsFills,
    /// What the ruleset accepts of new packets from or to any address, per path, address
    /// axis, family and device-side interface: evaluated once and shared by every group's
    /// excess (see [`excess`]).
    shared: std::cell::RefCell<Vec<(SharedKey, std::rc::Rc<excess::Shared>)>>,
    /// [`DnsFills::subsets`], once.
    subsets: Vec<((String, String), (String, String))>,
    /// The groups by id, and each group's rules: looked up once per flow and per group, so a
    /// scan of the policy's lists would make the check grow with groups squared.
    groups: std::collections::HashMap<&'a str, &'a portolan_model::ir::Group>,
    rules: std::collections::HashMap<&'a str, Vec<&'a portolan_model::ir::Rule>>,
    /// [`Ctx::default_iface`], once.
    default_iface: std::cell::OnceCell<Option<String>>,
}

impl<'a> Ctx<'a> {
    fn new(policy: &'a Policy, prog: &'a Program, dns: &'a DnsFills) -> Ctx<'a> {
        Ctx {
            policy,
            prog,
            dns,
            shared: Default::default(),
            subsets: dns.subsets(),
            groups: policy.groups.iter().map(|g| (g.id.as_str(), g)).collect(),
            rules: policy.rules.iter().fold(Default::default(), |mut m, r| {
                m.entry(r.group.as_str()).or_insert_with(Vec::new).push(r);
                m
            }),
            default_iface: Default::default(),
        }
    }

    fn group(&self, id: &str) -> Option<&'a portolan_model::ir::Group> {
        self.groups.get(id).copied()
    }

    fn rules_of(&self, group: &str) -> impl Iterator<Item = &'a portolan_model::ir::Rule> + '_ {
        self.rules.get(group).into_iter().flatten().copied()
    }
}

/// (path, the device's address axis, IPv4, device-side interface interval) of a shared
/// evaluation.
type SharedKey = (Path, crate::space::Dim, bool, Iv);

/// Verifies `policy` against `prog`.
pub fn verify(policy: &Policy, prog: &Program, dns: &DnsFills) -> Report {
    let cx = Ctx::new(policy, prog, dns);
    let mut flows = Vec::new();
    for rule in &policy.rules {
        flows.push(cx.flow(rule));
    }
    let mut excess = Vec::new();
    for g in &policy.groups {
        excess.extend(cx.excess(&g.id));
    }
    Report {
        site: policy.site.clone(),
        flows,
        excess,
        notes: prog.ignored.clone(),
    }
}

/// The flow half of [`verify`] (for the benchmark's split of the time).
pub fn flows(policy: &Policy, prog: &Program, dns: &DnsFills) -> Vec<FlowResult> {
    let cx = Ctx::new(policy, prog, dns);
    policy.rules.iter().map(|r| cx.flow(r)).collect()
}

/// The excess half of [`verify`].
pub fn excess(policy: &Policy, prog: &Program, dns: &DnsFills) -> Vec<Excess> {
    let cx = Ctx::new(policy, prog, dns);
    policy
        .groups
        .iter()
        .flat_map(|g| cx.excess(&g.id))
        .collect()
}

fn v4_of(n: &IpNet) -> bool {
    matches!(n, IpNet::V4(_))
}

fn fam_iv(v4: bool) -> Iv {
    Iv::point(if v4 { 0 } else { 1 })
}

fn any_addr(v4: bool) -> Iv {
    if v4 {
        Iv::new(0, u128::from(u32::MAX))
    } else {
        Iv::new(0, u128::MAX)
    }
}

/// Port intervals of a list (empty: any).
fn ports(list: &[portolan_model::ir::PortRange]) -> Vec<Iv> {
    if list.is_empty() {
        vec![Iv::new(0, 65535)]
    } else {
        list.iter()
            .map(|p| Iv::new(u128::from(p.lo), u128::from(p.hi)))
            .collect()
    }
}

/// Protocols whose packets carry ports the kernel matches (`th dport`): wider than
/// `IpProto::has_ports`, which says which protocols a profile may give ports.
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

/// A peer of a rule, as the classes see it.
#[derive(Clone, Debug)]
enum Peer {
    Net(IpNet),
    /// A name or domain: addresses outside the site's zones, and the dynamic axes pinned.
    Name {
        name: String,
        v4: bool,
    },
    Firewall {
        v4: bool,
    },
    /// Broadcast / multicast destinations (the firewall or forwarded).
    Cast {
        dst: Vec<IpNet>,
        local: bool,
        oif: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::DnsFills;

    fn sets(d: &DnsFills, name: &str) -> Vec<String> {
        d.sets_for(name, true).into_iter().map(|(_, s)| s).collect()
    }

    /// dnsmasq's choice of sets: the first of two lines naming one domain (tried with dnsmasq
    /// 2.90 in a namespace), the longest matching domain's line, a parent domain's line for a
    /// name below it (dnsmasq(8) `--nftset`: a domain and its subdomains).
    #[test]
    fn the_sets_dnsmasq_fills_for_a_name() {
        let d = DnsFills::from_dnsmasq(
            "nftset=/a.test/4#inet#t#s1\n\
             nftset=/a.test/b.test/4#inet#t#s2\n\
             nftset=/mbed.test/4#inet#t#wild\n\
             nftset=/x.mbed.test/4#inet#t#x,4#inet#t#wild\n",
        );
        assert_eq!(sets(&d, "a.test"), ["s1"]);
        assert_eq!(sets(&d, "b.test"), ["s2"]);
        assert_eq!(sets(&d, "y.a.test"), ["s1"]);
        assert_eq!(sets(&d, "x.mbed.test"), ["x", "wild"]);
        assert_eq!(sets(&d, "z.x.mbed.test"), ["x", "wild"]);
        assert_eq!(sets(&d, "y.mbed.test"), ["wild"]);
        assert!(sets(&d, "test").is_empty());
    }

    /// By hand from the lines: x's set is filled only by the x line, which fills the
    /// wildcard's too; the wildcard's is filled by lines that do not all fill x's.
    #[test]
    fn a_set_every_filler_of_which_fills_another_is_its_subset() {
        let d = DnsFills::from_dnsmasq(
            "nftset=/mbed.test/4#inet#t#wild\n\
             nftset=/x.mbed.test/4#inet#t#x,4#inet#t#wild\n\
             nftset=/y.mbed.test/z.test/4#inet#t#y,4#inet#t#wild\n",
        );
        let pair = |a: &str, b: &str| {
            (
                ("t".to_string(), a.to_string()),
                ("t".to_string(), b.to_string()),
            )
        };
        let mut got = d.subsets();
        got.sort();
        // y is also filled by z.test, whose line fills wild too: still a subset.
        assert_eq!(got, vec![pair("x", "wild"), pair("y", "wild")]);
    }
}
