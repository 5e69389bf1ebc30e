//! `portolan report`: one self-contained HTML page of a site, for the people a site's
//! requirements are handed to. It shows the site drawn (zones, firewall, device groups, peers;
//! an arrow per group and peer labelled with the traffic, coloured by status; [`layout`]), per
//! device group every flow with its provenance (`profile/flow`), the vendor's citation
//! (document and row), the nftables rules that enforce it as emitted ([`rules`]), its
//! alternatives and conditions, and — when given — the results of `lab`, `probe`, `audit`,
//! `verify`, `lint` and `scan` laid over each flow ([`overlay`]). [`render_profile`] makes the
//! page of one profile (`portolan doc --format html`) from the same templates ([`doc`]).
//! A small inline script filters by device, peer or port; each flow has a stable anchor (`#flow-<group>/<flow>`) for links
//! from tickets; a print style sheet makes it a document.
//!
//! The page references nothing outside itself: CSS, script and SVG are inline, and citation
//! URLs are shown as text, never fetched or linked. Strings from profiles and sites reach the
//! page only through the template engine's HTML escaping (`minijinja`, auto-escape on for
//! `.html` templates). The same inputs give the same bytes: nothing is timed or hashed.

pub mod doc;
mod error;
pub mod layout;
pub mod overlay;
pub mod rules;
pub mod view;

pub use error::ReportError;
pub use overlay::{Color, OverlayFiles, Overlays, Source};

use portolan_model::ir::Policy;
use serde::Serialize;

/// The templates, compiled into the binary: the page around both documents (`base.html`:
/// head, style sheet, filter script), the flow table they share (`flows.html`), the site's
/// report and a profile's document.
const TEMPLATES: [(&str, &str); 4] = [
    ("base.html", include_str!("../templates/base.html")),
    ("flows.html", include_str!("../templates/flows.html")),
    ("report.html", include_str!("../templates/report.html")),
    ("profile.html", include_str!("../templates/profile.html")),
];

fn environment() -> Result<minijinja::Environment<'static>, ReportError> {
    let mut env = minijinja::Environment::new();
    for (name, text) in TEMPLATES {
        env.add_template(name, text)?;
    }
    Ok(env)
}

/// The page of one profile (`portolan doc ID --format html`), every mode or only `mode`.
pub fn render_profile(
    profile: &portolan_model::Profile,
    mode: Option<&str>,
) -> Result<String, ReportError> {
    let page = doc::page(profile, mode);
    Ok(environment()?
        .get_template("profile.html")?
        .render(minijinja::context! {
            page => minijinja::Value::from(minijinja::value::Serde(&page)),
        })?)
}

/// A rendered report and its summary (what `--format json` prints).
pub struct Rendered {
    pub html: String,
    pub summary: Summary,
}

/// What the page holds, in numbers, and the flows results showed not to hold.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub site: String,
    pub groups: usize,
    pub flows: usize,
    /// The overlays read.
    pub sources: Vec<&'static str>,
    pub green: usize,
    pub grey: usize,
    pub red: usize,
    /// Anchors of the red flows (`flow-<group>/<flow>`).
    pub red_flows: Vec<String>,
    /// Red notes on groups: what a source found that is no flow (audit violations, ports a
    /// scan found open beyond the profile).
    pub red_notes: usize,
    /// Whether the diagram shows one node per zone and profile.
    pub collapsed: bool,
    pub bytes: usize,
}

/// Renders the report of `policy` with `overlays`; the nftables ruleset shown is the one
/// `portolan compile --target nftables` writes for it (default options).
pub fn render(policy: &Policy, overlays: &Overlays) -> Result<Rendered, ReportError> {
    let nft = portolan_emit::nftables::emit(policy, &portolan_emit::Options::default())?;
    let emitted = rules::Emitted::read(&nft);
    let page = view::page(policy, &emitted, overlays);
    let diagram = layout::diagram(policy, &page);
    let env = environment()?;
    let html = env
        .get_template("report.html")?
        .render(minijinja::context! {
            page => minijinja::Value::from(minijinja::value::Serde(&page)),
            diagram => minijinja::Value::from(minijinja::value::Serde(&diagram)),
        })?;
    let red_flows = page
        .groups
        .iter()
        .flat_map(|g| g.flows.iter())
        .filter(|f| f.status == "red")
        .map(|f| f.anchor.clone())
        .collect();
    let summary = Summary {
        site: page.site.clone(),
        groups: page.totals.groups,
        flows: page.totals.flows,
        sources: page.sources.clone(),
        green: page.totals.green,
        grey: page.totals.grey,
        red: page.totals.red,
        red_flows,
        red_notes: overlays
            .group_notes
            .values()
            .flatten()
            .filter(|(_, c, _)| *c == Color::Red)
            .count(),
        collapsed: diagram.collapsed,
        bytes: html.len(),
    };
    Ok(Rendered { html, summary })
}
