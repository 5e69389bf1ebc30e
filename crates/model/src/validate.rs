//! Raw profile → typed [`Profile`], reporting every problem at once. Each check has a stable
//! code; `docs/profile-format.md` describes the rules the checks enforce.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::diag::{from_yaml_error, Code, Diagnostic, Pos, Sink, Subject};
use crate::names::{
    check_wildcard, is_hostname, is_ident, is_profile_id, template_params, WildcardError,
};
use crate::ports::{parse_item, port_number, PortError, PortItem, PortSpec};
use crate::profile::*;
use crate::protocol::Protocol;
use crate::raw::*;

/// A validated profile and its warnings.
#[derive(Debug)]
pub struct Loaded<T> {
    pub value: T,
    pub warnings: Vec<Diagnostic>,
}

mod usage;

fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos::from(s.referenced)
}

/// Checks that the first key of the document is `portolan:`.
/// YAML forbids tabs in indentation; the parser reports them late and on the line before.
/// This finds the first one with its exact position.
pub fn check_tabs(file: &str, text: &str) -> Option<Diagnostic> {
    for (i, line) in text.lines().enumerate() {
        let rest = line.trim_start_matches([' ', '\t']);
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        let indent: &str = &line[..line.len() - rest.len()];
        if let Some(col) = indent.find('\t') {
            let mut sink = Sink::new(file);
            sink.error(
                Pos::new(i as u64 + 1, col as u64 + 1),
                Code::TabIndent,
                "a tab character in the indentation",
                "YAML indents with spaces only: replace the tab with spaces",
            );
            return sink.finish().pop();
        }
    }
    None
}

pub fn check_version_first(file: &str, text: &str) -> Option<Diagnostic> {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t.is_empty() || t.trim_start().starts_with('#') || t == "---" {
            continue;
        }
        if t.starts_with("portolan:") {
            return None;
        }
        let mut sink = Sink::new(file);
        sink.error(
            Pos::new(i as u64 + 1, 1),
            Code::MissingVersion,
            "the first key must be `portolan: 1`",
            "start the file with the line `portolan: 1`",
        );
        return sink.finish().pop();
    }
    let mut sink = Sink::new(file);
    sink.error(
        Pos::new(1, 1),
        Code::MissingVersion,
        "the file is empty",
        "start the file with `portolan: 1`",
    );
    sink.finish().pop()
}

/// Parses and validates a profile's text. `file` is only used in diagnostics.
pub fn profile_text(file: &str, text: &str) -> Result<Loaded<Profile>, Vec<Diagnostic>> {
    if let Some(d) = check_tabs(file, text).or_else(|| check_version_first(file, text)) {
        return Err(vec![d]);
    }
    let raw: RawProfile =
        serde_saphyr::from_str(text).map_err(|e| vec![from_yaml_error(file, &e)])?;
    let mut sink = Sink::new(file);
    let value = profile(&raw, &mut sink);
    let diags = sink.finish();
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(Loaded {
        value,
        warnings: diags,
    })
}

/// Ids declared once each; reports duplicates.
fn unique_ids<'a>(
    sink: &mut Sink,
    what: &str,
    ids: impl Iterator<Item = &'a Spanned<String>>,
) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
    for id in ids {
        check_ident(sink, &format!("{what} id"), id);
        if let Some(first) = seen.get(&id.value) {
            sink.error(
                pos(id),
                Code::DuplicateId,
                format!(
                    "{what} `{}` is declared twice (first at line {})",
                    id.value, first.line
                ),
                "give each one its own id",
            );
        } else {
            seen.insert(id.value.clone(), pos(id));
        }
    }
    seen.into_keys().collect()
}

struct Ctx<'a> {
    sources: BTreeSet<String>,
    params: HashMap<String, &'a RawParam>,
    features: BTreeSet<String>,
    modes: BTreeSet<String>,
    endpoints: BTreeSet<String>,
}

/// `portolan:` must be 1, the only format this Portolan reads (profiles and sites alike).
pub(crate) fn check_format_version(sink: &mut Sink, v: &Spanned<i64>) {
    if v.value != 1 {
        sink.error(
            pos(v),
            Code::UnsupportedVersion,
            format!("format version {} is not supported", v.value),
            "this Portolan reads `portolan: 1`",
        );
    }
}

/// An identifier (of a flow, endpoint, zone, device, site…), or `invalid-id` at its position.
pub(crate) fn check_ident(sink: &mut Sink, what: &str, id: &Spanned<String>) {
    if !is_ident(&id.value) {
        sink.error(
            pos(id),
            Code::InvalidId,
            format!("{what} `{}` is not a valid identifier", id.value),
            "use letters, digits, '-', '_' and '.', starting with a letter or digit",
        );
    }
}

/// Validates a raw profile; problems go to `sink`. The returned profile is meaningful only
/// when `sink` holds no error.
pub fn profile(raw: &RawProfile, sink: &mut Sink) -> Profile {
    check_format_version(sink, &raw.portolan);
    if !is_profile_id(&raw.id.value) {
        sink.error(
            pos(&raw.id),
            Code::InvalidId,
            format!("profile id `{}` is not valid", raw.id.value),
            "use lowercase letters, digits and '-'",
        );
    }
    let ctx = Ctx {
        sources: unique_ids(sink, "source", raw.sources.iter().map(|s| &s.id)),
        params: raw.params.iter().map(|p| (p.id.value.clone(), p)).collect(),
        features: unique_ids(sink, "feature", raw.features.iter().map(|f| &f.id)),
        modes: unique_ids(sink, "mode", raw.modes.iter().map(|m| &m.id)),
        endpoints: unique_ids(sink, "endpoint", raw.endpoints.iter().map(|e| &e.id)),
    };
    unique_ids(sink, "param", raw.params.iter().map(|p| &p.id));
    unique_ids(sink, "alternative", raw.alternatives.iter().map(|a| &a.id));

    let sources = raw
        .sources
        .iter()
        .map(|s| {
            if s.file.is_none() && s.url.is_none() {
                sink.error(
                    pos(&s.id),
                    Code::InvalidSource,
                    format!("source `{}` has neither `file` nor `url`", s.id.value),
                    "say where the document is",
                );
            }
            SourceDoc {
                id: s.id.value.clone(),
                title: s.title.clone(),
                file: s.file.clone(),
                url: s.url.clone(),
            }
        })
        .collect();
    let modes = raw
        .modes
        .iter()
        .map(|m| Mode {
            id: m.id.value.clone(),
            description: m.description.clone(),
            source: ctx.cite(sink, &m.source),
        })
        .collect();
    let features = raw
        .features
        .iter()
        .map(|m| Feature {
            id: m.id.value.clone(),
            description: m.description.clone(),
            source: ctx.cite(sink, &m.source),
        })
        .collect();
    let params = raw.params.iter().map(|p| ctx.param(sink, p)).collect();
    let endpoints: Vec<Endpoint> = raw
        .endpoints
        .iter()
        .map(|e| ctx.endpoint(sink, e))
        .collect();
    let flows: Vec<Flow> = raw.flows.iter().map(|f| ctx.flow(sink, f)).collect();
    ctx.flow_ids(sink, raw);
    ctx.tunnels(sink, raw, &flows);
    let alternatives = raw
        .alternatives
        .iter()
        .map(|a| ctx.alternative(sink, a, raw))
        .collect();
    let listens = ctx.listens(sink, raw);
    let notes = raw.notes.iter().map(|n| ctx.note(sink, n)).collect();

    if raw.flows.is_empty() {
        sink.warning(
            pos(&raw.id),
            Code::NoFlows,
            format!("profile `{}` lists no flow", raw.id.value),
            "add one flow per row of the vendor's tables",
        );
    }
    // Unused endpoints: a warning, since the profile may be a work in progress.
    for e in &raw.endpoints {
        if !raw
            .flows
            .iter()
            .any(|f| f.from.value == e.id.value || f.to.value == e.id.value)
        {
            sink.warning(
                pos(&e.id),
                Code::UnusedEndpoint,
                format!("endpoint `{}` is used by no flow", e.id.value),
                "remove it, or add the flow that uses it",
            );
        }
    }

    usage::unused_declarations(sink, raw, &endpoints, &flows, &listens);

    Profile {
        portolan: 1,
        id: raw.id.value.clone(),
        vendor: raw.vendor.clone(),
        product: raw.product.clone(),
        versions: raw.versions.clone(),
        description: raw.description.clone(),
        sources,
        modes,
        features,
        params,
        endpoints,
        flows,
        alternatives,
        listens,
        notes,
    }
}

impl Ctx<'_> {
    fn cite(&self, sink: &mut Sink, raw: &RawCitations) -> Vec<Citation> {
        raw.0
            .iter()
            .map(|c| {
                if !self.sources.contains(&c.doc.value) {
                    sink.error(
                        pos(&c.doc),
                        Code::UnknownSource,
                        format!("no source `{}` in `sources`", c.doc.value),
                        "add it to `sources` or fix the name",
                    );
                }
                if c.reference.trim().is_empty() {
                    sink.error(
                        pos(&c.doc),
                        Code::MissingSource,
                        "the citation's `ref` is empty",
                        "say where in the document: table and row, or section",
                    );
                }
                Citation {
                    doc: c.doc.value.clone(),
                    reference: c.reference.clone(),
                }
            })
            .collect()
    }

    fn param(&self, sink: &mut Sink, p: &RawParam) -> Param {
        let kind = match p.kind.value.as_str() {
            "port" => ParamType::Port,
            "ports" => ParamType::Ports,
            "host" => ParamType::Host,
            "string" => ParamType::String,
            "enum" => ParamType::Enum,
            other => {
                sink.error(
                    pos(&p.kind),
                    Code::InvalidParam,
                    format!("param type `{other}` is not known"),
                    "use port, ports, host, string or enum",
                );
                ParamType::String
            }
        };
        if kind == ParamType::Enum && p.values.is_empty() {
            sink.error_about(
                Subject::Param(p.id.value.clone()),
                pos(&p.id),
                Code::InvalidParam,
                format!("enum param `{}` lists no `values`", p.id.value),
                "add `values: [...]`",
            );
        }
        if kind != ParamType::Enum && !p.values.is_empty() {
            sink.error_about(
                Subject::Param(p.id.value.clone()),
                pos(&p.id),
                Code::InvalidParam,
                format!("param `{}` has `values` but is not an enum", p.id.value),
                "use `type: enum`, or remove `values`",
            );
        }
        let values: Vec<String> = p.values.iter().map(|v| v.value.to_string()).collect();
        let default = p
            .default
            .as_ref()
            .and_then(|d| param_value(sink, &p.id.value, kind, &values, d));
        Param {
            id: p.id.value.clone(),
            kind,
            values,
            default,
            description: p.description.clone(),
            source: self.cite(sink, &p.source),
        }
    }

    fn endpoint(&self, sink: &mut Sink, e: &RawEndpoint) -> Endpoint {
        if e.id.value == DEVICE {
            sink.error(
                pos(&e.id),
                Code::ReservedId,
                "`device` is reserved for the device itself",
                "rename the endpoint",
            );
        }
        let remote = !e.hosts.is_empty() || !e.domains.is_empty() || !e.addresses.is_empty();
        let role = e.role.as_ref().is_some_and(|r| r.value);
        let kinds = usize::from(remote) + usize::from(role) + usize::from(e.service.is_some());
        if kinds != 1 {
            sink.error(
                pos(&e.id),
                Code::InvalidEndpoint,
                format!("endpoint `{}` must be exactly one of: hosts/domains/addresses, `service`, `role: true`", e.id.value),
                "a local service or a role stands alone; remote peers list hosts, domains or addresses",
            );
        }
        if e.addresses_volatile && e.addresses.is_empty() {
            sink.error(
                pos(&e.id),
                Code::InvalidEndpoint,
                "`addresses_volatile` without `addresses`",
                "remove it, or list the addresses",
            );
        }
        let service = e.service.as_ref().and_then(|s| {
            let v = Service::from_name(&s.value);
            if v.is_none() {
                sink.error(
                    pos(s),
                    Code::UnknownService,
                    format!("service `{}` is not known", s.value),
                    "use dns, dhcp or ntp",
                );
            }
            v
        });
        for h in &e.hosts {
            self.host(sink, h);
        }
        for d in &e.domains {
            match check_wildcard(&d.value) {
                Ok(_) => {}
                Err(WildcardError::NotLeftmost) => sink.error(
                    pos(d),
                    Code::WildcardNotLeftmost,
                    format!("`{}`: `*` may only be the whole leftmost label", d.value),
                    "write it as `*.example.com`",
                ),
                Err(WildcardError::Invalid) => sink.error(
                    pos(d),
                    Code::InvalidDomain,
                    format!("`{}` is not a wildcard domain", d.value),
                    "write `*.` followed by a hostname; plain names go in `hosts`",
                ),
            }
        }
        let addresses = e
            .addresses
            .iter()
            .filter_map(|a| address(sink, a))
            .collect();
        Endpoint {
            id: e.id.value.clone(),
            description: e.description.clone(),
            hosts: e.hosts.iter().map(|h| h.value.clone()).collect(),
            domains: e.domains.iter().map(|h| h.value.clone()).collect(),
            addresses,
            addresses_volatile: e.addresses_volatile,
            service,
            role,
            source: self.cite(sink, &e.source),
        }
    }

    fn host(&self, sink: &mut Sink, h: &Spanned<String>) {
        match template_params(&h.value) {
            Err(bad) => sink.error(
                pos(h),
                Code::InvalidHostname,
                format!("`{}`: `{bad}` is not a `{{param}}` reference", h.value),
                "write params as {name}",
            ),
            Ok(params) => {
                for p in &params {
                    match self.params.get(*p) {
                        None => sink.error(
                            pos(h),
                            Code::UnknownParam,
                            format!("`{}` refers to param `{p}`, which is not declared", h.value),
                            "declare it under `params`",
                        ),
                        Some(rp)
                            if !matches!(rp.kind.value.as_str(), "enum" | "string" | "host") =>
                        {
                            sink.error(
                                pos(h),
                                Code::ParamTypeMismatch,
                                format!(
                                    "param `{p}` is a {} and cannot be part of a hostname",
                                    rp.kind.value
                                ),
                                "use an enum, string or host param",
                            )
                        }
                        Some(_) => {}
                    }
                }
                // Check the shape with each param replaced by a plain label.
                let probe = crate::names::expand_template(&h.value, |_| Some("x".to_string()));
                if h.value.contains('*') {
                    sink.error(
                        pos(h),
                        Code::InvalidHostname,
                        format!("`{}` is a wildcard", h.value),
                        "wildcards go in `domains`",
                    );
                } else if !is_hostname(&probe) {
                    sink.error(
                        pos(h),
                        Code::InvalidHostname,
                        format!("`{}` is not a fully qualified hostname", h.value),
                        "use letters, digits and '-' in dot-separated labels",
                    );
                }
            }
        }
    }

    fn protocol(&self, sink: &mut Sink, p: &Spanned<Scalar>) -> Protocol {
        match &p.value {
            Scalar::Int(n) => match u8::try_from(*n) {
                Ok(n) => Protocol::from_number(n),
                Err(_) => {
                    sink.error(
                        pos(p),
                        Code::UnknownProtocol,
                        format!("protocol number {n} is outside 0..255"),
                        "use a name (tcp, udp, esp…) or an IANA number",
                    );
                    Protocol::Unspecified
                }
            },
            Scalar::Str(s) => {
                if let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                    match self.params.get(name) {
                        None => sink.error(
                            pos(p),
                            Code::UnknownParam,
                            format!("protocol refers to param `{name}`, which is not declared"),
                            "declare it under `params`",
                        ),
                        Some(rp) => {
                            let ok = rp.kind.value == "enum"
                                && rp.values.iter().all(|v| matches!(&v.value, Scalar::Str(s) if Protocol::from_name(s).is_some_and(|p| p.has_ports())));
                            if !ok {
                                sink.error(pos(p), Code::ParamTypeMismatch, format!("param `{name}` must be an enum of protocol names with ports (tcp, udp, sctp)"), "declare `type: enum` with `values: [udp, tcp]`");
                            }
                        }
                    }
                    return Protocol::Param(name.to_string());
                }
                match Protocol::from_name(s) {
                    Some(p) => p,
                    None => {
                        sink.error(pos(p), Code::UnknownProtocol, format!("protocol `{s}` is not known"), "use tcp, udp, sctp, icmp, icmpv6, esp, ah, gre, igmp, arp, an IANA number, a {param} or `unspecified`");
                        Protocol::Unspecified
                    }
                }
            }
        }
    }

    fn ports(&self, sink: &mut Sink, raw: &Spanned<RawPorts>) -> PortSpec {
        let items: Vec<(Pos, &Scalar)> = match &raw.value {
            RawPorts::One(Scalar::Str(s)) if s == "unspecified" => return PortSpec::Unspecified,
            RawPorts::One(s) => vec![(pos(raw), s)],
            RawPorts::List(l) => l.iter().map(|s| (pos(s), &s.value)).collect(),
        };
        if items.is_empty() {
            sink.error(
                pos(raw),
                Code::InvalidPort,
                "the port list is empty",
                "list at least one port, or write `unspecified`",
            );
        }
        let mut out = Vec::new();
        for (at, s) in items {
            let parsed = match s {
                Scalar::Int(n) => port_number(*n).map(PortItem::Single),
                Scalar::Str(t) => parse_item(t),
            };
            match parsed {
                Ok(PortItem::Param(p)) => {
                    match self.params.get(&p) {
                        None => sink.error(
                            at,
                            Code::UnknownParam,
                            format!("port refers to param `{p}`, which is not declared"),
                            "declare it under `params` with `type: port`",
                        ),
                        Some(rp) if !matches!(rp.kind.value.as_str(), "port" | "ports") => sink
                            .error(
                                at,
                                Code::ParamTypeMismatch,
                                format!("param `{p}` is a {}, not a port", rp.kind.value),
                                "use `type: port` or `type: ports`",
                            ),
                        Some(_) => {}
                    }
                    out.push(PortItem::Param(p));
                }
                Ok(item) => out.push(item),
                Err(PortError::OutOfRange(n)) => sink.error(
                    at,
                    Code::PortOutOfRange,
                    format!("port {n} is outside 1..65535"),
                    "ports are 1 to 65535",
                ),
                Err(PortError::Reversed(a, b)) => sink.error(
                    at,
                    Code::ReversedRange,
                    format!("range {a}-{b} runs backwards"),
                    format!("write it as {b}-{a}"),
                ),
                Err(PortError::Syntax(t)) => sink.error(
                    at,
                    Code::InvalidPort,
                    format!("`{t}` is not a port, range or {{param}}"),
                    "write 443, \"3001-3003\", \"{param}\" or `unspecified`",
                ),
            }
        }
        PortSpec::List(out)
    }

    fn flow(&self, sink: &mut Sink, f: &RawFlow) -> Flow {
        check_ident(sink, "flow id", &f.id);
        for m in &f.modes {
            if !self.modes.contains(&m.value) {
                sink.error(
                    pos(m),
                    Code::UnknownMode,
                    format!(
                        "flow `{}` names mode `{}`, which is not declared",
                        f.id.value, m.value
                    ),
                    "declare it under `modes`, or fix the name",
                );
            }
        }
        for side in [&f.from, &f.to] {
            if side.value != DEVICE && !self.endpoints.contains(&side.value) {
                sink.error(
                    pos(side),
                    Code::UnknownEndpoint,
                    format!(
                        "flow `{}` names endpoint `{}`, which is not declared",
                        f.id.value, side.value
                    ),
                    "declare it under `endpoints`, or write `device`",
                );
            }
        }
        let device_sides = usize::from(f.from.value == DEVICE) + usize::from(f.to.value == DEVICE);
        if device_sides != 1 {
            sink.error(
                pos(&f.from),
                Code::NoDeviceSide,
                format!(
                    "flow `{}` must have `device` on exactly one side",
                    f.id.value
                ),
                "a flow runs between the device and one endpoint",
            );
        }
        let initiation = match f.initiation.value.as_str() {
            "device" => Initiation::Device,
            "peer" => Initiation::Peer,
            "either" => Initiation::Either,
            other => {
                sink.error(
                    pos(&f.initiation),
                    Code::UnknownValue,
                    format!("initiation `{other}` is not known"),
                    "use device, peer or either",
                );
                Initiation::Either
            }
        };
        if device_sides == 1 {
            let from_device = f.from.value == DEVICE;
            if (initiation == Initiation::Device && !from_device)
                || (initiation == Initiation::Peer && from_device)
            {
                sink.error(
                    pos(&f.initiation),
                    Code::InitiationMismatch,
                    format!(
                        "flow `{}`: the initiator must be the `from` side",
                        f.id.value
                    ),
                    "swap `from` and `to` (ports are on the `to` side), or use `either`",
                );
            }
        }
        let before = sink.diagnostics.len();
        let protocol = self.protocol(sink, &f.protocol);
        // A protocol that could not be read says nothing about ports: no follow-on errors.
        let protocol_read = sink.diagnostics.len() == before;
        let ports = match &f.ports {
            Some(p) if !protocol.has_ports() => {
                sink.error(
                    pos(p),
                    Code::PortsNotAllowed,
                    format!("protocol {protocol} has no ports"),
                    "remove `ports`",
                );
                PortSpec::None
            }
            Some(p) => self.ports(sink, p),
            None if protocol.has_ports() && protocol_read => {
                sink.error(
                    pos(&f.protocol),
                    Code::PortsRequired,
                    format!("flow `{}` is {protocol} but says no ports", f.id.value),
                    "give the ports, or `ports: unspecified` if the source does not say",
                );
                PortSpec::None
            }
            None => PortSpec::None,
        };
        let src_ports = match &f.src_ports {
            Some(p) if !protocol.has_ports() => {
                sink.error(
                    pos(p),
                    Code::PortsNotAllowed,
                    format!("protocol {protocol} has no ports"),
                    "remove `src_ports`",
                );
                PortSpec::None
            }
            Some(p) => self.ports(sink, p),
            None => PortSpec::None,
        };
        let source = match &f.source {
            Some(s) if !s.0.is_empty() => self.cite(sink, s),
            _ => {
                sink.error(
                    pos(&f.id),
                    Code::MissingSource,
                    format!("flow `{}` cites no source", f.id.value),
                    "add `source: {doc: <source id>, ref: <table/row or section>}`",
                );
                Vec::new()
            }
        };
        let conditions = f
            .conditions
            .iter()
            .filter_map(|c| self.condition(sink, c))
            .collect();
        let cast = match f.cast.as_ref().map(|c| c.value.as_str()) {
            None | Some("unicast") => Cast::Unicast,
            Some("broadcast") => Cast::Broadcast,
            Some("multicast") => Cast::Multicast,
            Some(other) => {
                sink.error(
                    f.cast.as_ref().map_or(Pos::UNKNOWN, pos),
                    Code::UnknownValue,
                    format!("cast `{other}` is not known"),
                    "use unicast, broadcast or multicast",
                );
                Cast::Unicast
            }
        };
        let family = match f.family.as_ref().map(|c| c.value.as_str()) {
            None => None,
            Some("ipv4") => Some(IpFamily::Ipv4),
            Some("ipv6") => Some(IpFamily::Ipv6),
            Some(other) => {
                sink.error(
                    f.family.as_ref().map_or(Pos::UNKNOWN, pos),
                    Code::UnknownValue,
                    format!("family `{other}` is not known"),
                    "use ipv4 or ipv6, or leave `family` out for both",
                );
                None
            }
        };
        let clash = match (family, &protocol) {
            (Some(IpFamily::Ipv6), Protocol::Icmp) => Some("icmp"),
            (Some(IpFamily::Ipv4), Protocol::Icmpv6) => Some("icmpv6"),
            _ => None,
        };
        if let (Some(proto), Some(fam)) = (clash, &f.family) {
            sink.error(
                pos(fam),
                Code::FamilyProtocolMismatch,
                format!("an {proto} flow cannot be `family: {}`", fam.value),
                "icmp is IPv4's, icmpv6 IPv6's",
            );
        }
        let group = f
            .group
            .as_ref()
            .and_then(|g| match g.value.parse::<IpAddr>() {
                Ok(a) if a.is_multicast() => Some(a),
                _ => {
                    sink.error(
                        pos(g),
                        Code::InvalidAddress,
                        format!("`{}` is not a multicast group address", g.value),
                        "use an address in 224.0.0.0/4 or ff00::/8",
                    );
                    None
                }
            });
        if group.is_some() && cast != Cast::Multicast {
            sink.error(
                pos(&f.id),
                Code::InvalidCast,
                "`group` is set but `cast` is not multicast",
                "add `cast: multicast`",
            );
        }
        if let Some(t) = &f.icmp_type {
            if !protocol.is_icmp() {
                sink.error(
                    pos(t),
                    Code::IcmpTypeNotAllowed,
                    format!("`icmp_type` on a {protocol} flow"),
                    "only icmp and icmpv6 flows have ICMP types",
                );
            }
            // The names nft knows for the flow's family (both, for a protocol that is not
            // ICMP, which the error above already refuses).
            let v6 = protocol == Protocol::Icmpv6;
            let known = if protocol.is_icmp() {
                crate::icmp::type_number(v6, &t.value).is_some()
            } else {
                crate::icmp::type_number(false, &t.value)
                    .or(crate::icmp::type_number(true, &t.value))
                    .is_some()
            };
            if !known {
                let names: Vec<&str> = crate::icmp::type_names(v6).collect();
                sink.error(
                    pos(t),
                    Code::InvalidIcmpType,
                    format!(
                        "`{}` is not an {} type name",
                        t.value,
                        if v6 { "ICMPv6" } else { "ICMP" }
                    ),
                    format!("use the nftables name: {}", names.join(", ")),
                );
            }
        }
        let keepalive = f
            .keepalive
            .as_ref()
            .and_then(|k| match u32::try_from(k.value) {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    sink.error(
                        pos(k),
                        Code::InvalidValue,
                        format!("keepalive {} is not a positive number of seconds", k.value),
                        "give seconds, e.g. 540",
                    );
                    None
                }
            });
        let tls = f.tls.as_ref().map(|t| {
            let inspection = t
                .value
                .inspection
                .as_ref()
                .and_then(|i| match i.value.as_str() {
                    "allowed" => Some(Inspection::Allowed),
                    "forbidden" => Some(Inspection::Forbidden),
                    other => {
                        sink.error(
                            pos(i),
                            Code::UnknownValue,
                            format!("inspection `{other}` is not known"),
                            "use allowed or forbidden",
                        );
                        None
                    }
                });
            Tls {
                expected_issuer: t.value.expected_issuer.clone(),
                inspection,
                versions: t.value.versions.clone(),
                sni: t.value.sni.clone(),
            }
        });
        Flow {
            id: f.id.value.clone(),
            modes: f.modes.iter().map(|m| m.value.clone()).collect(),
            from: f.from.value.clone(),
            to: f.to.value.clone(),
            initiation,
            protocol,
            ports,
            src_ports,
            optional: f.optional,
            app: f.app.clone(),
            from_app: f.from_app.clone(),
            to_app: f.to_app.clone(),
            description: f.description.clone(),
            source,
            conditions,
            inside: f.inside.as_ref().map(|i| Inside {
                flow: i.value.flow.value.clone(),
                port: i
                    .value
                    .port
                    .as_ref()
                    .and_then(|p| port_number(p.value).ok()),
            }),
            cast,
            family,
            group,
            icmp_type: f.icmp_type.as_ref().map(|t| t.value.clone()),
            keepalive,
            persistent: f.persistent,
            tls,
            ike: f.ike.as_ref().map(|c| crypto(sink, c)),
            esp: f.esp.as_ref().map(|c| crypto(sink, c)),
        }
    }

    fn condition(&self, sink: &mut Sink, c: &Spanned<RawCondition>) -> Option<Condition> {
        let r = &c.value;
        let set = usize::from(r.feature.is_some())
            + usize::from(r.version.is_some())
            + usize::from(r.region.is_some());
        if set != 1 {
            sink.error(
                pos(c),
                Code::InvalidCondition,
                "a condition names exactly one of feature, version, region",
                "write one condition per list entry",
            );
            return None;
        }
        if let Some(f) = &r.feature {
            if !self.features.contains(&f.value) {
                sink.error(
                    pos(f),
                    Code::UnknownFeature,
                    format!("feature `{}` is not declared", f.value),
                    "declare it under `features`",
                );
            }
            return Some(Condition::Feature(f.value.clone()));
        }
        if let Some(v) = &r.version {
            return match parse_version_req(&v.value) {
                Some(req) => Some(Condition::Version(req)),
                None => {
                    sink.error(
                        pos(v),
                        Code::InvalidVersion,
                        format!("`{}` is not a version condition", v.value),
                        "write e.g. \">= 2.8\" (operators >=, >, <=, <, =)",
                    );
                    None
                }
            };
        }
        r.region.as_ref().map(|g| {
            self.region_condition(sink, g);
            Condition::Region(g.value.clone())
        })
    }

    /// A region condition compares the device's `region` param with a value: the param must
    /// exist, and where it is an enum the value must be one of its values, or the flow would
    /// silently never apply.
    fn region_condition(&self, sink: &mut Sink, g: &Spanned<String>) {
        let Some(rp) = self.params.get("region") else {
            sink.error(
                pos(g),
                Code::UnknownParam,
                format!(
                    "the condition `region: {}` needs a param `region`, which is not declared",
                    g.value
                ),
                "declare `params: [{id: region, type: enum, values: [...]}]`",
            );
            return;
        };
        match rp.kind.value.as_str() {
            "enum" => {
                let values: Vec<String> = rp.values.iter().map(|v| v.value.to_string()).collect();
                if !values.contains(&g.value) {
                    sink.error(
                        pos(g),
                        Code::UnknownRegion,
                        format!(
                            "region `{}` is not one of the values of param `region` ({}), so the flow would never apply",
                            g.value,
                            values.join(", ")
                        ),
                        "name a declared region, or add it to the param's `values`",
                    );
                }
            }
            "string" => {}
            other => sink.error(
                pos(g),
                Code::ParamTypeMismatch,
                format!("param `region` is a {other}; a region condition needs an enum or string"),
                "declare `region` as `type: enum` with its `values`",
            ),
        }
    }

    /// Flow ids must be unique within each mode.
    fn flow_ids(&self, sink: &mut Sink, raw: &RawProfile) {
        let modes: Vec<Option<&str>> = if raw.modes.is_empty() {
            vec![None]
        } else {
            raw.modes
                .iter()
                .map(|m| Some(m.id.value.as_str()))
                .collect()
        };
        let mut reported = BTreeSet::new();
        for mode in modes {
            let mut seen: HashMap<&str, Pos> = HashMap::new();
            for f in &raw.flows {
                let in_mode = mode.is_none()
                    || f.modes.is_empty()
                    || f.modes.iter().any(|m| Some(m.value.as_str()) == mode);
                if !in_mode {
                    continue;
                }
                if let Some(first) = seen.get(f.id.value.as_str()) {
                    if reported.insert(pos(&f.id)) {
                        let m = mode.map(|m| format!(" in mode `{m}`")).unwrap_or_default();
                        sink.error(
                            pos(&f.id),
                            Code::DuplicateFlowId,
                            format!(
                                "flow id `{}` is used twice{m} (first at line {})",
                                f.id.value, first.line
                            ),
                            "give each row its own id, or limit the entries to different `modes`",
                        );
                    }
                } else {
                    seen.insert(&f.id.value, pos(&f.id));
                }
            }
        }
    }

    /// `inside:` must name a flow sharing a mode, and a port the outer flow has.
    fn tunnels(&self, sink: &mut Sink, raw: &RawProfile, flows: &[Flow]) {
        for (rf, f) in raw.flows.iter().zip(flows) {
            let (Some(ri), Some(inside)) = (&rf.inside, &f.inside) else {
                continue;
            };
            let outer = flows
                .iter()
                .find(|o| o.id == inside.flow && !std::ptr::eq(*o, f) && shares_mode(o, f));
            match outer {
                None => sink.error(
                    pos(&ri.value.flow),
                    Code::UnknownFlow,
                    format!(
                        "flow `{}` is carried inside `{}`, which is no flow of the same mode",
                        f.id, inside.flow
                    ),
                    "name the outer flow's id",
                ),
                Some(o) => {
                    if let Some(p) = &ri.value.port {
                        match port_number(p.value) {
                            Err(_) => sink.error(
                                pos(p),
                                Code::PortOutOfRange,
                                format!("port {} is outside 1..65535", p.value),
                                "ports are 1 to 65535",
                            ),
                            Ok(n) if !o.ports.contains(n) => sink.error(
                                pos(p),
                                Code::InsidePortMismatch,
                                format!("outer flow `{}` has no port {n}", o.id),
                                format!("use one of {}", o.ports),
                            ),
                            Ok(_) => {}
                        }
                    }
                }
            }
        }
    }

    fn alternative(&self, sink: &mut Sink, a: &RawAlternative, raw: &RawProfile) -> Alternative {
        if a.flows.value.is_empty() {
            sink.error(
                pos(&a.flows),
                Code::EmptyAlternative,
                format!("alternative group `{}` lists no flow", a.id.value),
                "list the flows of which at least one must work",
            );
        }
        for fl in &a.flows.value {
            if !raw.flows.iter().any(|f| f.id.value == fl.value) {
                sink.error(
                    pos(fl),
                    Code::UnknownFlow,
                    format!(
                        "alternative group `{}` names flow `{}`, which does not exist",
                        a.id.value, fl.value
                    ),
                    "use a flow id",
                );
            }
        }
        Alternative {
            id: a.id.value.clone(),
            description: a.description.clone(),
            flows: a.flows.value.iter().map(|f| f.value.clone()).collect(),
            source: self.cite(sink, &a.source),
        }
    }

    fn listens(&self, sink: &mut Sink, raw: &RawProfile) -> Listens {
        match &raw.listens.value {
            RawListens::Word(w) if w == "none" => Listens::Nothing,
            RawListens::Word(w) if w == "unspecified" => Listens::Unspecified,
            RawListens::Word(w) => {
                sink.error(
                    pos(&raw.listens),
                    Code::UnknownValue,
                    format!("listens `{w}` is not known"),
                    "write `none`, `unspecified` or a list of entries",
                );
                Listens::Nothing
            }
            RawListens::List(l) => Listens::Entries(
                l.iter()
                    .map(|e| {
                        let protocol = self.protocol(sink, &e.protocol);
                        let ports = match &e.ports.value {
                            RawPorts::One(Scalar::Str(s)) if s == "none" => ListenPorts::Closed,
                            _ if !protocol.has_ports() => {
                                sink.error(
                                    pos(&e.ports),
                                    Code::PortsNotAllowed,
                                    format!("protocol {protocol} has no ports"),
                                    "listen entries are for tcp, udp or sctp",
                                );
                                ListenPorts::Closed
                            }
                            _ => ListenPorts::Ports(self.ports(sink, &e.ports)),
                        };
                        if let Some(fl) = &e.flow {
                            if !raw.flows.iter().any(|f| f.id.value == fl.value) {
                                sink.error(
                                    pos(fl),
                                    Code::UnknownFlow,
                                    format!(
                                        "listen entry names flow `{}`, which does not exist",
                                        fl.value
                                    ),
                                    "use a flow id",
                                );
                            }
                        }
                        Listen {
                            protocol,
                            ports,
                            flow: e.flow.as_ref().map(|f| f.value.clone()),
                            description: e.description.clone(),
                            source: self.cite(sink, &e.source),
                        }
                    })
                    .collect(),
            ),
        }
    }

    fn note(&self, sink: &mut Sink, n: &RawNote) -> Note {
        let topic = match n.topic.value.as_str() {
            "dns-ttl" => NoteTopic::DnsTtl,
            "nat" => NoteTopic::Nat,
            "tls-inspection" => NoteTopic::TlsInspection,
            "keepalive" => NoteTopic::Keepalive,
            "other" => NoteTopic::Other,
            other => {
                sink.error(
                    pos(&n.topic),
                    Code::UnknownValue,
                    format!("note topic `{other}` is not known"),
                    "use dns-ttl, nat, tls-inspection, keepalive or other",
                );
                NoteTopic::Other
            }
        };
        Note {
            topic,
            text: n.text.clone(),
            source: self.cite(sink, &n.source),
        }
    }
}

fn shares_mode(a: &Flow, b: &Flow) -> bool {
    a.modes.is_empty() || b.modes.is_empty() || a.modes.iter().any(|m| b.modes.contains(m))
}

fn crypto(sink: &mut Sink, c: &RawCrypto) -> Crypto {
    let versions = c
        .versions
        .iter()
        .filter_map(|v| match v.value {
            1 | 2 => Some(v.value as u8),
            n => {
                sink.error(
                    pos(v),
                    Code::InvalidValue,
                    format!("IKE version {n} does not exist"),
                    "use 1 or 2",
                );
                None
            }
        })
        .collect();
    let dh_groups = c
        .dh_groups
        .iter()
        .filter_map(|g| match u16::try_from(g.value) {
            Ok(v) => Some(v),
            Err(_) => {
                sink.error(
                    pos(g),
                    Code::InvalidValue,
                    format!("DH group {} is not a group number", g.value),
                    "use IANA transform type 4 numbers (14, 19, …)",
                );
                None
            }
        })
        .collect();
    Crypto {
        versions,
        proposals: c.proposals.clone(),
        encryption: c.encryption.clone(),
        integrity: c.integrity.clone(),
        dh_groups,
    }
}

/// An IP address or CIDR prefix (host bits clear), or a diagnostic at its position.
pub(crate) fn address(sink: &mut Sink, a: &Spanned<String>) -> Option<IpNet> {
    let t = a.value.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        if net.trunc() != net {
            sink.error(
                pos(a),
                Code::InvalidAddress,
                format!("`{t}` has host bits set"),
                format!("write the network as {}", net.trunc()),
            );
        }
        return Some(net);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(IpNet::from(ip));
    }
    sink.error(
        pos(a),
        Code::InvalidAddress,
        format!("`{t}` is not an IP address or CIDR prefix"),
        "write 192.0.2.1, 192.0.2.0/24 or 2001:db8::/32",
    );
    None
}

fn param_value(
    sink: &mut Sink,
    id: &str,
    kind: ParamType,
    values: &[String],
    d: &Spanned<RawPorts>,
) -> Option<ParamValue> {
    let text = match &d.value {
        RawPorts::One(s) => s.to_string(),
        RawPorts::List(l) => l
            .iter()
            .map(|s| s.value.to_string())
            .collect::<Vec<_>>()
            .join(","),
    };
    match kind {
        ParamType::Port | ParamType::Ports => {
            let items: Vec<String> = text.split(',').map(str::to_string).collect();
            let mut out = Vec::new();
            for it in &items {
                match parse_item(it) {
                    Ok(PortItem::Param(_)) | Err(_) => {
                        sink.error_about(
                            Subject::Param(id.to_string()),
                            pos(d),
                            Code::InvalidParam,
                            format!("default `{text}` of param `{id}` is not a port"),
                            "give a port number (or ranges for type ports)",
                        );
                        return None;
                    }
                    Ok(i) => out.push(i),
                }
            }
            if kind == ParamType::Port && !matches!(out.as_slice(), [PortItem::Single(_)]) {
                sink.error_about(
                    Subject::Param(id.to_string()),
                    pos(d),
                    Code::InvalidParam,
                    format!("param `{id}` is a single port; `{text}` is not"),
                    "use `type: ports` for lists and ranges",
                );
                return None;
            }
            Some(ParamValue::Ports(PortSpec::List(out)))
        }
        ParamType::Enum if !values.contains(&text) => {
            sink.error_about(
                Subject::Param(id.to_string()),
                pos(d),
                Code::InvalidParam,
                format!("default `{text}` of param `{id}` is not one of its values"),
                format!("use one of: {}", values.join(", ")),
            );
            None
        }
        _ => Some(ParamValue::Text(text)),
    }
}

/// Reads `>= 2.8`, `<3`, `= 1.2.11`.
pub fn parse_version_req(s: &str) -> Option<VersionReq> {
    let t = s.trim();
    let op = [">=", "<=", ">", "<", "="]
        .into_iter()
        .find(|op| t.starts_with(op))?;
    let rest = t[op.len()..].trim();
    let version: Option<Vec<u32>> = rest.split('.').map(|p| p.parse().ok()).collect();
    let version = version.filter(|v| !v.is_empty())?;
    Some(VersionReq {
        op: op.to_string(),
        version,
    })
}
