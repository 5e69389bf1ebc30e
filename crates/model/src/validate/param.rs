//! A profile's params: their types, `values` and defaults, each default checked against its
//! declared type.

use crate::diag::{Code, Sink, Subject};
use crate::document::pos;
use crate::ports::{parse_item, PortItem, PortSpec};
use crate::profile::*;
use crate::raw::*;

use super::Ctx;

impl Ctx<'_> {
    pub(super) fn param(&self, sink: &mut Sink, p: &RawParam) -> Param {
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
        let range = p.range.as_ref().and_then(|r| {
            self.needs_edition2(sink, pos(r), "a param's `range`");
            if !matches!(kind, ParamType::Port | ParamType::Ports) {
                sink.error_about(
                    Subject::Param(p.id.value.clone()),
                    pos(r),
                    Code::InvalidParam,
                    format!(
                        "param `{}` is a {}; only port params take a `range`",
                        p.id.value, p.kind.value
                    ),
                    "use `type: port` or `type: ports`, or remove `range`",
                );
                return None;
            }
            match param_value(sink, &p.id.value, ParamType::Ports, &[], r) {
                Some(ParamValue::Ports(spec)) => Some(spec),
                _ => None,
            }
        });
        let default = p
            .default
            .as_ref()
            .and_then(|d| param_value(sink, &p.id.value, kind, &values, d));
        if let (Some(ParamValue::Ports(d)), Some(r), Some(at)) = (&default, &range, &p.default) {
            if !within(d, r) {
                sink.error_about(
                    Subject::Param(p.id.value.clone()),
                    pos(at),
                    Code::InvalidParam,
                    format!(
                        "default of param `{}` lies outside its range {r}",
                        p.id.value
                    ),
                    "give a default inside the documented range",
                );
            }
        }
        Param {
            id: p.id.value.clone(),
            kind,
            values,
            default,
            range,
            description: p.description.clone(),
            source: self.cite(sink, &p.source),
        }
    }
}

pub(super) fn param_value(
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

/// Whether every port of `value` lies in `range` (both concrete port lists).
pub(crate) fn within(value: &PortSpec, range: &PortSpec) -> bool {
    let PortSpec::List(items) = value else {
        return false;
    };
    items.iter().all(|i| match i {
        PortItem::Single(p) => range.contains(*p),
        PortItem::Range(a, b) => (*a..=*b).all(|p| range.contains(p)),
        PortItem::Param(_) => false,
    })
}
