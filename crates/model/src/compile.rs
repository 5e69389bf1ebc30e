//! Site → policy IR. Reads a site file, resolves each device's profile, checks every binding,
//! param and unspecified value against it, and produces concrete rules. Every problem is
//! reported at once with the site file's line and column.
//!
//! The site around the devices is checked in `site.rs` (zones, services, addresses with
//! `claims.rs`); each device in `device.rs`, which checks it into a typed, resolved device
//! (values from `values.rs`, peers from `peers.rs`, site values and flow conditions from
//! `site_check.rs`) and hands that to `lower.rs`, which builds its rules and reports nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{from_yaml_error, Code, Diagnostic, FileKind, Pos, Sink, Subject};
use crate::document::{check_format_version, check_ident, pos};
use crate::error::ProfileError;
use crate::ir::{Group, Policy};
use crate::ports::port_number;
use crate::profile::Profile;
use crate::raw_site::RawSite;
use crate::validate::{check_version_first, Loaded};

mod bindings;
mod claims;
mod device;
mod dhcp_server;
mod lower;
mod peers;
mod site;
mod site_check;
mod values;

/// Finds a profile named by a site's `profile:` (a catalog id, or a file path relative to the
/// site). `Err` says why not; compile reports it as `unknown-profile`.
pub trait ProfileSource {
    fn profile(&self, name: &str) -> Result<Profile, ProfileError>;
}

/// Whether a YAML text is a site (`site:` key) rather than a profile.
pub fn is_site_text(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("site:"))
}

/// The YAML parser's limits for a site: the default node and event budgets (250,000 nodes)
/// refuse a site of some 30,000 devices, so they grow with the text, which already bounds what
/// a node can cost (every node takes at least one byte). The limits on aliases and anchors,
/// which guard against expansion bombs, stay as they are.
fn yaml_options(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len().saturating_mul(2));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Parses, validates and compiles a site.
pub fn site_text(
    file: &str,
    text: &str,
    profiles: &dyn ProfileSource,
) -> Result<Loaded<Policy>, Vec<Diagnostic>> {
    if let Some(d) =
        crate::validate::check_tabs(file, text).or_else(|| check_version_first(file, text))
    {
        return Err(vec![d]);
    }
    if !is_site_text(text) {
        let mut sink = Sink::new(file);
        let what = if text.lines().any(|l| l.starts_with("id:")) {
            "a profile"
        } else {
            "no site"
        };
        sink.error(
            Pos::new(1, 1),
            Code::NotASite,
            format!("this file has no top-level `site:` key: it is {what}"),
            "commands that take a SITE need a site file (see examples/site.yaml); `portolan validate` checks profiles",
        );
        return Err(sink.finish());
    }
    let mut raw: RawSite = serde_saphyr::from_str_with_options(text, yaml_options(text))
        .map_err(|e| vec![from_yaml_error(file, FileKind::Site, &e)])?;
    let mut sink = Sink::new(file);
    crate::inventory::load(&mut raw, file, &mut sink);
    let policy = compile(&raw, profiles, &mut sink);
    let mut diags = sink.finish();
    crate::suggest::caret_on_keys(&mut diags, file, text);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(Loaded {
        value: policy,
        warnings: diags,
    })
}

/// Compiles a raw site; problems go to `sink`.
pub fn compile(raw: &RawSite, profiles: &dyn ProfileSource, sink: &mut Sink) -> Policy {
    check_format_version(sink, &raw.portolan, 1);
    check_ident(sink, "site name", &raw.site);
    let ctx = site::context(sink, raw);
    let mut policy = Policy {
        site: raw.site.value.clone(),
        zones: ctx.zones.clone(),
        groups: Vec::new(),
        rules: Vec::new(),
        documented: Vec::new(),
        discovered: Vec::new(),
        profiles: BTreeMap::new(),
    };
    let mut claimed = claims::Claims::default();
    // Each profile is looked up (and cloned) once per site, not once per device.
    let mut resolved: BTreeMap<String, Result<Profile, ProfileError>> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    site_check::no_devices(sink, raw);
    for d in &raw.devices.value {
        check_ident(sink, "device id", &d.id);
        if !ids.insert(d.id.value.clone()) {
            sink.error_about(
                Subject::Device(d.id.value.clone()),
                pos(&d.id),
                Code::DuplicateId,
                format!("device `{}` is declared twice", d.id.value),
                "give each device or group its own id",
            );
        }
        let bindings = bindings::of_device(sink, &ctx, d, &mut claimed);
        for b in bindings.iter().filter(|b| b.interface.is_some()) {
            if !ids.insert(b.group.clone()) {
                sink.error_about(
                    Subject::Device(d.id.value.clone()),
                    pos(&d.id),
                    Code::DuplicateId,
                    format!(
                        "interface group `{}` of device `{}` has the id of another device",
                        b.group, d.id.value
                    ),
                    "rename one of them: a device's interfaces are named `DEVICE.INTERFACE`",
                );
            }
        }
        let profile = match resolved
            .entry(d.profile.value.clone())
            .or_insert_with(|| profiles.profile(&d.profile.value))
        {
            Ok(p) => &*p,
            Err(why) => {
                sink.error(
                    pos(&d.profile),
                    Code::UnknownProfile,
                    format!("profile `{}`: {why}", d.profile.value),
                    match &why {
                        ProfileError::NotInCatalog { known } => format!(
                            "{} use an id from `portolan catalog list`, or a path to a profile file",
                            crate::suggest::did_you_mean(
                                &d.profile.value,
                                known.iter().map(String::as_str)
                            )
                        )
                        .trim_start()
                        .to_string(),
                        _ => "use an id from `portolan catalog list`, or a path to a profile file"
                            .to_string(),
                    },
                );
                continue;
            }
        };
        let mode = device::check_mode(sink, d, profile);
        bindings::against_profile(sink, d, profile);
        for b in &bindings {
            policy.groups.push(Group {
                id: b.group.clone(),
                interface: b.interface.clone(),
                profile: profile.id.clone(),
                mode: mode.clone(),
                zone: b.zone.clone(),
                addresses: b.addresses.clone(),
                macs: b.macs.clone(),
            });
        }
        // Without a valid mode the flows are unknown: the mode error says it all, rather than
        // one error per flow of every mode.
        if mode.is_some() || profile.modes.is_empty() {
            device::device(
                sink,
                &ctx,
                d,
                &bindings,
                profile,
                mode.as_deref(),
                &mut policy,
            );
        }
        if !policy.profiles.contains_key(&profile.id) {
            policy.profiles.insert(profile.id.clone(), profile.clone());
        }
    }
    site::zones_without_interface(sink, raw);
    site_check::accepts(sink, raw, &policy);
    policy
}

/// A port number from an i64, for callers outside this module.
pub fn port(n: i64) -> Option<u16> {
    port_number(n).ok()
}
