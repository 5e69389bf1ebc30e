//! `portolan init profile` and `portolan init site`: a file to start from that validates as
//! written, each value a person must replace marked `# TODO`.
//!
//! A profile comes from a catalog id (`--from`, the catalog's own text, renamed with `--id`) or
//! from `--id`, `--vendor` and `--product` (one cited cloud flow to edit). A site binds one
//! device per `--profile` in a field zone behind `lan0`, with the Internet behind `wan0`; what
//! its profiles leave to the site is found by compiling the draft, not guessed: each role the
//! compiler reports unbound is bound to a documentation address (RFC 5737, which no packet
//! reaches) marked TODO, each service it needs is declared on the firewall, and a profile with
//! modes gets its first mode. Whatever the compiler still reports (a param only a person can
//! know) is printed with its help, and the exit code is 1.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::bail;
use clap::{Args, Subcommand};
use portolan_model::catalog::{Origin, EMBEDDED};
use portolan_model::{Diagnostic, Subject};

use crate::cli::{CatalogArgs, OutputFile};
use crate::output::{print_diagnostics, Outcome};

#[derive(Debug, Subcommand)]
pub enum InitCmd {
    /// A new profile: a copy of a catalog profile (--from), or a skeleton with one flow.
    ///
    /// Example: portolan init profile --id acme-sensor --vendor Acme --product "Sensor 2" -o
    /// acme-sensor.yaml; portolan init profile --from thingpark-lrr --id my-lrr
    Profile(InitProfileArgs),
    /// A new site with one device per --profile, every role bound to a TODO address.
    ///
    /// Example: portolan init site --name plant --profile oscar-templog-gateway -o site.yaml
    Site(InitSiteArgs),
}

#[derive(Debug, Args)]
pub struct InitProfileArgs {
    /// Start from this catalog profile (its text, comments and citations included).
    #[arg(long, value_name = "ID")]
    pub from: Option<String>,
    /// The new profile's id (lowercase letters, digits and `-`).
    #[arg(long, required_unless_present = "from")]
    pub id: Option<String>,
    /// The vendor, as the vendor writes its name.
    #[arg(long, required_unless_present = "from")]
    pub vendor: Option<String>,
    /// The product, as the vendor names it.
    #[arg(long, required_unless_present = "from")]
    pub product: Option<String>,
    #[command(flatten)]
    pub file: OutputFile,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct InitSiteArgs {
    /// The site's name.
    #[arg(long, default_value = "my-site")]
    pub name: String,
    /// A device to add, by catalog id or profile file (repeat for more).
    #[arg(long = "profile", value_name = "ID")]
    pub profiles: Vec<String>,
    #[command(flatten)]
    pub file: OutputFile,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

pub fn run(c: &InitCmd) -> anyhow::Result<Outcome> {
    match c {
        InitCmd::Profile(a) => profile(&a.cat, a),
        InitCmd::Site(a) => site(&a.cat, a),
    }
}

fn profile(g: &CatalogArgs, a: &InitProfileArgs) -> anyhow::Result<Outcome> {
    let text = match &a.from {
        Some(from) => {
            let mut text = catalog_text(g, from)?;
            if let Some(id) = &a.id {
                text = replace_top_level(&text, "id", id);
            }
            if let Some(v) = &a.vendor {
                text = replace_top_level(&text, "vendor", &yaml_str(v));
            }
            if let Some(p) = &a.product {
                text = replace_top_level(&text, "product", &yaml_str(p));
            }
            text
        }
        None => skeleton(
            a.id.as_deref().unwrap_or_default(),
            a.vendor.as_deref().unwrap_or_default(),
            a.product.as_deref().unwrap_or_default(),
        ),
    };
    // What is written validates: checked here, so a bad --id is reported, not written.
    let name = a
        .file
        .output
        .as_ref()
        .map_or("<new profile>".to_string(), |p| p.display().to_string());
    match portolan_model::validate::profile_text(&name, &text) {
        Ok(l) => print_diagnostics(&l.warnings),
        Err(d) => {
            print_diagnostics(&d);
            return Ok(Outcome::BadInput);
        }
    }
    crate::write::to_output(a.file.output.as_deref(), text.as_bytes())?;
    Ok(Outcome::Ok)
}

/// The YAML text of a catalog profile: the shipped file, or the file `--catalog` named.
fn catalog_text(g: &CatalogArgs, id: &str) -> anyhow::Result<String> {
    let cat = super::load_catalog(g)?;
    let Some(entry) = cat.entries.iter().find(|e| e.profile.id == id) else {
        let known: Vec<&str> = cat.ids().collect();
        let near = portolan_model::suggest::nearest(id, known.iter().copied());
        let hint = near.map_or(String::new(), |n| format!("; did you mean `{n}`?"));
        bail!(
            "no profile `{id}` in the catalog{hint} (known: {})",
            known.join(", ")
        );
    };
    Ok(match &entry.origin {
        Origin::Embedded(name) => EMBEDDED
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| (*t).to_string())
            .unwrap_or_default(),
        Origin::File(p) => std::fs::read_to_string(p)?,
    })
}

/// Replaces the value of a top-level `key:` line (the first one).
fn replace_top_level(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}:");
    let mut done = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !done && line.starts_with(&prefix) {
            let _ = writeln!(out, "{prefix} {value}");
            done = true;
        } else {
            out.push_str(line);
        }
    }
    out
}

/// A YAML double-quoted string (JSON's escapes are YAML's).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn skeleton(id: &str, vendor: &str, product: &str) -> String {
    format!(
        r#"# Portolan profile: {product} ({vendor}). Written by `portolan init profile`: replace every
# TODO with what the vendor's documentation states, and cite where it states it.
# Format: docs/profile-format.md; check with `portolan validate FILE`.
portolan: 1
id: {id}
vendor: {vendor_q}
product: {product_q}
description: >-
  TODO: what the device does, and what it needs from the network.
sources:
  - id: vendor
    title: TODO the title of the vendor's network requirements page
    url: https://example.com/TODO

endpoints:
  - id: cloud
    description: TODO the vendor's cloud service
    hosts: [cloud.example.com]  # TODO the host names the vendor lists
    source: {{doc: vendor, ref: "TODO section or table"}}

flows:
  - id: cloud
    from: device
    to: cloud
    initiation: device
    protocol: tcp
    ports: 443
    app: HTTPS
    description: TODO why the device makes this connection.
    source: {{doc: vendor, ref: "TODO section or table"}}

# Ports the device itself listens on; `none` only when the vendor says so.
listens: unspecified
"#,
        vendor_q = yaml_str(vendor),
        product_q = yaml_str(product),
    )
}

/// A device of the draft site and what the compiler asked of it.
#[derive(Default)]
struct Draft {
    profile: String,
    mode: Option<String>,
    bind: BTreeMap<String, String>,
}

fn site(g: &CatalogArgs, a: &InitSiteArgs) -> anyhow::Result<Outcome> {
    let catalog = super::load_catalog(g)?;
    let profiles = super::SiteProfiles {
        catalog,
        base: std::env::current_dir()?,
    };
    let mut devices: Vec<Draft> = a
        .profiles
        .iter()
        .map(|p| Draft {
            profile: p.clone(),
            ..Draft::default()
        })
        .collect();
    let mut services: Vec<String> = vec!["dns".into(), "dhcp".into()];
    let mut next_doc_address = 10u8;
    let mut left: Vec<Diagnostic> = Vec::new();
    let shown = a
        .file
        .output
        .as_ref()
        .map_or("<new site>".to_string(), |p| p.display().to_string());
    // Each round answers what the compiler reported; a role bound may reveal no new ones, so
    // a few rounds settle every catalog profile.
    for _ in 0..4 {
        let text = site_text(&a.name, &devices, &services);
        let diags = match portolan_model::compile::site_text(&shown, &text, &profiles) {
            Ok(l) => l.warnings.into_iter().filter(|d| d.is_error()).collect(),
            Err(d) => d,
        };
        let mut changed = false;
        left.clear();
        for d in diags.into_iter().filter(Diagnostic::is_error) {
            let device = device_of(&text, d.line);
            match (&d.subject, device) {
                (Subject::Role(r), Some(i)) if !devices[i].bind.contains_key(r) => {
                    let addr = format!("198.51.100.{next_doc_address}");
                    next_doc_address = next_doc_address.saturating_add(1);
                    devices[i].bind.insert(r.clone(), addr);
                    changed = true;
                }
                (Subject::Mode { choices }, Some(i)) if devices[i].mode.is_none() => {
                    devices[i].mode = choices.first().cloned();
                    changed = devices[i].mode.is_some();
                }
                (Subject::Service(s), _) if !services.contains(s) => {
                    services.push(s.clone());
                    changed = true;
                }
                _ => left.push(d),
            }
        }
        if !changed {
            break;
        }
    }
    let text = site_text(&a.name, &devices, &services);
    crate::write::to_output(a.file.output.as_deref(), text.as_bytes())?;
    if left.is_empty() {
        return Ok(Outcome::Ok);
    }
    eprintln!("the site needs values only you can give (`portolan validate` shows them again):");
    print_diagnostics(&left);
    Ok(Outcome::Findings)
}

/// The device (index) whose block holds `line` of the draft site text.
fn device_of(text: &str, line: u64) -> Option<usize> {
    let mut idx = None;
    for (n, l) in text.lines().enumerate() {
        if n as u64 + 1 > line {
            break;
        }
        if l.starts_with("  - id: device-") {
            idx = l
                .trim_start_matches("  - id: device-")
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .map(|i| i - 1);
        }
    }
    idx
}

fn site_text(name: &str, devices: &[Draft], services: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# A Portolan site, written by `portolan init site`. Replace every TODO with this site's\n\
         # values; check with `portolan validate FILE`. Format: docs/site-format.md.\n\
         portolan: 1\n\
         site: {name}\n\
         zones:\n  \
           - id: field\n    \
             interface: lan0              # TODO the interface the devices sit behind\n    \
             networks: [10.20.0.0/24]     # TODO their network\n  \
           - id: wan\n    \
             interface: wan0              # TODO the interface towards the Internet\n\
         services:"
    );
    for svc in services {
        let _ = writeln!(
            s,
            "  {svc}: firewall               # or a list of the servers' addresses"
        );
    }
    if devices.is_empty() {
        let _ = writeln!(
            s,
            "devices: []                      # TODO add devices: `--profile ID`"
        );
    } else {
        let _ = writeln!(s, "devices:");
    }
    for (i, d) in devices.iter().enumerate() {
        let _ = writeln!(
            s,
            "  - id: device-{}                # TODO a name for this device",
            i + 1
        );
        let _ = writeln!(s, "    profile: {}", d.profile);
        if let Some(m) = &d.mode {
            let _ = writeln!(
                s,
                "    mode: {m}                    # TODO the mode this device runs"
            );
        }
        let _ = writeln!(s, "    zone: field");
        let _ = writeln!(
            s,
            "    addresses: [10.20.0.{}]       # TODO the device's address or prefix",
            10 + i
        );
        if !d.bind.is_empty() {
            let _ = writeln!(s, "    bind:");
            for (role, addr) in &d.bind {
                let _ = writeln!(
                    s,
                    "      {role}: [{addr}]   # TODO the {role} server's address (RFC 5737 placeholder)"
                );
            }
        }
    }
    s
}
