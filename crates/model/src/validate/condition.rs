//! Flow conditions (`conditions:`): features, regions and versions, each naming something the
//! profile declares, and (edition 2) `not`/`any`/`all` combining them.

use crate::diag::{Code, Sink};
use crate::document::pos;
use crate::profile::*;
use crate::raw::*;

use super::Ctx;

impl Ctx<'_> {
    pub(super) fn condition(
        &self,
        sink: &mut Sink,
        c: &Spanned<RawCondition>,
    ) -> Option<Condition> {
        let r = &c.value;
        let set = usize::from(r.feature.is_some())
            + usize::from(r.version.is_some())
            + usize::from(r.region.is_some())
            + usize::from(r.not.is_some())
            + usize::from(r.any.is_some())
            + usize::from(r.all.is_some());
        if set != 1 {
            sink.error(
                pos(c),
                Code::InvalidCondition,
                "a condition names exactly one of feature, version, region (or, in the second edition, not, any, all)",
                "write one condition per list entry; combine them with `any:` or `all:`",
            );
            return None;
        }
        if let Some(inner) = &r.not {
            self.needs_edition2(sink, pos(c), "a `not:` condition");
            return self
                .condition(sink, inner)
                .map(|x| Condition::Not(Box::new(x)));
        }
        for (list, word) in [(&r.any, "any"), (&r.all, "all")] {
            let Some(list) = list else { continue };
            self.needs_edition2(sink, pos(c), &format!("an `{word}:` condition"));
            if list.value.is_empty() {
                sink.error(
                    pos(list),
                    Code::InvalidCondition,
                    format!("`{word}:` lists no condition"),
                    "list the conditions it combines",
                );
                return None;
            }
            let inner: Vec<Condition> = list
                .value
                .iter()
                .filter_map(|x| self.condition(sink, x))
                .collect();
            if inner.len() != list.value.len() {
                return None;
            }
            return Some(if word == "any" {
                Condition::Any(inner)
            } else {
                Condition::All(inner)
            });
        }
        if let Some(f) = &r.feature {
            if !self.features.contains(&f.value) {
                sink.error(
                    pos(f),
                    Code::UnknownFeature,
                    format!("feature `{}` is not declared", f.value),
                    format!(
                        "{} declare it under `features`",
                        crate::suggest::did_you_mean(
                            &f.value,
                            self.features.iter().map(String::as_str)
                        )
                    )
                    .trim_start()
                    .to_string(),
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
    pub(super) fn region_condition(&self, sink: &mut Sink, g: &Spanned<String>) {
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
