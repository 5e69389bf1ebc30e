//! `portolan schema KIND`: the JSON Schema of the profile and site file formats (for editors),
//! or of one kind of `--format json` document (`schemas/<kind>.v1.json`, draft 2020-12,
//! embedded at build time; README "JSON contract").

use crate::cli::{SchemaArgs, SchemaKind};
use crate::output::Outcome;

/// The schema of each kind of document, as the repository's `schemas/` holds it.
pub fn document_schema(kind: SchemaKind) -> Option<&'static str> {
    macro_rules! file {
        ($name:literal) => {
            include_str!(concat!("../../../../schemas/", $name, ".v1.json"))
        };
    }
    Some(match kind {
        SchemaKind::Profile | SchemaKind::Site => return None,
        SchemaKind::Error => file!("error"),
        SchemaKind::Catalog => file!("catalog"),
        SchemaKind::Show => file!("show"),
        SchemaKind::Doc => file!("doc"),
        SchemaKind::Validate => file!("validate"),
        SchemaKind::Compile => file!("compile"),
        SchemaKind::Ir => file!("ir"),
        SchemaKind::Lab => file!("lab"),
        SchemaKind::Apply => file!("apply"),
        SchemaKind::ApplyDiff => file!("apply-diff"),
        SchemaKind::ApplyConfirm => file!("apply-confirm"),
        SchemaKind::Enforce => file!("enforce"),
        SchemaKind::EnforceStatus => file!("enforce-status"),
        SchemaKind::Probe => file!("probe"),
        SchemaKind::Scan => file!("scan"),
        SchemaKind::MudExport => file!("mud-export"),
        SchemaKind::MudImport => file!("mud-import"),
        SchemaKind::MudVerify => file!("mud-verify"),
        SchemaKind::Audit => file!("audit"),
        SchemaKind::AuditKafka => file!("audit-kafka"),
        SchemaKind::Learn => file!("learn"),
        SchemaKind::Verify => file!("verify"),
        SchemaKind::Lint => file!("lint"),
        SchemaKind::Report => file!("report"),
        SchemaKind::Explain => file!("explain"),
    })
}

pub fn run(a: &SchemaArgs) -> anyhow::Result<Outcome> {
    match document_schema(a.kind) {
        Some(text) => print!("{text}"),
        None => {
            let schema = match a.kind {
                SchemaKind::Site => portolan_model::site_schema(),
                _ => portolan_model::profile_schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
        }
    }
    Ok(Outcome::Ok)
}
