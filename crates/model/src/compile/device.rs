//! One device (group) of a site: checked against its profile and the site into a [`Checked`]
//! device whose every value is resolved and typed, then lowered ([`super::lower`]) into rules,
//! then the warnings that read what it became (`names-need-dns`, `unused-*`,
//! `nothing-allowed`). Checking reports every problem; lowering reports none.

use crate::diag::{Code, Sink, Subject};
use crate::document::pos;
use crate::ir::*;
use crate::ports::PortSpec;
use crate::profile::*;
use crate::protocol::Protocol;
use crate::raw::Spanned;
use crate::raw_site::*;

use super::bindings::Binding;
use super::peers::bindings;
use super::site::{SiteCtx, SiteProxy};
use super::site_check::{self, Tally};
use super::values::Dev;

/// A device checked against its profile and the site: every value its rules need, resolved
/// and typed. Lowering ([`super::lower`]) reads only this, and reports nothing.
pub(super) struct Checked<'a> {
    pub profile: &'a Profile,
    /// The flows that apply, in the profile's order.
    pub flows: Vec<CheckedFlow<'a>>,
}

/// Where a checked device's flows are lowered: one IR group (the device, or one interface of
/// a multi-homed device) and its zone, for broadcast and multicast lowering.
pub(super) struct Placement<'a> {
    pub group: &'a str,
    /// The profile's interface the group is; `None`: the whole device, every flow.
    pub interface: Option<&'a str>,
    pub zone: Option<&'a Zone>,
}

impl CheckedFlow<'_> {
    pub fn flow(&self) -> &Flow {
        match self {
            CheckedFlow::Documented { flow, .. } => flow,
            CheckedFlow::Enforced(e) => e.flow,
        }
    }
}

/// One flow that applies to a checked device.
pub(super) enum CheckedFlow<'a> {
    /// Listed in `Policy.documented` with the reason, not enforced (tunnelled, link layer).
    Documented { flow: &'a Flow, reason: String },
    /// Enforced, with this device's values.
    Enforced(Box<Enforced<'a>>),
}

/// A flow's values for one device, each checked.
pub(super) struct Enforced<'a> {
    pub flow: &'a Flow,
    /// IANA protocol number.
    pub protocol: u8,
    pub ports: Vec<PortRange>,
    /// The initiator's source ports.
    pub src_ports: Vec<PortRange>,
    pub peers: Peers,
    /// The flow goes through the site's proxy: only the device's leg to it is opened.
    pub via: Option<Via>,
}

/// The site's proxy as a proxied flow reaches it.
pub(super) struct Via {
    /// The proxy: this firewall or its addresses.
    pub proxy: Peers,
    pub port: u16,
    pub connect_only: bool,
}

/// What checking a device leaves for the warnings that follow its lowering.
pub(super) struct Findings<'a> {
    pub dev: Dev<'a>,
    /// Whether the device's `version:` (if any) is a dotted version.
    pub version_valid: bool,
    pub tally: Tally<'a>,
}

/// Compiles one device (group): checks it, lowers it into `policy`, then the warnings that
/// read its rules. Only this device's rules and diagnostics are read, so a site's compile
/// stays linear in its devices.
pub(super) fn device(
    sink: &mut Sink,
    ctx: &SiteCtx,
    d: &RawDevice,
    bindings: &[Binding],
    p: &Profile,
    mode: Option<&str>,
    policy: &mut Policy,
) {
    let first_diag = sink.diagnostics.len();
    let (checked, mut findings) = check(sink, ctx, d, p, mode);
    let first_rule = policy.rules.len();
    let first_documented = policy.documented.len();
    // Each binding gets the flows of its interface only (a device without interfaces: all).
    for b in bindings {
        let at = Placement {
            group: &b.group,
            interface: b.interface.as_deref(),
            zone: ctx.zones.iter().find(|z| z.id == b.zone),
        };
        super::lower::device(&checked, &at, policy);
    }
    site_check::names_need_dns(sink, ctx, d, &policy.rules[first_rule..]);
    super::dhcp_server::conflict(sink, ctx, d, p, bindings, &findings.tally.active);
    findings.tally.documented = policy.documented.len() - first_documented;
    findings.tally.rules = policy.rules.len() - first_rule;
    site_check::after_rules(
        sink,
        &findings.dev,
        mode,
        findings.version_valid,
        &findings.tally,
        first_diag,
    );
}

/// Checks a device against its profile (in mode `mode`) and the site: unknown features,
/// flows, params and endpoints, its version, each site value against its declared type, the
/// flows' conditions, and for each flow that applies its protocol, peers and ports. Every
/// problem goes to `sink`; a flow with one is left out of [`Checked`].
fn check<'a>(
    sink: &mut Sink,
    ctx: &'a SiteCtx,
    d: &'a RawDevice,
    p: &'a Profile,
    mode: Option<&'a str>,
) -> (Checked<'a>, Findings<'a>) {
    let bad = site_check::params(sink, d, p);
    let bound = d
        .bind
        .iter()
        .filter(|(id, _)| p.endpoint(id).is_some())
        .map(|(id, b)| {
            // The device's own segment is its zone's networks: a binding could only widen it.
            if p.endpoint(id).is_some_and(|e| e.segment) {
                sink.error(
                    pos(b),
                    Code::InvalidBinding,
                    format!(
                        "device `{}`: endpoint `{id}` is the device's own segment, its zone's networks; it is not bound",
                        d.id.value
                    ),
                    format!("remove `{id}` from `bind`"),
                );
                return (id.clone(), None);
            }
            (id.clone(), bindings(sink, ctx, b))
        })
        .collect();
    let dev = Dev {
        d,
        p,
        unbound: Default::default(),
        bad,
        bound,
    };
    let mut tally = site_check::Tally::default();
    let flows: Vec<&Flow> = p.flows_in(mode).collect();
    let version = settings(sink, d, p, mode, &flows);
    let proxy = uses_proxy(sink, ctx, d);
    let mut applying: Vec<(&Flow, Option<&Spanned<RawFlowSetting>>)> = Vec::new();
    for f in flows.iter().copied() {
        let setting = d.flows.get(&f.id);
        if let Some(st) = setting {
            check_override(sink, d, p, f, st);
        }
        if setting.and_then(|s| s.value.enabled) == Some(false) {
            if !f.optional {
                sink.warning_about(
                    Subject::Flow(f.id.clone()),
                    setting.map_or(pos(&d.id), pos),
                    Code::RequiredFlowDisabled,
                    format!("device `{}`: flow `{}/{}` is switched off, but the source does not mark it optional", d.id.value, p.id, f.id),
                    "the device may not work without it; keep it unless you know it is not needed here",
                );
            }
            tally.switched_off += 1;
            continue;
        }
        if let Some(why) = site_check::conditions(sink, &dev, f, version.as_deref()) {
            tally.skipped(why);
            continue;
        }
        applying.push((f, setting));
    }
    // The site's picks in choice groups (edition 2): the flows not picked open nothing.
    let candidates: Vec<&str> = applying.iter().map(|(f, _)| f.id.as_str()).collect();
    let unchosen = site_check::choices(sink, &dev, mode, &candidates);
    applying.retain(|(f, _)| {
        let keep = !unchosen.contains(f.id.as_str());
        if !keep {
            tally.skipped(site_check::Skip::NotChosen);
        }
        keep
    });
    // A flow that applies takes the place of those it `replaces` (edition 2): they open
    // nothing. Validation forbids chains, so the order does not matter.
    let replaced: Vec<&str> = applying
        .iter()
        .flat_map(|(f, _)| f.replaces.iter().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    for (f, setting) in applying {
        if replaced.contains(&f.id.as_str()) {
            tally.skipped(site_check::Skip::Replaced);
            continue;
        }
        tally.active.push(f);
        if let Some(i) = &f.inside {
            out.push(CheckedFlow::Documented {
                flow: f,
                reason: format!(
                    "carried inside flow `{}`; the outer flow is enforced",
                    i.flow
                ),
            });
            continue;
        }
        if f.protocol == Protocol::Arp {
            out.push(CheckedFlow::Documented {
                flow: f,
                reason: "link-layer ARP; not filtered by an IP firewall".to_string(),
            });
            continue;
        }
        if let Some(mut e) = enforced(sink, ctx, &dev, f, setting) {
            e.via = proxy.and_then(|sp| via_proxy(sp, f, e.protocol));
            out.push(CheckedFlow::Enforced(Box::new(e)));
        }
    }
    let checked = Checked {
        profile: p,
        flows: out,
    };
    let findings = Findings {
        dev,
        version_valid: version.is_some(),
        tally,
    };
    (checked, findings)
}

/// A flow's values for the device (protocol, peers, ports, source ports), each checked; `None`
/// when one of them has a problem (reported to `sink`). The peers are checked even when the
/// protocol is missing, so that every problem of the device is reported at once.
fn enforced<'a>(
    sink: &mut Sink,
    ctx: &SiteCtx,
    dev: &Dev,
    f: &'a Flow,
    setting: Option<&Spanned<RawFlowSetting>>,
) -> Option<Enforced<'a>> {
    let p = dev.p;
    let protocol = dev.protocol(sink, f, setting.and_then(|s| s.value.protocol.as_ref()));
    let peers = p
        .endpoint(f.peer())
        .and_then(|e| dev.peers(sink, ctx, e, f));
    let protocol = protocol?;
    let site_ports_given = setting.and_then(|s| s.value.ports.as_ref());
    let spec = if protocol.has_ports() {
        &f.ports
    } else {
        &PortSpec::None
    };
    // A peer learnt from an SRV record brings its port (RFC 2782): a flow that leaves its
    // ports `unspecified` takes the record's, whatever it is; given ports bound it.
    let srv_port = matches!(spec, PortSpec::Unspecified)
        && site_ports_given.is_none()
        && peers.as_ref().is_some_and(|p| !p.srv.is_empty());
    let ports = if srv_port {
        Vec::new()
    } else {
        dev.ports(sink, spec, f, site_ports_given)?
    };
    let src_ports = if protocol.has_ports() {
        dev.ports(sink, &f.src_ports, f, None).unwrap_or_default()
    } else {
        Vec::new()
    };
    let peers = peers?;
    let number = protocol.number()?;
    Some(Enforced {
        flow: f,
        protocol: number,
        ports,
        src_ports,
        peers,
        via: None,
    })
}

/// The site's proxy when the device says it uses one (`proxy: true`); a device that does
/// while the site names no proxy is `unbound-service`, and its flows stay direct.
fn uses_proxy<'a>(sink: &mut Sink, ctx: &'a SiteCtx, d: &RawDevice) -> Option<&'a SiteProxy> {
    let on = d.proxy.as_ref().filter(|p| p.value)?;
    if ctx.proxy.is_none() {
        sink.error(
            pos(on),
            Code::UnboundService,
            format!(
                "device `{}` uses a proxy, but the site names none",
                d.id.value
            ),
            "add `services: {proxy: {at: firewall, port: 3128}}` (or the proxy's addresses), or remove `proxy: true`",
        );
    }
    ctx.proxy.as_ref()
}

/// Whether flow `f` (of IANA protocol `protocol`) goes through the site's proxy `sp`: the
/// profile says it can use an HTTP(S) proxy, the device opens it, it is unicast TCP (what an
/// HTTP proxy carries), and the proxy does not ask for credentials the flow cannot give.
/// Anything else keeps its direct rule.
fn via_proxy(sp: &SiteProxy, f: &Flow, protocol: u8) -> Option<Via> {
    let fp = f.proxy.as_ref()?;
    let ok = fp.http == Support::Supported
        && f.initiation == Initiation::Device
        && protocol == 6
        && f.cast == Cast::Unicast
        && !(sp.authenticated && fp.authenticated == Some(Support::Unsupported));
    ok.then(|| Via {
        proxy: sp.peers.clone(),
        port: sp.port,
        connect_only: fp.connect_only,
    })
}

/// The settings a device gives that its profile does not know (features, flows of its mode,
/// params, endpoints to bind), each an error where it is written; and its version, parsed
/// (`None`, and an error, when it is not a dotted version).
fn settings(
    sink: &mut Sink,
    d: &RawDevice,
    p: &Profile,
    mode: Option<&str>,
    flows: &[&Flow],
) -> Option<Vec<u32>> {
    for f in &d.features {
        if !p.features.iter().any(|x| x.id == f.value) {
            let known: Vec<&str> = p.features.iter().map(|x| x.id.as_str()).collect();
            sink.error_about(
                Subject::Feature(f.value.clone()),
                pos(f),
                Code::UnknownFeature,
                format!("profile `{}` has no feature `{}`", p.id, f.value),
                format!(
                    "{} features: {}",
                    crate::suggest::did_you_mean(&f.value, known.iter().copied()),
                    known.join(", ")
                )
                .trim_start()
                .to_string(),
            );
        }
    }
    for (id, s) in &d.flows {
        if !flows.iter().any(|f| &f.id == id) {
            sink.error_about(
                Subject::Flow(id.clone()),
                pos(s),
                Code::UnknownFlow,
                format!(
                    "profile `{}`{} has no flow `{id}`",
                    p.id,
                    mode.map(|m| format!(" in mode `{m}`")).unwrap_or_default()
                ),
                hint(
                    id,
                    flows.iter().map(|f| f.id.as_str()),
                    "use a flow id from `portolan show`",
                ),
            );
        }
    }
    for (id, v) in &d.params {
        if p.param(id).is_none() {
            sink.error_about(
                Subject::Param(id.clone()),
                pos(v),
                Code::UnknownParam,
                format!("profile `{}` has no param `{id}`", p.id),
                hint(
                    id,
                    p.params.iter().map(|x| x.id.as_str()),
                    "see the profile's params with `portolan doc`",
                ),
            );
        }
    }
    for (id, b) in &d.bind {
        if p.endpoint(id).is_none() {
            sink.error_about(
                Subject::Endpoint(id.clone()),
                pos(b),
                Code::UnknownEndpoint,
                format!("profile `{}` has no endpoint `{id}` to bind", p.id),
                hint(
                    id,
                    p.endpoints.iter().map(|x| x.id.as_str()),
                    "bind one of the profile's endpoints",
                ),
            );
        }
    }
    d.version.as_ref().and_then(|v| {
        let parsed: Option<Vec<u32>> = v.value.split('.').map(|x| x.trim().parse().ok()).collect();
        if parsed.is_none() {
            sink.error(
                pos(v),
                Code::InvalidVersion,
                format!("`{}` is not a dotted version", v.value),
                "write e.g. 2.9 or 1.2.11",
            );
        }
        parsed
    })
}

pub(super) fn check_mode(sink: &mut Sink, d: &RawDevice, p: &Profile) -> Option<String> {
    match &d.mode {
        None if !p.modes.is_empty() => {
            let modes: Vec<&str> = p.modes.iter().map(|m| m.id.as_str()).collect();
            let choices = modes.iter().map(|m| m.to_string()).collect();
            sink.error_about(
                Subject::Mode { choices },
                pos(&d.profile),
                Code::MissingMode,
                format!(
                    "profile `{}` has several modes; device `{}` chooses none",
                    p.id, d.id.value
                ),
                format!("add `mode:` with one of: {}", modes.join(", ")),
            );
            None
        }
        None => None,
        Some(m) if !p.has_mode(&m.value) => {
            let modes: Vec<&str> = p.modes.iter().map(|m| m.id.as_str()).collect();
            let help = if modes.is_empty() {
                "remove `mode:`, the profile has none".to_string()
            } else {
                format!("use one of: {}", modes.join(", "))
            };
            let choices = modes.iter().map(|m| m.to_string()).collect();
            sink.error_about(
                Subject::Mode { choices },
                pos(m),
                Code::UnknownMode,
                format!("profile `{}` has no mode `{}`", p.id, m.value),
                help,
            );
            None
        }
        Some(m) => Some(m.value.clone()),
    }
}

/// A site supplies only what the source leaves open: a protocol or ports written
/// `unspecified`. Overriding a value the vendor gives would make a rule cite a row it does
/// not enforce.
fn check_override(
    sink: &mut Sink,
    d: &RawDevice,
    p: &Profile,
    f: &Flow,
    st: &Spanned<RawFlowSetting>,
) {
    if let Some(sp) = &st.value.protocol {
        if !matches!(f.protocol, Protocol::Unspecified) {
            sink.error(
                pos(sp),
                Code::OverrideSpecified,
                format!("device `{}`: the source gives protocol {} for flow `{}/{}`", d.id.value, f.protocol, p.id, f.id),
                "a site may only supply values the source leaves `unspecified`; use a profile of your own for a different flow",
            );
        }
    }
    if let Some(sp) = &st.value.ports {
        if !matches!(f.ports, PortSpec::Unspecified) {
            let given = f.ports.to_strings().join(", ");
            sink.error(
                pos(sp),
                Code::OverrideSpecified,
                format!("device `{}`: the source gives the ports of flow `{}/{}` ({given})", d.id.value, p.id, f.id),
                "a site may only supply ports the source leaves `unspecified` (ports from a param are set under `params`)",
            );
        }
    }
}

/// `help`, led by "did you mean `x`?" when a known name is a typo away from `word`, and
/// followed by the known names.
fn hint<'a>(word: &str, known: impl Iterator<Item = &'a str> + Clone, help: &str) -> String {
    let names: Vec<&str> = known.clone().collect();
    let near = crate::suggest::did_you_mean(word, names.iter().copied());
    let list = if names.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", names.join(", "))
    };
    if near.is_empty() {
        format!("{help}{list}")
    } else {
        format!("{near} {help}{list}")
    }
}
