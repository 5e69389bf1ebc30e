//! `portolan catalog list|show|doc`.

use serde::Serialize;

use crate::cli::{CatalogArgs, CatalogCmd, ListArgs};
use crate::output::Outcome;
use crate::report;

pub fn run(c: &CatalogCmd) -> anyhow::Result<Outcome> {
    match c {
        CatalogCmd::List(a) => list(&a.cat, a),
        CatalogCmd::Show(a) => super::show::run(&a.cat, a),
        CatalogCmd::Doc(a) => super::doc::run(&a.cat, a),
    }
}

#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    vendor: &'a str,
    product: &'a str,
    modes: Vec<&'a str>,
    flows: usize,
    origin: String,
}

fn list(g: &CatalogArgs, a: &ListArgs) -> anyhow::Result<Outcome> {
    let cat = super::load_catalog(g)?;
    let rows: Vec<Row> = cat
        .entries
        .iter()
        .map(|e| Row {
            id: &e.profile.id,
            vendor: &e.profile.vendor,
            product: &e.profile.product,
            modes: e.profile.modes.iter().map(|m| m.id.as_str()).collect(),
            flows: e.profile.flows.len(),
            origin: e.origin.to_string(),
        })
        .collect();
    report::print(
        &a.out,
        "catalog",
        &serde_json::json!({ "profiles": rows }),
        || {
            let mut t = report::table(["id", "vendor", "product", "modes", "flows"]);
            crate::table::fit(&mut t);
            for r in &rows {
                t.add_row([
                    r.id.to_string(),
                    r.vendor.to_string(),
                    r.product.to_string(),
                    r.modes.join(", "),
                    r.flows.to_string(),
                ]);
            }
            crate::table::keep_whole(&mut t, &[0, 4]);
            format!("{t}\n")
        },
    )?;
    Ok(Outcome::Ok)
}
