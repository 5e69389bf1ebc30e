//! Site values checked against the device's profile as strictly as the profile's own values,
//! and the silences a site can fall into, reported.
//!
//! - A param keeps its type at the site: `port` takes one port (a range or a list is refused,
//!   as the same value is as a profile default), `ports` a list of ports and ranges
//!   (`443, 2195-2196, 5223`), `host` a hostname or address, `enum` one of the profile's
//!   `values`, `string` one scalar. A refused value is reported once, where it is written,
//!   and flows that use it report nothing more about it.
//! - Flow conditions: a feature the site does not enable, a region other than the device's,
//!   a version outside the condition drop the flow; a region condition on a device without a
//!   region value is an error (`missing-param`), never a silent drop or a silent inclusion.
//! - `names-need-dns`: a device whose peers are DNS names while the firewall does not answer
//!   the site's DNS, or the device has no DNS flow to it (read from its own rules only).
//! - Warnings: a site without devices (`no-devices`; its forward chain drops everything), a
//!   device that ends up allowed nothing (`nothing-allowed`, with the reasons), a feature,
//!   param or version the site sets that no flow of the device's mode uses (`unused-feature`,
//!   `unused-param`, `unused-version`).
//! - `accept:` (lint findings the site accepts): each names a device of the site (if any), a
//!   flow of a profile the site uses (of that device's profile, when it names one), a code
//!   spelled as lint's are (lint checks it is one of its codes) and a reason.
//! - Choices (edition 2): the site's `choose:` picks, checked; the flows not picked open
//!   nothing, and a `policy: one` group left unpicked is `choice-required`.
//!
//! Over 800 lines: the site-value checks, the condition and choice evaluation (edition 2) and
//! the warnings after lowering all read one device view (`Dev`) and one tally; split, each
//! part would re-derive them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::site::{Provider, SiteCtx};
use super::values::{param_text, version_ok, Dev};
use crate::diag::{Code, Pos, Sink, Subject};
use crate::document::pos;
use crate::ir::Rule;
use crate::ports::{parse_item, PortError, PortItem};
use crate::profile::{ChoicePolicy, Condition, Flow, Param, ParamType, Profile, VersionReq};
use crate::protocol::Protocol;
use crate::raw::{RawPorts, Spanned};
use crate::raw_site::{RawDevice, RawSite};
use crate::syntax::{is_label, template_params};

/// `no-devices`: a site that declares no device still loads a forward chain with
/// `policy drop`.
pub(super) fn no_devices(sink: &mut Sink, raw: &RawSite) {
    if raw.devices.value.is_empty() {
        sink.warning(
            pos(&raw.devices),
            Code::NoDevices,
            format!(
                "site `{}` declares no devices: its policy admits nothing and drops all forwarded traffic",
                raw.site.value
            ),
            "add the site's devices under `devices`, or do not load this policy",
        );
    }
}

/// One site param value as items with their positions, and whether it was written as a list.
fn items(v: &Spanned<RawPorts>) -> (bool, Vec<(Pos, String)>) {
    match &v.value {
        RawPorts::One(s) => (false, vec![(pos(v), s.to_string())]),
        RawPorts::List(l) => (
            true,
            l.iter().map(|s| (pos(s), s.value.to_string())).collect(),
        ),
    }
}

/// Why a site value does not fit its param: where, what, and how to fix it.
struct Refusal {
    at: Pos,
    message: String,
    help: String,
}

fn refuse(at: Pos, message: String, help: impl Into<String>) -> Result<(), Refusal> {
    Err(Refusal {
        at,
        message,
        help: help.into(),
    })
}

/// A host param's name: dot-separated DNS labels (a profile may place it in front of a domain,
/// `{relay}.example.org`), not all digits at the end so that a malformed address is not taken
/// for a name.
fn is_host_name(t: &str) -> bool {
    let t = t.strip_suffix('.').unwrap_or(t);
    t.len() <= 253
        && t.split('.').all(is_label)
        && t.rsplit('.')
            .next()
            .is_some_and(|l| !l.chars().all(|c| c.is_ascii_digit()))
}

/// Checks one site value against its param's type.
fn check_value(param: &Param, v: &Spanned<RawPorts>) -> Result<(), Refusal> {
    let id = &param.id;
    let (list, items) = items(v);
    if items.is_empty() {
        return refuse(
            pos(v),
            format!("param `{id}` is given an empty list"),
            "give a value, or remove the param to use the profile's default",
        );
    }
    if list && param.kind != ParamType::Ports {
        let what = match param.kind {
            ParamType::Port => "a single port",
            ParamType::Host => "one hostname or address",
            ParamType::Enum => "one of its values",
            _ => "one value",
        };
        return refuse(
            pos(v),
            format!("param `{id}` takes {what}, not a list"),
            match param.kind {
                ParamType::Port => "give one port such as 5140; the profile declares `type: port`, so a list would open ports it does not state",
                _ => "give a single value",
            },
        );
    }
    match param.kind {
        ParamType::Port => {
            let (at, text) = &items[0];
            match parse_item(text) {
                Ok(PortItem::Single(_)) => Ok(()),
                Ok(PortItem::Range(a, b)) => refuse(
                    *at,
                    format!("param `{id}` is a single port; `{a}-{b}` is a range of {} ports", u32::from(b) - u32::from(a) + 1),
                    "give the one port the device uses; the profile declares `type: port`, so a range would open ports it does not state",
                ),
                _ => refuse(
                    *at,
                    format!("param `{id}`: `{}` is not a port 1..65535", text.trim()),
                    "give one port such as 5140",
                ),
            }
        }
        ParamType::Ports => {
            let parts: Vec<(Pos, &str)> = items
                .iter()
                .flat_map(|(at, t)| t.split(',').map(move |p| (*at, p)))
                .collect();
            for (at, part) in parts {
                match parse_item(part) {
                    Ok(PortItem::Single(_) | PortItem::Range(..)) => {}
                    Ok(PortItem::Param(_)) => {
                        return refuse(
                            at,
                            format!("param `{id}`: a site gives ports, not a `{}` reference", part.trim()),
                            "write the ports, e.g. \"443, 2195-2196, 5223\"",
                        )
                    }
                    Err(PortError::Reversed(a, b)) => {
                        return refuse(
                            at,
                            format!("param `{id}`: `{a}-{b}` is a reversed range"),
                            format!("write it low to high: \"{b}-{a}\""),
                        )
                    }
                    Err(_) => {
                        return refuse(
                            at,
                            format!("param `{id}`: `{}` is not a port or range 1..65535", part.trim()),
                            "write ports and ranges, e.g. \"443, 2195-2196, 5223\" or [443, \"2195-2196\"]",
                        )
                    }
                }
            }
            Ok(())
        }
        ParamType::Host => {
            let (at, text) = &items[0];
            let t = text.trim();
            if t.parse::<IpAddr>().is_ok() || is_host_name(t) {
                Ok(())
            } else {
                refuse(
                    *at,
                    format!("param `{id}`: `{t}` is not a hostname or address"),
                    "give a name such as relay.example.org (letters, digits and '-' in dot-separated labels), or an address",
                )
            }
        }
        ParamType::Enum => {
            let (at, text) = &items[0];
            if param.values.iter().any(|x| x == text) {
                Ok(())
            } else {
                refuse(
                    *at,
                    format!(
                        "param `{id}`: `{text}` is not one of the values the profile documents ({})",
                        param.values.join(", ")
                    ),
                    format!("use one of: {}", param.values.join(", ")),
                )
            }
        }
        ParamType::String => {
            let (at, text) = &items[0];
            if text.trim().is_empty() {
                refuse(
                    *at,
                    format!("param `{id}` is given an empty string"),
                    "give a value, or remove the param to use the profile's default",
                )
            } else {
                Ok(())
            }
        }
    }
}

/// A port param with a documented `range` (edition 2): the site's value must lie inside it,
/// or the rule would open ports the vendor does not state.
fn check_range(param: &Param, v: &Spanned<RawPorts>) -> Result<(), Refusal> {
    let Some(range) = &param.range else {
        return Ok(());
    };
    let (_, items) = items(v);
    for (at, text) in &items {
        for part in text.split(',') {
            let outside = match parse_item(part) {
                Ok(PortItem::Single(n)) => !range.contains(n),
                Ok(PortItem::Range(a, b)) => (a..=b).any(|n| !range.contains(n)),
                _ => false,
            };
            if outside {
                return refuse(
                    *at,
                    format!(
                        "param `{}`: `{}` lies outside the range the profile documents ({range})",
                        param.id,
                        part.trim()
                    ),
                    format!("give the port in use, within {range}"),
                );
            }
        }
    }
    Ok(())
}

/// Checks every param a device sets against the profile's declaration; returns the ids whose
/// value was refused (unknown ids are reported by the caller).
pub(super) fn params(sink: &mut Sink, d: &RawDevice, p: &Profile) -> BTreeSet<String> {
    let mut bad = BTreeSet::new();
    for (id, v) in &d.params {
        let Some(param) = p.param(id) else { continue };
        if let Err(r) = check_value(param, v).and_then(|()| check_range(param, v)) {
            sink.error_about(
                Subject::Param(id.clone()),
                r.at,
                Code::InvalidParam,
                format!("device `{}`: {}", d.id.value, r.message),
                r.help,
            );
            bad.insert(id.clone());
        }
    }
    bad
}

/// Why a flow does not apply to a device.
pub(super) enum Skip {
    Feature(String),
    Region,
    Version,
    /// A combined condition (`not`/`any`/`all`, edition 2) does not hold.
    Combined,
    /// Another flow of its choice group is the one the site picked.
    NotChosen,
    /// A flow that applies replaces it.
    Replaced,
}

/// A condition's value for a device: a version condition on a device whose version the site
/// does not give is unknown (and the flow is included, with `version-unknown`, as in the
/// first edition).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Truth {
    Yes,
    No,
    Unknown,
}

/// Whether every condition of `f` holds for the device; the first that does not, if any.
/// A region condition needs the device's region: without one it is `missing-param`.
pub(super) fn conditions(
    sink: &mut Sink,
    dev: &Dev,
    f: &Flow,
    version: Option<&[u32]>,
) -> Option<Skip> {
    // Features first: a flow the site did not enable asks nothing of the region or version.
    for c in &f.conditions {
        if let Condition::Feature(x) = c {
            if !dev.d.features.iter().any(|y| &y.value == x) {
                return Some(Skip::Feature(x.clone()));
            }
        }
    }
    let mut skip = None;
    for c in &f.conditions {
        let this = match c {
            Condition::Feature(_) => None,
            Condition::Region(_) | Condition::Version(_) => {
                let skip = match c {
                    Condition::Region(_) => Skip::Region,
                    _ => Skip::Version,
                };
                (truth(sink, dev, f, version, c) == Truth::No).then_some(skip)
            }
            _ => (truth(sink, dev, f, version, c) == Truth::No).then_some(Skip::Combined),
        };
        skip = skip.or(this);
    }
    skip
}

/// A condition's value, three-valued over an unknown version (Kleene's logic: `not` keeps
/// unknown, `any` is yes when one is, `all` no when one is).
fn truth(sink: &mut Sink, dev: &Dev, f: &Flow, version: Option<&[u32]>, c: &Condition) -> Truth {
    let of = |b: bool| if b { Truth::Yes } else { Truth::No };
    match c {
        Condition::Feature(x) => of(dev.d.features.iter().any(|y| &y.value == x)),
        Condition::Region(r) => of(dev.param(sink, "region", &f.id).is_some_and(|v| &v == r)),
        Condition::Version(req) => match version {
            Some(v) => of(version_ok(v, req)),
            None => {
                version_unknown(sink, dev, f, req);
                Truth::Unknown
            }
        },
        Condition::Not(inner) => match truth(sink, dev, f, version, inner) {
            Truth::Yes => Truth::No,
            Truth::No => Truth::Yes,
            Truth::Unknown => Truth::Unknown,
        },
        Condition::Any(l) | Condition::All(l) => {
            let vals: Vec<Truth> = l.iter().map(|x| truth(sink, dev, f, version, x)).collect();
            let (decides, otherwise) = if matches!(c, Condition::Any(_)) {
                (Truth::Yes, Truth::No)
            } else {
                (Truth::No, Truth::Yes)
            };
            if vals.contains(&decides) {
                decides
            } else if vals.contains(&Truth::Unknown) {
                Truth::Unknown
            } else {
                otherwise
            }
        }
    }
}

/// The site's picks in the profile's choice groups (`choose:`, edition 2), checked; returns
/// the flows of the device's mode that open nothing because another flow of their group was
/// picked. A `policy: one` group of which two or more flows would apply here (enabled, their
/// conditions holding: `applying`) without a pick is `choice-required`.
pub(super) fn choices(
    sink: &mut Sink,
    dev: &Dev,
    mode: Option<&str>,
    applying: &[&str],
) -> BTreeSet<String> {
    let (d, p) = (dev.d, dev.p);
    let mut out = BTreeSet::new();
    for (group, pick) in &d.choose {
        let Some(a) = p.alternatives.iter().find(|a| &a.id == group) else {
            let known: Vec<&str> = p.alternatives.iter().map(|a| a.id.as_str()).collect();
            sink.error(
                pos(pick),
                Code::UnknownChoice,
                format!(
                    "device `{}`: profile `{}` has no choice group `{group}`",
                    d.id.value, p.id
                ),
                if known.is_empty() {
                    "the profile has no `alternatives`; remove `choose:`".to_string()
                } else {
                    format!("choice groups: {}", known.join(", "))
                },
            );
            continue;
        };
        let here = a.flows_in(p, mode);
        if !here.contains(&pick.value.as_str()) {
            let in_mode = mode.map(|m| format!(" in mode `{m}`")).unwrap_or_default();
            sink.error(
                pos(pick),
                Code::InvalidChoice,
                format!(
                    "device `{}`: `{}` is no flow of choice group `{group}`{in_mode}",
                    d.id.value, pick.value
                ),
                format!("pick one of: {}", here.join(", ")),
            );
        }
    }
    for a in &p.alternatives {
        let here = a.flows_in(p, mode);
        match d.choose.get(&a.id) {
            Some(pick) => out.extend(
                here.into_iter()
                    .filter(|f| *f != pick.value)
                    .map(String::from),
            ),
            None if a.policy == ChoicePolicy::One
                && here.iter().filter(|f| applying.contains(f)).count() > 1 =>
            {
                sink.error(
                    pos(&d.profile),
                    Code::ChoiceRequired,
                    format!(
                        "device `{}`: profile `{}` says exactly one of {} is used (choice group `{}`); the site picks none",
                        d.id.value,
                        p.id,
                        here.join(", "),
                        a.id
                    ),
                    format!("add `choose: {{{}: {}}}` with the flow this device uses", a.id, here[0]),
                );
                out.extend(here.into_iter().map(String::from));
            }
            None => {}
        }
    }
    out
}

fn version_unknown(sink: &mut Sink, dev: &Dev, f: &Flow, req: &VersionReq) {
    sink.warning(
        dev.here(),
        Code::VersionUnknown,
        format!(
            "device `{}`: flow `{}/{}` applies only to version {req}; the site does not say the device's version, so it is included",
            dev.d.id.value, dev.p.id, f.id
        ),
        "add `version:` to the device",
    );
}

/// What became of a device's flows, for the warnings after its rules are made.
#[derive(Default)]
pub(super) struct Tally<'a> {
    /// Flows that apply: enabled, every condition holding (documented ones included).
    pub active: Vec<&'a Flow>,
    pub switched_off: usize,
    /// Features that flows of the mode wait for.
    pub missing_features: BTreeSet<String>,
    pub by_feature: usize,
    pub by_region: usize,
    pub by_version: usize,
    /// Flows whose combined condition (edition 2) does not hold.
    pub by_condition: usize,
    /// Flows of a choice group the site picked another flow of.
    pub not_chosen: usize,
    /// Flows another applying flow replaces.
    pub replaced: usize,
    /// Flows listed as documented but not enforced.
    pub documented: usize,
    /// Rules made.
    pub rules: usize,
}

impl<'a> Tally<'a> {
    pub fn skipped(&mut self, why: Skip) {
        match why {
            Skip::Feature(x) => {
                self.by_feature += 1;
                self.missing_features.insert(x);
            }
            Skip::Region => self.by_region += 1,
            Skip::Version => self.by_version += 1,
            Skip::Combined => self.by_condition += 1,
            Skip::NotChosen => self.not_chosen += 1,
            Skip::Replaced => self.replaced += 1,
        }
    }
}

/// The warnings once a device's rules are made: values it sets that nothing reads, and (when
/// none of its diagnostics since `first_diag` is an error) a device allowed nothing.
pub(super) fn after_rules(
    sink: &mut Sink,
    dev: &Dev,
    mode: Option<&str>,
    version_valid: bool,
    t: &Tally,
    first_diag: usize,
) {
    unused_values(sink, dev, mode, version_valid, t);
    crate::work::visit(sink.diagnostics.len() - first_diag);
    let clean = !sink.diagnostics[first_diag..]
        .iter()
        .any(crate::diag::Diagnostic::is_error);
    if clean && t.rules == 0 {
        nothing_allowed(sink, dev, mode, t);
    }
}

/// `nothing-allowed`: a device for which no rule was made although nothing was wrong with it.
fn nothing_allowed(sink: &mut Sink, dev: &Dev, mode: Option<&str>, t: &Tally) {
    let n = |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    let mut why = Vec::new();
    if t.by_feature > 0 {
        let list: Vec<&str> = t.missing_features.iter().map(String::as_str).collect();
        why.push(format!(
            "{} a feature the site does not enable ({})",
            n(t.by_feature, "flow needs", "flows need"),
            list.join(", ")
        ));
    }
    if t.switched_off > 0 {
        why.push(n(
            t.switched_off,
            "flow is switched off",
            "flows are switched off",
        ));
    }
    if t.by_region > 0 {
        why.push(n(
            t.by_region,
            "flow is for another region",
            "flows are for another region",
        ));
    }
    if t.by_version > 0 {
        why.push(n(
            t.by_version,
            "flow is for other versions",
            "flows are for other versions",
        ));
    }
    for (k, one, many) in [
        (
            t.by_condition,
            "flow's condition does not hold",
            "flows' conditions do not hold",
        ),
        (
            t.not_chosen,
            "flow is not the one chosen",
            "flows are not the ones chosen",
        ),
        (
            t.replaced,
            "flow is replaced by another",
            "flows are replaced by others",
        ),
    ] {
        if k > 0 {
            why.push(n(k, one, many));
        }
    }
    if t.documented > 0 {
        why.push(n(
            t.documented,
            "flow is documented but not enforced by a firewall",
            "flows are documented but not enforced by a firewall",
        ));
    }
    if why.is_empty() {
        why.push(if t.active.is_empty() {
            "the profile has no flow here".to_string()
        } else {
            n(
                t.active.len(),
                "flow applies but yields no rule",
                "flows apply but yield no rule",
            )
        });
    }
    let mode = mode.map(|m| format!(" in mode `{m}`")).unwrap_or_default();
    let help = if t.by_feature > 0 {
        let list: Vec<&str> = t.missing_features.iter().map(String::as_str).collect();
        format!(
            "enable the features this device really uses (of {}), or remove the device if it must have no network access",
            list.join(", ")
        )
    } else {
        "check the device's mode, flows and version, or remove the device if it must have no network access".to_string()
    };
    sink.warning(
        dev.here(),
        Code::NothingAllowed,
        format!(
            "device `{}` is allowed nothing: of profile `{}`{mode}, {}; all its traffic is dropped",
            dev.d.id.value,
            dev.p.id,
            why.join(", ")
        ),
        help,
    );
}

/// The params a flow reads when it applies to this device: its ports, source ports and
/// protocol, and the hostname templates of its peer unless the site binds that peer.
fn params_of<'f>(f: &'f Flow, p: &'f Profile, d: &RawDevice) -> Vec<&'f str> {
    let mut out: Vec<&str> = f.ports.params().chain(f.src_ports.params()).collect();
    if let Protocol::Param(x) = &f.protocol {
        out.push(x);
    }
    if !d.bind.contains_key(f.peer()) {
        if let Some(e) = p.endpoint(f.peer()) {
            for h in e.hosts.iter().chain(&e.domains) {
                out.extend(template_params(h).unwrap_or_default());
            }
        }
    }
    out
}

/// `unused-feature`, `unused-param`, `unused-version`: what the site sets for a device that
/// no flow of its mode reads, so setting it changes nothing (often a typo for another value or
/// a wrong mode).
fn unused_values(sink: &mut Sink, dev: &Dev, mode: Option<&str>, version_valid: bool, t: &Tally) {
    let (d, p) = (dev.d, dev.p);
    let in_mode = mode.map(|m| format!(" in mode `{m}`")).unwrap_or_default();
    let flows: Vec<&Flow> = p.flows_in(mode).collect();
    for f in &d.features {
        let known = p.features.iter().any(|x| x.id == f.value);
        let used = flows.iter().any(|fl| {
            fl.conditions
                .iter()
                .flat_map(Condition::leaves)
                .any(|c| matches!(c, Condition::Feature(x) if *x == f.value))
        });
        if known && !used {
            sink.warning(
                pos(f),
                Code::UnusedFeature,
                format!(
                    "device `{}`: no flow of profile `{}`{in_mode} depends on feature `{}`, so enabling it changes nothing",
                    d.id.value, p.id, f.value
                ),
                "remove it, or check the device's mode",
            );
        }
    }
    let regional = flows.iter().any(|fl| {
        fl.conditions
            .iter()
            .flat_map(Condition::leaves)
            .any(|c| matches!(c, Condition::Region(_)))
    });
    for (id, v) in &d.params {
        if p.param(id).is_none() || dev.bad.contains(id) {
            continue;
        }
        let used = (id == "region" && regional)
            || t.active
                .iter()
                .any(|f| params_of(f, p, d).contains(&id.as_str()));
        if !used {
            sink.warning(
                pos(v),
                Code::UnusedParam,
                format!(
                    "device `{}`: no flow of profile `{}`{in_mode} that applies here uses param `{id}`, so setting it changes nothing",
                    d.id.value, p.id
                ),
                "remove it, or enable the feature or flow that uses it",
            );
        }
    }
    if let Some(v) = &d.version {
        let conditional = flows.iter().any(|fl| {
            fl.conditions
                .iter()
                .flat_map(Condition::leaves)
                .any(|c| matches!(c, Condition::Version(_)))
        });
        if version_valid && !conditional {
            sink.warning(
                pos(v),
                Code::UnusedVersion,
                format!(
                    "device `{}`: no flow of profile `{}`{in_mode} depends on the version, so `version: {}` changes nothing",
                    d.id.value, p.id, v.value
                ),
                "remove it, or check the device's profile and mode",
            );
        }
    }
}

/// Hostname and wildcard peers are enforced through sets the firewall's DNS server fills as it
/// answers. Warns when that cannot happen for a device: the site's DNS is not this firewall,
/// or the device has no DNS flow of its own to ask it. `rules` are this device's own.
pub(super) fn names_need_dns(sink: &mut Sink, ctx: &SiteCtx, d: &RawDevice, rules: &[Rule]) {
    // At most two passes over the rules given: counted as both.
    crate::work::visit(2 * rules.len());
    let mine = || rules.iter();
    let Some(named) = mine().find(|r| !r.peers.names.is_empty() || !r.peers.wildcards.is_empty())
    else {
        return;
    };
    let flow = named.provenance();
    if !matches!(ctx.dns, Some(Provider::Firewall)) {
        sink.warning(
            pos(&d.id),
            Code::NamesNeedDns,
            format!("device `{}`: `{flow}` names its peers by DNS name, and this firewall does not answer the site's DNS, so the name sets are not filled at run time", d.id.value),
            "set `services: {dns: firewall}` and run dnsmasq with `compile --target dnsmasq`, or compile with `--resolve`",
        );
    } else if !mine().any(Rule::is_dns_to_firewall) {
        sink.warning(
            pos(&d.id),
            Code::NamesNeedDns,
            format!("device `{}`: `{flow}` names its peers by DNS name, but the device has no DNS flow to this firewall, so its own lookups never fill the name sets", d.id.value),
            "bind or enable the profile's DNS flow, or compile with `--resolve`",
        );
    }
}

/// The device's value of a param, `None` when it was refused (already reported).
pub(super) fn value(dev: &Dev, id: &str) -> Option<String> {
    if dev.bad.contains(id) {
        return None;
    }
    param_text(dev.d, dev.p, id)
}

/// The site's `accept:` entries: a device of the site, a flow its profiles have, a code in
/// lint's spelling (kebab-case; which codes exist is lint's to say), a reason.
pub(super) fn accepts(sink: &mut Sink, raw: &RawSite, policy: &crate::ir::Policy) {
    for a in &raw.accept {
        let a = &a.value;
        let code = &a.code.value;
        let kebab = !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !kebab {
            sink.error(
                pos(&a.code),
                Code::InvalidValue,
                format!("`{code}` is not a lint code"),
                "use a code `portolan lint` prints, such as plaintext-service",
            );
        }
        if a.reason.value.trim().is_empty() {
            sink.error(
                pos(&a.reason),
                Code::InvalidValue,
                "an acceptance needs a reason",
                "say why the finding is acceptable here",
            );
        }
        let group = match &a.device {
            // A multi-homed device is named by its id (any of its interface groups has its
            // profile) or by one group, `DEVICE.INTERFACE`.
            Some(d) => match policy
                .groups
                .iter()
                .find(|g| g.id == d.value || g.device() == d.value)
            {
                Some(g) => Some(g),
                None => {
                    if !raw.devices.value.iter().any(|x| x.id.value == d.value) {
                        sink.error(
                            pos(d),
                            Code::UnknownDevice,
                            format!("device `{}` is not declared", d.value),
                            "use the id of a device or group under `devices`",
                        );
                    }
                    continue;
                }
            },
            None => None,
        };
        let flow = &a.flow.value;
        let (profile_id, flow_id) = match flow.split_once('/') {
            Some((p, f)) => (Some(p), f),
            None => (None, flow.as_str()),
        };
        let candidates: Vec<&Profile> = match group {
            Some(g) => policy.profiles.get(&g.profile).into_iter().collect(),
            None => policy.profiles.values().collect(),
        };
        let profiles: Vec<&Profile> = candidates
            .iter()
            .copied()
            .filter(|p| profile_id.is_none_or(|id| p.id == id))
            .collect();
        let whose = match group {
            Some(g) => format!("device `{}`'s profile `{}`", g.id, g.profile),
            None => "the site's profiles".to_string(),
        };
        let user = match group {
            Some(g) => format!("device `{}`", g.id),
            None => "any device of the site".to_string(),
        };
        if profiles.is_empty() {
            let id = profile_id.unwrap_or_default();
            sink.error(
                pos(&a.flow),
                Code::UnknownProfile,
                format!("`{flow}`: profile `{id}` is not used by {user}"),
                "write `profile/flow` with a profile the site's devices use, or the flow id alone",
            );
            continue;
        }
        if !profiles
            .iter()
            .any(|p| p.flows.iter().any(|f| f.id == flow_id))
        {
            let mut known: Vec<String> = profiles
                .iter()
                .flat_map(|p| p.flows.iter().map(move |f| format!("{}/{}", p.id, f.id)))
                .collect();
            known.sort();
            known.dedup();
            let more = known.len().saturating_sub(8);
            known.truncate(8);
            let list = if more > 0 {
                format!("{}, and {more} more", known.join(", "))
            } else {
                known.join(", ")
            };
            sink.error(
                pos(&a.flow),
                Code::UnknownFlow,
                format!("`{flow}` is not a flow of {whose}"),
                format!("known: {list}"),
            );
        }
    }
}
