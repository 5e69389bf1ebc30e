//! A profile's endpoints: addresses, hostnames (with `{param}` templates), wildcard domains,
//! services, roles and the device's own segment.

use crate::diag::{Code, Sink};
use crate::document::{address, pos};
use crate::profile::*;
use crate::raw::*;
use crate::syntax::{
    check_wildcard, expand_braces, is_hostname, template_params, whole_param, WildcardError,
};

use super::Ctx;

impl Ctx<'_> {
    pub(super) fn endpoint(&self, sink: &mut Sink, e: &RawEndpoint) -> Endpoint {
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
        let discovered = e.discovered.as_ref().and_then(|d| self.discovered(sink, d));
        let segment = e.segment.as_ref().is_some_and(|s| s.value);
        if let Some(s) = &e.segment {
            self.needs_edition2(sink, pos(s), "`segment`");
            if !s.value {
                sink.error(
                    pos(s),
                    Code::InvalidEndpoint,
                    "`segment: false` says nothing",
                    "write `segment: true` for the hosts on the device's own segment, or remove it",
                );
            }
        }
        let kinds = usize::from(remote)
            + usize::from(role)
            + usize::from(e.service.is_some())
            + usize::from(e.discovered.is_some())
            + usize::from(segment);
        if kinds != 1 {
            sink.error(
                pos(&e.id),
                Code::InvalidEndpoint,
                format!("endpoint `{}` must be exactly one of: hosts/domains/addresses, `service`, `role: true`, `discovered`, `segment: true`", e.id.value),
                "a local service, a role or the device's segment stands alone; remote peers list hosts, domains or addresses",
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
        let hosts = self.brace_lists(sink, &e.hosts);
        let domains = self.brace_lists(sink, &e.domains);
        for h in &hosts {
            self.host(sink, h);
        }
        for d in &domains {
            let params = template_params(&d.value).unwrap_or_default();
            if !params.is_empty() {
                if self.edition < 2 {
                    sink.error(
                        pos(d),
                        Code::EditionRequired,
                        format!("`{}`: params in wildcard domains belong to the profile format's second edition", d.value),
                        "write `portolan: 2` as the file's first line, or spell the domain out",
                    );
                }
                self.template_param_types(sink, d, &params);
            }
            let probe = crate::syntax::expand_template(&d.value, |_| Some("x".to_string()));
            match check_wildcard(&probe) {
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
            hosts: hosts.into_iter().map(|h| h.value).collect(),
            domains: domains.into_iter().map(|h| h.value).collect(),
            addresses,
            addresses_volatile: e.addresses_volatile,
            service,
            role,
            discovered,
            segment,
            source: self.cite(sink, &e.source),
        }
    }

    pub(super) fn host(&self, sink: &mut Sink, h: &Spanned<String>) {
        match template_params(&h.value) {
            Err(bad) => sink.error(
                pos(h),
                Code::InvalidHostname,
                format!("`{}`: `{bad}` is not a `{{param}}` reference", h.value),
                "write params as {name}",
            ),
            Ok(params) => {
                self.template_param_types(sink, h, &params);
                // Check the shape with each param replaced by a plain label.
                let probe = crate::syntax::expand_template(&h.value, |_| Some("x".to_string()));
                if h.value.contains('*') {
                    sink.error(
                        pos(h),
                        Code::InvalidHostname,
                        format!("`{}` is a wildcard", h.value),
                        "wildcards go in `domains`",
                    );
                } else if !is_hostname(&probe) && !self.whole_host_param(&h.value) {
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

    /// Each param of a host or domain template must be declared as an enum, string or host.
    fn template_param_types(&self, sink: &mut Sink, h: &Spanned<String>, params: &[&str]) {
        for p in params {
            match self.params.get(*p) {
                None => sink.error(
                    pos(h),
                    Code::UnknownParam,
                    format!("`{}` refers to param `{p}`, which is not declared", h.value),
                    "declare it under `params`",
                ),
                Some(rp) if !matches!(rp.kind.value.as_str(), "enum" | "string" | "host") => sink
                    .error(
                        pos(h),
                        Code::ParamTypeMismatch,
                        format!(
                            "param `{p}` is a {} and cannot be part of a hostname",
                            rp.kind.value
                        ),
                        "use an enum, string or host param",
                    ),
                Some(_) => {}
            }
        }
    }

    /// Hosts or domains with brace lists (`time{1,2,3}.example.com`, edition 2) expanded into
    /// one name each, every one keeping the position of the entry written.
    fn brace_lists(&self, sink: &mut Sink, names: &[Spanned<String>]) -> Vec<Spanned<String>> {
        let mut out = Vec::new();
        for n in names {
            let has_list = n
                .value
                .split('{')
                .skip(1)
                .any(|x| x.split('}').next().is_some_and(|inner| inner.contains(',')));
            if !has_list {
                out.push(n.clone());
                continue;
            }
            self.needs_edition2(sink, pos(n), "a brace list in a name");
            match expand_braces(&n.value) {
                Some(all) => out.extend(
                    all.into_iter()
                        .map(|v| Spanned::new(v, n.referenced, n.defined)),
                ),
                None => sink.error(
                    pos(n),
                    Code::InvalidHostname,
                    format!("`{}`: a brace list holds an empty or nested item", n.value),
                    "write each alternative in full: time{1,2,3}.example.com",
                ),
            }
        }
        out
    }

    /// A host written as one `{param}` of type host (edition 2): the site's value, a name or
    /// an address, is the whole peer.
    fn whole_host_param(&self, h: &str) -> bool {
        self.edition >= 2
            && whole_param(h)
                .and_then(|p| self.params.get(p))
                .is_some_and(|rp| rp.kind.value == "host")
    }

    /// `discovered:` (edition 2): how the device learns the peer, each kind with its detail.
    fn discovered(&self, sink: &mut Sink, d: &Spanned<RawDiscovered>) -> Option<Discovered> {
        self.needs_edition2(sink, pos(d), "`discovered`");
        let r = &d.value;
        let bad = |sink: &mut Sink, at, message: String, help: &str| {
            sink.error(at, Code::InvalidEndpoint, message, help);
            None
        };
        match r.via.value.as_str() {
            "srv" => match &r.name {
                Some(n) if is_srv_name(&n.value) => Some(Discovered::Srv {
                    name: n.value.clone(),
                }),
                Some(n) => bad(
                    sink,
                    pos(n),
                    format!("`{}` is not an SRV owner name", n.value),
                    "write _service._proto.domain, e.g. _mqtt._tcp.example.com (RFC 2782)",
                ),
                None => bad(
                    sink,
                    pos(&r.via),
                    "an SRV endpoint names its record".to_string(),
                    "add `name: _service._proto.domain`",
                ),
            },
            "provisioning" => Some(Discovered::Provisioning),
            "dhcp-option" => match r.option.as_ref().map(|o| (o, u8::try_from(o.value))) {
                Some((_, Ok(v))) if (1..=254).contains(&v) => {
                    Some(Discovered::DhcpOption { option: v })
                }
                Some((o, _)) => bad(
                    sink,
                    pos(o),
                    format!("DHCP option {} is outside 1..254 (RFC 2132)", o.value),
                    "use the option's code, e.g. 42 for NTP servers",
                ),
                None => bad(
                    sink,
                    pos(&r.via),
                    "a DHCP-option endpoint names its option".to_string(),
                    "add `option: 42` (or the option's code)",
                ),
            },
            other => {
                sink.error(
                    pos(&r.via),
                    Code::UnknownValue,
                    format!("`discovered.via: {other}` is not known"),
                    "use srv, provisioning or dhcp-option",
                );
                None
            }
        }
    }
}

/// `_service._proto.name`: two underscore labels before a hostname (RFC 2782).
fn is_srv_name(s: &str) -> bool {
    let mut parts = s.splitn(3, '.');
    let (Some(svc), Some(proto), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let under = |l: &str| {
        l.len() > 1
            && l.starts_with('_')
            && l[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    under(svc) && under(proto) && is_hostname(rest)
}
