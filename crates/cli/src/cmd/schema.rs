//! `portolan schema profile|site`: the JSON Schema of the file formats, for editors.

use crate::cli::{SchemaArgs, SchemaKind};
use crate::output::Outcome;

pub fn run(a: &SchemaArgs) -> anyhow::Result<Outcome> {
    let schema = match a.kind {
        SchemaKind::Profile => portolan_model::profile_schema(),
        SchemaKind::Site => portolan_model::site_schema(),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(Outcome::Ok)
}
