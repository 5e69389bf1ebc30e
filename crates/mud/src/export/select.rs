//! Which flows a MUD file holds, and which of them get no ACE because the profile's second
//! edition says they are not used: the interface the file is for, the picks in choice groups,
//! and flows another flow replaces.
//!
//! - **Interface.** A MUD manager applies a file to the device that announced its URL, on the
//!   port it announced it from (RFC 8520 section 1.8); a file cannot say "these ACEs on that
//!   interface only". A multi-homed profile (two interfaces or more) is therefore exported one
//!   interface per file (`--interface`, like `--mode`), each file holding the flows that use
//!   it ([`Profile::flow_uses`]); without it the export is refused rather than giving the OT
//!   side the IT side's flows.
//! - **Choices.** `--choose GROUP=FLOW` picks as a site's `choose:` does: the group's other
//!   flows get no ACE. A `policy: one` group with two flows or more in the mode and no pick is
//!   refused (exactly one is used, and MUD cannot say which); `any` and `ordered` groups
//!   without a pick keep every flow, each with its own ACEs (the compiler opens them all too).
//! - **Replaces.** A flow that applies wherever its mode does (no conditions, not left out by
//!   a pick) takes the place of those it `replaces`: they get no ACE. Under conditions MUD
//!   cannot hold, both keep their ACEs and the replaced flow gets a warning.

use std::collections::BTreeMap;

use portolan_model::{ChoicePolicy, Flow, Profile};

use crate::error::MudError;

/// What the MUD file holds.
pub(crate) struct Selection<'p> {
    pub interface: Option<String>,
    /// The mode's flows that use the interface, in the profile's order.
    pub flows: Vec<&'p Flow>,
    /// Flows held in the extension without ACEs, and why.
    pub held: BTreeMap<String, String>,
    /// Flows that keep their ACEs although a conditional flow replaces them: the replacing
    /// flows' ids.
    pub replaced_when: BTreeMap<String, Vec<String>>,
}

/// The interface to export: the one asked for, or none for a profile with fewer than two.
pub(crate) fn resolve_interface(
    profile: &Profile,
    asked: Option<&str>,
) -> Result<Option<String>, MudError> {
    let ids: Vec<&str> = profile.interfaces.iter().map(|i| i.id.as_str()).collect();
    match (asked, ids.as_slice()) {
        (None, []) => Ok(None),
        (None, [only]) => Ok(Some((*only).to_string())),
        (None, _) => Err(MudError::Export(format!(
            "profile `{}` has interfaces ({}): a MUD manager applies a file to every packet of the device that announced it, so a file holds one interface's flows; choose it with --interface and publish one MUD URL per interface",
            profile.id,
            ids.join(", ")
        ))),
        (Some(i), _) if profile.interface(i).is_some() => Ok(Some(i.to_string())),
        (Some(i), []) => Err(MudError::Export(format!(
            "profile `{}` declares no interfaces (asked for `{i}`)",
            profile.id
        ))),
        (Some(i), _) => Err(MudError::Export(format!(
            "profile `{}` has no interface `{i}` (interfaces: {})",
            profile.id,
            ids.join(", ")
        ))),
    }
}

/// Selects the flows of `mode` and `interface`, with the picks in `choose` checked.
pub(crate) fn select<'p>(
    profile: &'p Profile,
    mode: Option<&str>,
    interface: Option<String>,
    choose: &BTreeMap<String, String>,
) -> Result<Selection<'p>, MudError> {
    let flows: Vec<&Flow> = profile
        .flows
        .iter()
        .filter(|f| f.in_mode(mode))
        .filter(|f| interface.as_deref().is_none_or(|i| profile.flow_uses(f, i)))
        .collect();
    let here = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .filter(|id| flows.iter().any(|f| &f.id == *id))
            .cloned()
            .collect()
    };
    let mut held = BTreeMap::new();
    for (group, pick) in choose {
        let Some(a) = profile.alternatives.iter().find(|a| &a.id == group) else {
            let known: Vec<&str> = profile.alternatives.iter().map(|a| a.id.as_str()).collect();
            return Err(MudError::Export(format!(
                "--choose {group}={pick}: profile `{}` has no choice group `{group}` (groups: {})",
                profile.id,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        let members = here(&a.flows);
        if !members.contains(pick) {
            return Err(MudError::Export(format!(
                "--choose {group}={pick}: `{pick}` is no flow of choice group `{group}` in this file (pick one of: {})",
                members.join(", ")
            )));
        }
        for f in members.iter().filter(|f| *f != pick) {
            held.insert(
                f.clone(),
                format!(
                    "not chosen: choice group `{group}` ({}) picks `{pick}`",
                    a.policy.name()
                ),
            );
        }
    }
    for a in &profile.alternatives {
        let members = here(&a.flows);
        if a.policy == ChoicePolicy::One && members.len() > 1 && !choose.contains_key(&a.id) {
            return Err(MudError::Export(format!(
                "profile `{}` says exactly one of {} is used (choice group `{}`, policy one); MUD cannot say which, so pick it with --choose {}={}",
                profile.id,
                members.join(", "),
                a.id,
                a.id,
                members[0]
            )));
        }
    }
    let mut replaced_when: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &flows {
        if held.contains_key(&f.id) {
            continue;
        }
        for r in here(&f.replaces) {
            if f.conditions.is_empty() {
                held.insert(r, format!("replaced by flow `{}`", f.id));
            } else {
                replaced_when.entry(r).or_default().push(f.id.clone());
            }
        }
    }
    for id in held.keys() {
        replaced_when.remove(id);
    }
    Ok(Selection {
        interface,
        flows,
        held,
        replaced_when,
    })
}
