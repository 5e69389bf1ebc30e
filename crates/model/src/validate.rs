//! Raw profile → typed [`Profile`], reporting every problem at once. Each check has a stable
//! code; `docs/profile-format.md` describes the rules the checks enforce.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::diag::{from_yaml_error, Code, Diagnostic, FileKind, Pos, Sink};
use crate::document::{check_format_version, check_ident, pos};
use crate::profile::*;
use crate::raw::*;
use crate::syntax::is_profile_id;

pub use crate::document::{check_tabs, check_version_first, Loaded};
pub use condition::parse_version_req;

mod condition;
mod endpoint;
mod flow;
mod interface;
mod param;
mod sections;
mod usage;

/// Parses and validates a profile's text. `file` is only used in diagnostics.
pub fn profile_text(file: &str, text: &str) -> Result<Loaded<Profile>, Vec<Diagnostic>> {
    if let Some(d) = check_tabs(file, text).or_else(|| check_version_first(file, text)) {
        return Err(vec![d]);
    }
    let raw: RawProfile = serde_saphyr::from_str(text)
        .map_err(|e| vec![from_yaml_error(file, FileKind::Profile, &e)])?;
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
    /// The file's edition (`portolan:`): the second edition's constructs need 2.
    edition: i64,
    sources: BTreeSet<String>,
    params: HashMap<String, &'a RawParam>,
    features: BTreeSet<String>,
    modes: BTreeSet<String>,
    endpoints: BTreeSet<String>,
    /// The device's interfaces (edition 2), for the flows' `interface:`.
    interfaces: BTreeSet<String>,
}

/// Validates a raw profile; problems go to `sink`. The returned profile is meaningful only
/// when `sink` holds no error.
pub fn profile(raw: &RawProfile, sink: &mut Sink) -> Profile {
    check_format_version(sink, &raw.portolan, 2);
    if !is_profile_id(&raw.id.value) {
        sink.error(
            pos(&raw.id),
            Code::InvalidId,
            format!("profile id `{}` is not valid", raw.id.value),
            "use lowercase letters, digits and '-'",
        );
    }
    let ctx = Ctx {
        edition: raw.portolan.value,
        sources: unique_ids(sink, "source", raw.sources.iter().map(|s| &s.id)),
        params: raw.params.iter().map(|p| (p.id.value.clone(), p)).collect(),
        features: unique_ids(sink, "feature", raw.features.iter().map(|f| &f.id)),
        modes: unique_ids(sink, "mode", raw.modes.iter().map(|m| &m.id)),
        endpoints: unique_ids(sink, "endpoint", raw.endpoints.iter().map(|e| &e.id)),
        interfaces: unique_ids(sink, "interface", raw.interfaces.iter().map(|i| &i.id)),
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
            ctx.source_facts(sink, s);
            SourceDoc {
                id: s.id.value.clone(),
                title: s.title.clone(),
                file: s.file.clone(),
                url: s.url.clone(),
                date: s.date.as_ref().map(|d| d.value.clone()),
                revision: s.revision.as_ref().map(|r| r.value.clone()),
                perspective: s
                    .perspective
                    .as_ref()
                    .and_then(|w| Perspective::ALL.into_iter().find(|x| x.name() == w.value)),
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
    let interfaces = ctx.interfaces(sink, raw);
    let flows: Vec<Flow> = raw.flows.iter().map(|f| ctx.flow(sink, f)).collect();
    ctx.flow_ids(sink, raw);
    ctx.tunnels(sink, raw, &flows);
    ctx.replacements(sink, raw, &flows);
    let alternatives = raw
        .alternatives
        .iter()
        .map(|a| ctx.alternative(sink, a, raw, &flows))
        .collect();
    let listens = ctx.listens(sink, raw);
    let notes = raw.notes.iter().map(|n| ctx.note(sink, n)).collect();
    let requirements = raw
        .requirements
        .iter()
        .map(|r| ctx.requirement(sink, r))
        .collect();

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
        portolan: if raw.portolan.value == 2 { 2 } else { 1 },
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
        requirements,
        interfaces,
    }
}

impl Ctx<'_> {
    /// A construct of the second edition, written at `at`: an error in a `portolan: 1` file.
    fn needs_edition2(&self, sink: &mut Sink, at: Pos, what: &str) {
        if self.edition < 2 {
            sink.error(
                at,
                Code::EditionRequired,
                format!("{what} belongs to the profile format's second edition"),
                "write `portolan: 2` as the file's first line (docs/profile-format.md)",
            );
        }
    }

    /// `truncated:` on a citation: edition 2, a warning that the row is cut, what it shows,
    /// and the names of the values it hides (checked against the flow in `flow.rs`).
    fn truncated(
        &self,
        sink: &mut Sink,
        c: &crate::raw::RawCitation,
        t: &Spanned<crate::raw::RawTruncated>,
    ) -> crate::profile::Truncated {
        use crate::profile::Hidden;
        self.needs_edition2(sink, pos(t), "`truncated:` on a citation");
        let seen = t.value.seen.value.trim();
        if seen.is_empty() {
            sink.error(
                pos(&t.value.seen),
                Code::InvalidValue,
                "`truncated.seen` is empty",
                "copy the row exactly as the source shows it, cut included",
            );
        } else {
            sink.warning(
                pos(t),
                Code::TruncatedRow,
                format!(
                    "the source cuts row `{}` of `{}`; it shows only \"{seen}\"",
                    c.reference, c.doc.value
                ),
                "keep what the row hides `unspecified` unless another source gives it; read the row again when the source is fixed",
            );
        }
        let mut hides = Vec::new();
        for h in &t.value.hides {
            match Hidden::ALL.iter().find(|x| x.as_str() == h.value) {
                Some(x) if !hides.contains(x) => hides.push(*x),
                Some(_) => {}
                None => sink.error(
                    pos(h),
                    Code::InvalidValue,
                    format!("`{}` is not a value a row can hide", h.value),
                    "use protocol, ports, src_ports or keepalive",
                ),
            }
        }
        crate::profile::Truncated {
            seen: t.value.seen.value.clone(),
            hides,
        }
    }

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
                    truncated: c.truncated.as_ref().map(|t| self.truncated(sink, c, t)),
                }
            })
            .collect()
    }
}
