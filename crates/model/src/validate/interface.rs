//! A multi-homed device (edition 2): the profile's `interfaces:` (ids, each cited) and each
//! flow's `interface:` naming one or more of them. A profile that declares several interfaces
//! must say for every flow which one it uses (`interface-required`): the compiler would
//! otherwise have to open the flow on every interface, admitting the OT side's traffic from
//! the IT side — the widening the construct exists to prevent.

use std::collections::BTreeSet;

use crate::diag::{Code, Pos, Sink};
use crate::document::pos;
use crate::profile::Interface;
use crate::raw::*;

use super::Ctx;

impl Ctx<'_> {
    /// The top-level `interfaces:`, each id checked and cited.
    pub(super) fn interfaces(&self, sink: &mut Sink, raw: &RawProfile) -> Vec<Interface> {
        raw.interfaces
            .iter()
            .map(|i| {
                self.needs_edition2(sink, pos(&i.id), "`interfaces`");
                if i.source.0.is_empty() {
                    sink.error(
                        pos(&i.id),
                        Code::MissingSource,
                        format!("interface `{}` has no `source`", i.id.value),
                        "cite where the vendor documents the interface: {doc: ..., ref: ...}",
                    );
                }
                Interface {
                    id: i.id.value.clone(),
                    description: i.description.clone(),
                    source: self.cite(sink, &i.source),
                }
            })
            .collect()
    }

    /// A flow's `interface:`: each id declared under `interfaces` and named once; `None`
    /// written and several interfaces declared is an error. Returns the ids as written.
    pub(super) fn flow_interfaces(
        &self,
        sink: &mut Sink,
        f: &RawFlow,
        declared: &BTreeSet<String>,
    ) -> Vec<String> {
        let Some(written) = &f.interface else {
            if declared.len() > 1 {
                let ids: Vec<&str> = declared.iter().map(String::as_str).collect();
                sink.error(
                    pos(&f.id),
                    Code::InterfaceRequired,
                    format!(
                        "flow `{}` does not say which of the device's interfaces it uses ({})",
                        f.id.value,
                        ids.join(", ")
                    ),
                    format!(
                        "add `interface: {}` (or a list, `interface: [{}]`, if the source documents it on several): the compiler does not guess, since opening it on every interface would widen it",
                        ids[0],
                        ids.join(", ")
                    ),
                );
            }
            return Vec::new();
        };
        self.needs_edition2(sink, pos(written), "a flow's `interface`");
        if written.value.0.is_empty() {
            sink.error(
                pos(written),
                Code::InvalidValue,
                "`interface: []` names no interface",
                "name the interface the flow uses, or leave `interface:` out",
            );
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for item in &written.value.0 {
            // The one-name form carries the field's position (`RawNames`).
            let at = if item.referenced == serde_saphyr::Location::UNKNOWN {
                pos(written)
            } else {
                pos(item)
            };
            let id = &item.value;
            if !declared.contains(id) {
                unknown(sink, at, id, declared);
            } else if !seen.insert(id.clone()) {
                sink.error(
                    at,
                    Code::DuplicateId,
                    format!("interface `{id}` is named twice"),
                    "name each interface once",
                );
            }
            out.push(id.clone());
        }
        out
    }
}

fn unknown(sink: &mut Sink, at: Pos, id: &str, declared: &BTreeSet<String>) {
    let ids: Vec<&str> = declared.iter().map(String::as_str).collect();
    let help = if ids.is_empty() {
        "declare the device's interfaces under the top-level `interfaces:` first".to_string()
    } else {
        format!(
            "{} declared interfaces: {}",
            crate::suggest::did_you_mean(id, ids.iter().copied()),
            ids.join(", ")
        )
        .trim_start()
        .to_string()
    };
    sink.error(
        at,
        Code::UnknownInterface,
        format!("interface `{id}` is not declared under `interfaces`"),
        help,
    );
}
