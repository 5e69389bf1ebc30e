//! From the typed MUD file to a flat list of [`AceRule`]s: one per usable ACE, with the peer, the
//! protocol and the ports seen from the device's side (the peer's port, the device's port), and
//! checks of the `ietf-mud` container. ACEs that cannot be read as a permit between the device
//! and one peer are skipped with a warning naming their path; nothing is dropped silently.
//!
//! `rules/ace.rs` reads one ACE; `rules/matches.rs` reads its L3 and L4 matches.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use portolan_model::syntax::{check_wildcard, is_hostname};
use portolan_model::PortItem;

use crate::code::Code;
use crate::problem::{join, Problems};
use crate::schema::{
    Ace, Acl, Eth, Icmp, Ipv4, Ipv6, MudFile, MudMatch, Other, PortMatch, Tcp, Udp, URN_DNS,
    URN_NTP,
};

mod ace;
mod matches;

use ace::read_ace;
pub use ace::rule_of;
pub use matches::peer_text;

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
            Code::UnsupportedVersion,
            format!(
                "MUD version {} is not supported (RFC 8520 defines 1)",
                mud.mud_version
            ),
        );
    }
    if !is_https_url(&mud.mud_url) {
        p.deviation(
            &join(MUD, "mud-url"),
            Code::MudUrlScheme,
            format!(
                "`{}` is not an https URL (RFC 8520 section 3.2)",
                mud.mud_url
            ),
        );
    }
    if !mud.last_update.is_empty() && !crate::timestamp::is_date_and_time(&mud.last_update) {
        p.deviation(
            &join(MUD, "last-update"),
            Code::LastUpdateFormat,
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
                Code::CacheValidityRange,
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
                Code::ExtensionName,
                "extension names are 1 to 40 characters",
            );
        }
        if e == crate::ext::NAME {
            uses_portolan = true;
        } else {
            p.warning(
                &at,
                Code::UnknownExtension,
                format!("extension `{e}` is not known to Portolan; its data is ignored"),
            );
        }
    }
    if mud.portolan.is_some() && !uses_portolan {
        p.deviation(
            &join(MUD, "portolan:profile"),
            Code::UndeclaredExtension,
            "extension data without `portolan` in `extensions` (RFC 8520 section 3.7); ignored",
        );
    }
    for (k, _) in &mud.other {
        let at = join(MUD, k);
        if k.contains(':') && !mud.extensions.is_empty() {
            p.warning(
                &at,
                Code::IgnoredMember,
                format!("`{k}` belongs to an extension Portolan does not know; ignored"),
            );
        } else {
            p.deviation(
                &at,
                Code::UnknownMember,
                format!("`{k}` is not an RFC 8520 leaf; ignored"),
            );
        }
    }
    for (k, _) in &file.other {
        p.warning(
            &join("", k),
            Code::IgnoredMember,
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
                Code::DuplicateAclName,
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
                    Code::MissingAcl,
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
                Code::UnreferencedAcl,
                format!("ACL `{name}` is named by neither policy; a MUD manager does not apply it, so it is ignored"),
            );
        }
    }
    if file.acls.acl.is_empty() {
        p.warning(
            ACLS,
            Code::NoAcls,
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
            Code::MissingAclType,
            "the ACL has no `type`; read from its matches",
        );
    } else if !crate::schema::ACL_TYPES.contains(&kind) {
        p.deviation(
            &join(at, "type"),
            Code::UnknownAclType,
            format!("`{kind}` is not an ACL type; the ACL is skipped"),
        );
        return;
    }
    for (k, _) in &acl.other {
        p.deviation(
            &join(at, k),
            Code::UnknownMember,
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
                    Code::DuplicateAceName,
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
                Code::DuplicateAceName,
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
                Code::UnsupportedMatch,
                format!("Portolan profiles cannot express a `{k}` match; the ACE is skipped rather than widened"),
            );
        } else {
            p.deviation(
                &join(at, k),
                Code::UnknownMember,
                format!(
                    "`{k}` is not an RFC 8519/8520 match; the ACE is skipped rather than widened"
                ),
            );
        }
        ok = false;
    }
    ok
}
