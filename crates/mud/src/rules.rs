//! From the typed MUD file to a flat list of [`AceRule`]s: one per usable ACE, with the peer, the
//! protocol and the ports seen from the device's side (the peer's port, the device's port), and
//! checks of the `ietf-mud` container. ACEs that cannot be read as a permit between the device
//! and one peer are skipped with a warning naming their path; nothing is dropped silently.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use portolan_model::names::{check_wildcard, is_hostname};
use portolan_model::PortItem;

use crate::problem::{join, Problems};
use crate::schema::{
    Ace, Acl, Eth, Icmp, Ipv4, Ipv6, MudFile, MudMatch, Other, PortMatch, Tcp, Udp, URN_DNS,
    URN_NTP,
};

/// Which policy an ACL is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// `from-device-policy`: packets the device sends.
    FromDevice,
    /// `to-device-policy`: packets the device receives.
    ToDevice,
}

impl Dir {
    pub fn name(self) -> &'static str {
        match self {
            Dir::FromDevice => "from-device",
            Dir::ToDevice => "to-device",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

/// The other side of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// `ietf-acldns:*-dnsname`.
    Host(String),
    /// A wildcard name (`*.example.com`), which `inet:host` does not allow; repaired.
    Domain(String),
    /// `*-ipv4-network` / `*-ipv6-network`.
    Net(IpNet),
    /// `controller` with a URI.
    Controller(String),
    MyController,
    LocalNetworks,
    SameManufacturer,
    Manufacturer(String),
    Model(String),
    /// No peer match at all: any address.
    Any,
}

/// One ACE, read: a permit between the device and one peer (named `AceRule` so that `Rule` is
/// only the policy IR's, `portolan_model::ir::Rule`).
#[derive(Clone, Debug)]
pub struct AceRule {
    pub acl: String,
    pub ace: String,
    /// JSON path of the ACE.
    pub path: String,
    pub dir: Dir,
    /// `None` for an Ethernet (ARP) rule.
    pub family: Option<Family>,
    pub peer: Peer,
    /// IP protocol; `None` means any.
    pub protocol: Option<u8>,
    /// Ethertype 0x0806: ARP.
    pub arp: bool,
    /// Ports on the peer's side (destination of from-device, source of to-device).
    pub peer_port: Option<Vec<PortItem>>,
    /// Ports on the device's side.
    pub dev_port: Option<Vec<PortItem>>,
    /// ICMP type and code.
    pub icmp: Option<(Option<u8>, Option<u8>)>,
    /// `ietf-mud:direction-initiated`.
    pub initiated: Option<Dir>,
    /// An Ethernet broadcast destination beside the IP match.
    pub broadcast: bool,
}

/// What the importer needs from a MUD file besides its rules.
#[derive(Debug)]
pub struct Read {
    pub rules: Vec<AceRule>,
    pub uses_portolan: bool,
}

const MUD: &str = "/ietf-mud:mud";
const ACLS: &str = "/ietf-access-control-list:acls";

/// Known RFC 8519/8520 leaves these structs do not model: legal, but Portolan cannot express
/// them, so an ACE that uses one is skipped with a warning rather than widened.
const LEGAL_UNMODELED: &[&str] = &[
    "dscp",
    "ecn",
    "length",
    "ttl",
    "ihl",
    "flags",
    "offset",
    "identification",
    "flow-label",
    "sequence-number",
    "acknowledgement-number",
    "data-offset",
    "reserved",
    "window-size",
    "urgent-pointer",
    "options",
    "rest-of-header",
    "destination-mac-address-mask",
    "source-mac-address-mask",
    "egress-interface",
    "ingress-interface",
];

/// Checks the `ietf-mud:mud` container and reads every ACE the policies name.
pub fn read(file: &MudFile, p: &mut Problems) -> Read {
    let mud = &file.mud;
    if mud.mud_version != 1 {
        p.error(
            &join(MUD, "mud-version"),
            "unsupported-version",
            format!(
                "MUD version {} is not supported (RFC 8520 defines 1)",
                mud.mud_version
            ),
        );
    }
    if !is_https_url(&mud.mud_url) {
        p.deviation(
            &join(MUD, "mud-url"),
            "mud-url-scheme",
            format!(
                "`{}` is not an https URL (RFC 8520 section 3.2)",
                mud.mud_url
            ),
        );
    }
    if !mud.last_update.is_empty() && !crate::timestamp::is_date_and_time(&mud.last_update) {
        p.deviation(
            &join(MUD, "last-update"),
            "last-update-format",
            format!(
                "`{}` is not a yang:date-and-time (RFC 6991: a time zone offset or Z is required)",
                mud.last_update
            ),
        );
    }
    if let Some(c) = mud.cache_validity {
        if !(1..=168).contains(&c) {
            p.deviation(
                &join(MUD, "cache-validity"),
                "cache-validity-range",
                format!("{c} hours is outside 1..168 (RFC 8520 section 3.4)"),
            );
        }
    }
    let mut uses_portolan = false;
    for (i, e) in mud.extensions.iter().enumerate() {
        let at = join(&join(MUD, "extensions"), i);
        if e.is_empty() || e.chars().count() > 40 {
            p.deviation(
                &at,
                "extension-name",
                "extension names are 1 to 40 characters",
            );
        }
        if e == crate::ext::NAME {
            uses_portolan = true;
        } else {
            p.warning(
                &at,
                "unknown-extension",
                format!("extension `{e}` is not known to Portolan; its data is ignored"),
            );
        }
    }
    if mud.portolan.is_some() && !uses_portolan {
        p.deviation(
            &join(MUD, "portolan:profile"),
            "undeclared-extension",
            "extension data without `portolan` in `extensions` (RFC 8520 section 3.7); ignored",
        );
    }
    for (k, _) in &mud.other {
        let at = join(MUD, k);
        if k.contains(':') && !mud.extensions.is_empty() {
            p.warning(
                &at,
                "ignored-member",
                format!("`{k}` belongs to an extension Portolan does not know; ignored"),
            );
        } else {
            p.deviation(
                &at,
                "unknown-member",
                format!("`{k}` is not an RFC 8520 leaf; ignored"),
            );
        }
    }
    for (k, _) in &file.other {
        p.warning(
            &join("", k),
            "ignored-member",
            format!("top-level `{k}` is not part of a MUD file; ignored"),
        );
    }

    // ACLs by name; policies name them.
    let mut by_name: BTreeMap<&str, (usize, &Acl)> = BTreeMap::new();
    for (i, acl) in file.acls.acl.iter().enumerate() {
        let at = join(&join(ACLS, "acl"), i);
        if by_name.contains_key(acl.name.as_str()) {
            p.deviation(
                &join(&at, "name"),
                "duplicate-acl-name",
                format!(
                    "a second ACL named `{}`; ACL names are keys (RFC 8519); ignored",
                    acl.name
                ),
            );
            continue;
        }
        by_name.insert(&acl.name, (i, acl));
    }
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut rules = Vec::new();
    for (dir, policy, key) in [
        (
            Dir::FromDevice,
            &mud.from_device_policy,
            "from-device-policy",
        ),
        (Dir::ToDevice, &mud.to_device_policy, "to-device-policy"),
    ] {
        let Some(policy) = policy else { continue };
        let base = join(&join(&join(MUD, key), "access-lists"), "access-list");
        for (i, r) in policy.access_lists.access_list.iter().enumerate() {
            let at = join(&base, i);
            match by_name.get(r.name.as_str()) {
                None => p.deviation(
                    &join(&at, "name"),
                    "missing-acl",
                    format!(
                        "the policy names ACL `{}`, which the file does not define; ignored",
                        r.name
                    ),
                ),
                Some((idx, acl)) => {
                    used.insert(&acl.name);
                    let apath = join(&join(ACLS, "acl"), idx);
                    read_acl(acl, &apath, dir, p, &mut rules);
                }
            }
        }
    }
    for (name, (i, _)) in &by_name {
        if !used.contains(name) {
            p.warning(
                &join(&join(ACLS, "acl"), i),
                "unreferenced-acl",
                format!("ACL `{name}` is named by neither policy; a MUD manager does not apply it, so it is ignored"),
            );
        }
    }
    if file.acls.acl.is_empty() {
        p.warning(
            ACLS,
            "no-acls",
            "the file defines no ACL: the device is allowed nothing",
        );
    }
    Read {
        rules,
        uses_portolan,
    }
}

/// An absolute URI (RFC 3986 section 3: a scheme, `:`, something), as `inet:uri` wants.
fn is_uri(u: &str) -> bool {
    let Some((scheme, rest)) = u.split_once(':') else {
        return false;
    };
    let mut cs = scheme.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic())
        && cs.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_https_url(u: &str) -> bool {
    u.strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

fn read_acl(acl: &Acl, at: &str, dir: Dir, p: &mut Problems, out: &mut Vec<AceRule>) {
    let kind = acl.kind.as_deref().unwrap_or("");
    if acl.kind.is_none() {
        // Named by the ACL that lacks it: the only path the file has.
        p.deviation(
            at,
            "missing-acl-type",
            "the ACL has no `type`; read from its matches",
        );
    } else if !crate::schema::ACL_TYPES.contains(&kind) {
        p.deviation(
            &join(at, "type"),
            "unknown-acl-type",
            format!("`{kind}` is not an ACL type; the ACL is skipped"),
        );
        return;
    }
    for (k, _) in &acl.other {
        p.deviation(
            &join(at, k),
            "unknown-member",
            format!("`{k}` is not an RFC 8519 ACL member; ignored"),
        );
    }
    let base = join(&join(at, "aces"), "ace");
    let mut seen: BTreeMap<&str, &Ace> = BTreeMap::new();
    for (i, ace) in acl.aces.ace.iter().enumerate() {
        let apath = join(&base, i);
        let mut name = ace.name.clone();
        if let Some(first) = seen.get(ace.name.as_str()) {
            if *first == ace {
                p.deviation(
                    &join(&apath, "name"),
                    "duplicate-ace-name",
                    format!(
                        "a second ACE named `{}`, identical to the first; skipped",
                        ace.name
                    ),
                );
                continue;
            }
            name = format!("{}-{i}", ace.name);
            p.deviation(
                &join(&apath, "name"),
                "duplicate-ace-name",
                format!(
                    "a second ACE named `{}` (ACE names are keys, RFC 8519); read as `{name}`",
                    ace.name
                ),
            );
        } else {
            seen.insert(&ace.name, ace);
        }
        if let Some(r) = read_ace(ace, name, &acl.name, kind, &apath, dir, p) {
            out.push(r);
        }
    }
}

/// Reports unknown members of a match container. Returns false when the ACE must be skipped.
fn members_ok(other: &Other, at: &str, p: &mut Problems) -> bool {
    let mut ok = true;
    for k in other.keys() {
        if LEGAL_UNMODELED.contains(&k.as_str()) {
            p.warning(
                &join(at, k),
                "unsupported-match",
                format!("Portolan profiles cannot express a `{k}` match; the ACE is skipped rather than widened"),
            );
        } else {
            p.deviation(
                &join(at, k),
                "unknown-member",
                format!(
                    "`{k}` is not an RFC 8519/8520 match; the ACE is skipped rather than widened"
                ),
            );
        }
        ok = false;
    }
    ok
}

/// Reads one ACE as [`read`] would, for comparing what the exporter would write with what a
/// file holds; problems are discarded.
pub fn rule_of(ace: &Ace, acl: &str, acl_type: &str, dir: Dir) -> Option<AceRule> {
    let mut scratch = Problems::new(false);
    read_ace(ace, ace.name.clone(), acl, acl_type, "", dir, &mut scratch)
}

fn read_ace(
    ace: &Ace,
    name: String,
    acl: &str,
    acl_type: &str,
    at: &str,
    dir: Dir,
    p: &mut Problems,
) -> Option<AceRule> {
    let fwd = ace
        .actions
        .forwarding
        .strip_prefix("ietf-access-control-list:")
        .unwrap_or(&ace.actions.forwarding);
    let fat = join(&join(at, "actions"), "forwarding");
    match fwd {
        "accept" => {}
        "drop" | "reject" => {
            p.warning(&fat, "not-accept", format!("a `{fwd}` entry: profiles list what is allowed and everything else is dropped, so it is skipped"));
            return None;
        }
        other => {
            p.deviation(
                &fat,
                "unknown-action",
                format!("`{other}` is not a forwarding action; the ACE is skipped"),
            );
            return None;
        }
    }
    let mut ok = members_ok(&ace.other, at, p);
    let m = &ace.matches;
    let mat = join(at, "matches");
    ok &= members_ok(&m.other, &mat, p);
    if !ok {
        return None;
    }
    let mut rule = AceRule {
        acl: acl.to_string(),
        ace: name,
        path: at.to_string(),
        dir,
        family: None,
        peer: Peer::Any,
        protocol: None,
        arp: false,
        peer_port: None,
        dev_port: None,
        icmp: None,
        initiated: None,
        broadcast: false,
    };
    // L3.
    let (l3_peer, family, protocol) = match (&m.ipv4, &m.ipv6) {
        (Some(_), Some(_)) => {
            p.deviation(
                &mat,
                "two-l3-matches",
                "both ipv4 and ipv6 in one ACE (they are a choice in RFC 8519); skipped",
            );
            return None;
        }
        (Some(v4), None) => {
            let (peer, proto) = ipv4(v4, &join(&mat, "ipv4"), dir, p)?;
            (peer, Some(Family::V4), proto)
        }
        (None, Some(v6)) => {
            let (peer, proto) = ipv6(v6, &join(&mat, "ipv6"), dir, p)?;
            (peer, Some(Family::V6), proto)
        }
        (None, None) => (None, None, None),
    };
    let fam_of_type = match acl_type {
        "ipv4-acl-type" => Some(Family::V4),
        "ipv6-acl-type" => Some(Family::V6),
        _ => None,
    };
    if let (Some(f), Some(t)) = (family, fam_of_type) {
        if f != t {
            p.deviation(
                &mat,
                "match-type-mismatch",
                format!("an {f:?} match in an ACL of type {acl_type}; read by the match"),
            );
        }
    }
    rule.family = family.or(fam_of_type);
    rule.protocol = protocol;
    // L2.
    if let Some(eth) = &m.eth {
        let eat = join(&mat, "eth");
        if !members_ok(&eth.other, &eat, p) {
            return None;
        }
        match eth_role(eth, rule.family) {
            EthRole::Arp if rule.family.is_none() && m.tcp.is_none() && m.udp.is_none() => {
                rule.arp = true;
            }
            EthRole::SameAsIp => {
                rule.broadcast = eth
                    .destination_mac_address
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("ff:ff:ff:ff:ff:ff"));
                if !acl_type.starts_with("mixed-eth") {
                    p.deviation(
                        &eat,
                        "eth-in-ip-acl",
                        format!("an eth match in an ACL of type `{acl_type}` (RFC 8519 needs a mixed-eth type); read as the IP match (a broadcast MAC makes the flow broadcast)"),
                    );
                }
            }
            EthRole::Other(t) => {
                let what = match t {
                    Some(0x888e) => "0x888e (EAPOL, 802.1X)".to_string(),
                    Some(t) => format!("0x{t:04x}"),
                    None => "an Ethernet match".to_string(),
                };
                p.warning(
                    &eat,
                    "non-ip-match",
                    format!(
                        "{what}: Portolan profiles hold IP flows and ARP only; the ACE is skipped"
                    ),
                );
                return None;
            }
            EthRole::Arp => {
                p.deviation(
                    &eat,
                    "arp-with-ip",
                    "ethertype ARP combined with IP or transport matches; skipped",
                );
                return None;
            }
        }
    } else if rule.family.is_none() && acl_type == "eth-acl-type" {
        p.warning(
            &mat,
            "non-ip-match",
            "an Ethernet ACE without an ethertype; skipped",
        );
        return None;
    }
    // L4.
    let l4: Vec<&str> = [
        m.tcp.as_ref().map(|_| "tcp"),
        m.udp.as_ref().map(|_| "udp"),
        m.icmp.as_ref().map(|_| "icmp"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if l4.len() > 1 {
        p.deviation(
            &mat,
            "two-l4-matches",
            format!(
                "{} in one ACE (a choice in RFC 8519); skipped",
                l4.join(" and ")
            ),
        );
        return None;
    }
    if let Some(kind) = l4.first() {
        let want: u8 = match (*kind, rule.family) {
            ("tcp", _) => 6,
            ("udp", _) => 17,
            (_, Some(Family::V6)) => 58,
            _ => 1,
        };
        match rule.protocol {
            None => {
                p.warning(
                    &mat,
                    "protocol-inferred",
                    format!("a {kind} match without an IP `protocol`; read as protocol {want}"),
                );
                rule.protocol = Some(want);
            }
            Some(n) if n != want && !(*kind == "icmp" && (n == 1 || n == 58)) => {
                p.deviation(
                    &mat,
                    "protocol-mismatch",
                    format!("protocol {n} with a {kind} match; skipped"),
                );
                return None;
            }
            Some(_) => {}
        }
    }
    if let Some(t) = &m.tcp {
        let tat = join(&mat, "tcp");
        tcp(t, &tat, dir, &mut rule, p)?;
    }
    if let Some(u) = &m.udp {
        let uat = join(&mat, "udp");
        udp(u, &uat, dir, &mut rule, p)?;
    }
    if let Some(i) = &m.icmp {
        rule.icmp = Some(icmp(i, &join(&mat, "icmp"), p)?);
    }
    // Peer: MUD abstraction, L3 name or network, or any.
    let mud_peer = match &m.mud {
        Some(mm) => mud_match(mm, &join(&mat, "ietf-mud:mud"), p)?,
        None => None,
    };
    rule.peer = match (mud_peer, l3_peer) {
        (None, None) => Peer::Any,
        (Some(a), None) => a,
        (None, Some(n)) => n,
        (Some(a), Some(n)) => {
            let local_scope = matches!(&n, Peer::Net(net) if is_local_scope(net));
            if !(a == Peer::LocalNetworks && local_scope) {
                p.warning(
                    &mat,
                    "combined-peer",
                    format!("both a MUD abstraction ({}) and an address match; Portolan keeps the address", peer_text(&a)),
                );
            }
            n
        }
    };
    if rule.peer == Peer::Any && !rule.arp {
        p.warning(
            &mat,
            "any-peer",
            "no peer match: the ACE allows any address; imported as a role the site must bind",
        );
    }
    Some(rule)
}

enum EthRole {
    /// Ethertype matching the IP family, perhaps with a broadcast/multicast MAC.
    SameAsIp,
    Arp,
    Other(Option<u16>),
}

fn eth_role(eth: &Eth, family: Option<Family>) -> EthRole {
    let mac_ok = eth.source_mac_address.is_none()
        && eth
            .destination_mac_address
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case("ff:ff:ff:ff:ff:ff") || is_multicast_mac(m));
    match (eth.ethertype, family) {
        (Some(0x0806), None) if eth.source_mac_address.is_none() => EthRole::Arp,
        (Some(0x0800) | None, Some(Family::V4)) if mac_ok => EthRole::SameAsIp,
        (Some(0x86dd) | None, Some(Family::V6)) if mac_ok => EthRole::SameAsIp,
        (t, _) => EthRole::Other(t),
    }
}

fn is_multicast_mac(m: &str) -> bool {
    m.get(..2)
        .and_then(|b| u8::from_str_radix(b, 16).ok())
        .is_some_and(|b| b & 1 == 1)
}

/// Multicast, limited broadcast and link-local prefixes: local by nature.
fn is_local_scope(n: &IpNet) -> bool {
    match n.addr() {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.is_link_local(),
        IpAddr::V6(a) => a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

pub fn peer_text(p: &Peer) -> String {
    match p {
        Peer::Host(h) => format!("dnsname {h}"),
        Peer::Domain(d) => format!("dnsname {d}"),
        Peer::Net(n) => format!("network {n}"),
        Peer::Controller(u) => format!("controller {u}"),
        Peer::MyController => "my-controller".into(),
        Peer::LocalNetworks => "local-networks".into(),
        Peer::SameManufacturer => "same-manufacturer".into(),
        Peer::Manufacturer(m) => format!("manufacturer {m}"),
        Peer::Model(m) => format!("model {m}"),
        Peer::Any => "any".into(),
    }
}

/// The peer named in an L3 match (the destination of a from-device ACE, the source of a
/// to-device one). Names and networks on the device's own side cannot be expressed.
#[allow(clippy::too_many_arguments)]
fn l3_peer(
    at: &str,
    dir: Dir,
    dst_name: &Option<String>,
    src_name: &Option<String>,
    dst_net: &Option<String>,
    src_net: &Option<String>,
    net_keys: (&str, &str),
    p: &mut Problems,
) -> Option<Option<Peer>> {
    let (name, net, dev_name, dev_net, name_key, net_key) = match dir {
        Dir::FromDevice => (
            dst_name,
            dst_net,
            src_name,
            src_net,
            "ietf-acldns:dst-dnsname",
            net_keys.0,
        ),
        Dir::ToDevice => (
            src_name,
            src_net,
            dst_name,
            dst_net,
            "ietf-acldns:src-dnsname",
            net_keys.1,
        ),
    };
    if dev_name.is_some() || dev_net.is_some() {
        p.warning(
            at,
            "device-address-match",
            format!("a {} ACE that matches the device's own name or address: profiles describe the device's peers only; skipped", dir.name()),
        );
        return None;
    }
    let name_peer = match name {
        None => None,
        Some(h) => {
            let hat = join(at, name_key);
            let t = h.trim_end_matches('.').to_ascii_lowercase();
            if is_hostname(&t) {
                Some(Peer::Host(t))
            } else if check_wildcard(&t).is_ok() {
                p.deviation(
                    &hat,
                    "wildcard-dnsname",
                    format!("`{h}` is a wildcard, which `inet:host` does not allow; read as the domain {t}"),
                );
                Some(Peer::Domain(t))
            } else {
                p.deviation(
                    &hat,
                    "invalid-dnsname",
                    format!("`{h}` is not a fully qualified host name; the ACE is skipped"),
                );
                return None;
            }
        }
    };
    let net_peer = match net {
        None => None,
        Some(s) => {
            let nat = join(at, net_key);
            let parsed = s.trim().parse::<IpNet>().ok().or_else(|| {
                let a = s.trim().parse::<IpAddr>().ok()?;
                p.deviation(
                    &nat,
                    "address-without-prefix",
                    format!("`{s}` is an address, not a prefix (inet:ip-prefix needs a length); read as a single address"),
                );
                Some(IpNet::from(a))
            });
            match parsed {
                Some(n) => {
                    if n.trunc() != n {
                        p.warning(
                            &nat,
                            "host-bits-set",
                            format!("`{s}` has host bits set; read as {}", n.trunc()),
                        );
                    }
                    Some(Peer::Net(n.trunc()))
                }
                None => {
                    p.deviation(
                        &nat,
                        "invalid-network",
                        format!("`{s}` is not an IP prefix; the ACE is skipped"),
                    );
                    return None;
                }
            }
        }
    };
    match (name_peer, net_peer) {
        (Some(n), Some(_)) => {
            p.deviation(
                at,
                "name-and-network",
                "both a DNS name and a network for the same side; the name is kept",
            );
            Some(Some(n))
        }
        (a, b) => Some(a.or(b)),
    }
}

fn ipv4(v: &Ipv4, at: &str, dir: Dir, p: &mut Problems) -> Option<(Option<Peer>, Option<u8>)> {
    if !members_ok(&v.other, at, p) {
        return None;
    }
    let peer = l3_peer(
        at,
        dir,
        &v.dst_dnsname,
        &v.src_dnsname,
        &v.destination_ipv4_network,
        &v.source_ipv4_network,
        ("destination-ipv4-network", "source-ipv4-network"),
        p,
    )?;
    if let Some(Peer::Net(n)) = &peer {
        if matches!(n, IpNet::V6(_)) {
            p.deviation(
                at,
                "invalid-network",
                "an IPv6 prefix in an ipv4 match; the ACE is skipped",
            );
            return None;
        }
    }
    Some((peer, v.protocol))
}

fn ipv6(v: &Ipv6, at: &str, dir: Dir, p: &mut Problems) -> Option<(Option<Peer>, Option<u8>)> {
    if !members_ok(&v.other, at, p) {
        return None;
    }
    let peer = l3_peer(
        at,
        dir,
        &v.dst_dnsname,
        &v.src_dnsname,
        &v.destination_ipv6_network,
        &v.source_ipv6_network,
        ("destination-ipv6-network", "source-ipv6-network"),
        p,
    )?;
    if let Some(Peer::Net(n)) = &peer {
        if matches!(n, IpNet::V4(_)) {
            p.deviation(
                at,
                "invalid-network",
                "an IPv4 prefix in an ipv6 match; the ACE is skipped",
            );
            return None;
        }
    }
    Some((peer, v.protocol))
}

fn ports_of(
    src: &Option<PortMatch>,
    dst: &Option<PortMatch>,
    at: &str,
    dir: Dir,
    rule: &mut AceRule,
    p: &mut Problems,
) -> Option<()> {
    let s = match src {
        Some(m) => Some(port_match(m, &join(at, "source-port"), p)?),
        None => None,
    };
    let d = match dst {
        Some(m) => Some(port_match(m, &join(at, "destination-port"), p)?),
        None => None,
    };
    match dir {
        Dir::FromDevice => {
            rule.peer_port = d;
            rule.dev_port = s;
        }
        Dir::ToDevice => {
            rule.peer_port = s;
            rule.dev_port = d;
        }
    }
    Some(())
}

fn tcp(t: &Tcp, at: &str, dir: Dir, rule: &mut AceRule, p: &mut Problems) -> Option<()> {
    if !members_ok(&t.other, at, p) {
        return None;
    }
    if let Some(d) = &t.direction_initiated {
        rule.initiated = Some(match d.as_str() {
            "from-device" => Dir::FromDevice,
            "to-device" => Dir::ToDevice,
            other => {
                p.deviation(
                    &join(at, "ietf-mud:direction-initiated"),
                    "unknown-direction",
                    format!("`{other}` is neither from-device nor to-device; skipped"),
                );
                return None;
            }
        });
    }
    ports_of(&t.source_port, &t.destination_port, at, dir, rule, p)
}

fn udp(u: &Udp, at: &str, dir: Dir, rule: &mut AceRule, p: &mut Problems) -> Option<()> {
    if !members_ok(&u.other, at, p) {
        return None;
    }
    ports_of(&u.source_port, &u.destination_port, at, dir, rule, p)
}

fn icmp(i: &Icmp, at: &str, p: &mut Problems) -> Option<(Option<u8>, Option<u8>)> {
    if !members_ok(&i.other, at, p) {
        return None;
    }
    Some((i.kind, i.code))
}

/// A port match as port items (RFC 8519 `port-range-or-operator`).
fn port_match(m: &PortMatch, at: &str, p: &mut Problems) -> Option<Vec<PortItem>> {
    if !members_ok(&m.other, at, p) {
        return None;
    }
    let zero = |p: &mut Problems, what: &str| {
        p.warning(
            at,
            "port-zero",
            format!("{what} 0 is no usable port; read as 1"),
        );
    };
    let item = |a: u16, b: u16| {
        if a == b {
            PortItem::Single(a)
        } else {
            PortItem::Range(a, b)
        }
    };
    match (m.lower_port, m.upper_port, m.operator.as_deref(), m.port) {
        (Some(mut lo), Some(hi), None, None) => {
            if lo > hi {
                p.deviation(
                    at,
                    "reversed-range",
                    format!("lower-port {lo} is above upper-port {hi}; the ACE is skipped"),
                );
                return None;
            }
            if hi == 0 {
                p.deviation(at, "port-zero", "the range holds only port 0; skipped");
                return None;
            }
            if lo == 0 {
                zero(p, "lower-port");
                lo = 1;
            }
            Some(vec![item(lo, hi)])
        }
        (None, None, op, Some(port)) => {
            let op = op.unwrap_or("eq");
            let items = match op {
                "eq" if port > 0 => vec![PortItem::Single(port)],
                "lte" if port > 0 => vec![item(1, port)],
                "gte" => vec![item(port.max(1), 65535)],
                "neq" => {
                    let mut v = Vec::new();
                    if port > 1 {
                        v.push(item(1, port - 1));
                    }
                    if port < 65535 {
                        v.push(item(port.saturating_add(1).max(1), 65535));
                    }
                    v
                }
                "eq" | "lte" => {
                    p.deviation(at, "port-zero", "port 0 is no usable port; skipped");
                    return None;
                }
                other => {
                    p.deviation(
                        &join(at, "operator"),
                        "unknown-operator",
                        format!(
                            "`{other}` is not an RFC 8519 operator (lte, gte, eq, neq); skipped"
                        ),
                    );
                    return None;
                }
            };
            Some(items)
        }
        _ => {
            p.deviation(
                at,
                "invalid-port-match",
                "a port match is either lower-port and upper-port, or [operator and] port (RFC 8519); skipped",
            );
            None
        }
    }
}

fn mud_match(m: &MudMatch, at: &str, p: &mut Problems) -> Option<Option<Peer>> {
    if !members_ok(&m.other, at, p) {
        return None;
    }
    let mut found: Vec<Peer> = Vec::new();
    if let Some(h) = &m.manufacturer {
        if !is_hostname(h) {
            p.deviation(
                &join(at, "manufacturer"),
                "invalid-manufacturer",
                format!("`{h}` is not a host name; skipped"),
            );
            return None;
        }
        found.push(Peer::Manufacturer(h.to_ascii_lowercase()));
    }
    if m.same_manufacturer.is_some() {
        found.push(Peer::SameManufacturer);
    }
    if let Some(u) = &m.model {
        found.push(Peer::Model(u.clone()));
    }
    if m.local_networks.is_some() {
        found.push(Peer::LocalNetworks);
    }
    if let Some(c) = &m.controller {
        if !is_uri(c) {
            p.deviation(
                &join(at, "controller"),
                "controller-not-uri",
                format!("`{c}` is not a URI (RFC 8520 section 4.5 types `controller` as inet:uri); read as a role the site binds"),
            );
        }
        if c != URN_DNS && c != URN_NTP {
            if let Some(rest) = c.strip_prefix("urn:ietf:params:mud:") {
                p.deviation(
                    &join(at, "controller"),
                    "unregistered-controller",
                    format!("`{c}` is not a registered MUD URN (only :dns and :ntp are, RFC 8520 section 17.7); read as a role `{rest}` the site binds"),
                );
            }
        }
        found.push(Peer::Controller(c.clone()));
    }
    if m.my_controller.is_some() {
        found.push(Peer::MyController);
    }
    if found.len() > 1 {
        p.warning(
            at,
            "combined-peer",
            format!(
                "several MUD abstractions in one ACE ({}); Portolan keeps the first",
                found.iter().map(peer_text).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    Some(found.into_iter().next())
}
