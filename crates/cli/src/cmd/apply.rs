//! `portolan apply SITE [--confirm SECONDS]` and `portolan apply --confirmed`: the site's
//! nftables policy loaded in one transaction, the previous table saved, and an automatic
//! rollback unless confirmed in time (see `portolan_nft::apply`). `apply --diff SITE` (or
//! `--dry-run`) shows what a load would change and loads nothing (`portolan_nft::diff`). The
//! hidden `apply-rollback` subcommand is the detached timer that `--confirm` starts by
//! re-executing this binary.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use portolan_nft::apply::{self, Applied, Confirmation, Launcher, Options, Rollback};
use portolan_nft::diff::{self, Change, Diff};
use portolan_nft::Where;

use crate::cli::{ApplyArgs, CatalogArgs, RollbackArgs};
use crate::output::Outcome;
use crate::report;

fn target(netns: Option<&str>) -> Where {
    match netns {
        Some(n) => Where::Netns(n.to_string()),
        None => Where::Host,
    }
}

fn place(w: &Where) -> String {
    match w {
        Where::Host => "this host".to_string(),
        Where::Netns(n) => format!("network namespace {n}"),
    }
}

pub fn run(g: &CatalogArgs, a: &ApplyArgs) -> anyhow::Result<Outcome> {
    let json = a.out.json();
    let w = target(a.netns.as_deref());
    // Absolute, so that the rollback timer and the printed confirm command find the same
    // state from any directory.
    let state_dir = std::path::absolute(&a.state_dir)
        .with_context(|| format!("cannot resolve {}", a.state_dir.display()))?;
    if a.confirmed {
        w.check()?;
        let c = apply::confirm(&w, &state_dir)?;
        if json && c != Confirmation::NothingPending {
            crate::contract::print("apply-confirm", &c)?;
        }
        return Ok(match c {
            Confirmation::Confirmed { .. } => {
                if !json {
                    println!(
                        "apply: confirmed. The policy in {} stays, and its rollback timer is stopped.",
                        place(&w)
                    );
                }
                Outcome::Ok
            }
            Confirmation::AlreadyConfirmed { seconds_ago, .. } => {
                if !json {
                    println!(
                        "apply: the last apply in {} was already confirmed {seconds_ago} s ago; nothing awaits confirmation.",
                        place(&w)
                    );
                }
                Outcome::Ok
            }
            Confirmation::TooLate { detail } => {
                if !json {
                    eprintln!("apply: too late to confirm: {detail}");
                }
                Outcome::Findings
            }
            Confirmation::NothingPending => {
                return crate::contract::fail(
                    "nothing-pending",
                    format!(
                        "apply: nothing awaits confirmation in {} (state in {}).",
                        place(&w),
                        state_dir.display()
                    ),
                );
            }
        });
    }
    let Some(site) = &a.site else {
        return crate::contract::fail("usage", "give a site file, or --confirmed");
    };
    let Some(policy) = super::load_site(g, site, json)? else {
        return Ok(Outcome::BadInput);
    };
    let emit_opts = portolan_emit::Options {
        enforce: a.enforce,
        dns_redirect: a.dns_bypass == crate::cli::DnsBypass::Redirect,
        doh: a.doh.clone(),
        ..portolan_emit::Options::default()
    };
    let ruleset = portolan_emit::nftables::emit(&policy, &emit_opts)?;
    if a.diff {
        let d = diff::diff(&ruleset, &w, &state_dir)?;
        report::print(&a.out, "apply-diff", &d, || {
            describe_diff(&policy.site, &w, &state_dir, &d)
        })?;
        return Ok(Outcome::Ok);
    }
    if policy.groups.is_empty() {
        anyhow::bail!(
            "site {} declares no devices; its policy would drop all forwarded traffic through {}. Nothing was loaded.",
            policy.site,
            place(&w)
        );
    }
    let launcher = match a.confirm {
        Some(_) => Some(Launcher {
            program: std::env::current_exe()
                .context("cannot find this program for the rollback timer")?,
            args: vec!["apply-rollback".into()],
        }),
        None => None,
    };
    let opts = Options {
        target: w.clone(),
        state_dir: state_dir.clone(),
        confirm: a.confirm,
        launcher,
    };
    let done = apply::apply(&ruleset, &opts)?;
    report::print(&a.out, "apply", &done, || {
        describe(&policy.site, &w, &state_dir, &done)
    })?;
    Ok(Outcome::Ok)
}

fn describe(site: &str, w: &Where, state_dir: &Path, d: &Applied) -> String {
    let mut s = format!(
        "apply: loaded the policy of site {site} into {} in one nft transaction.\n",
        place(w)
    );
    if d.had_previous {
        s.push_str(&format!(
            "  The previous table is saved in {}.\n",
            d.saved.display()
        ));
    } else {
        s.push_str("  There was no inet portolan table before; a rollback removes it.\n");
    }
    if !d.stale_deleted.is_empty() {
        s.push_str(&format!(
            "  Deleted objects the policy no longer declares: {}.\n",
            d.stale_deleted.join(", ")
        ));
    }
    if !d.recreated.is_empty() {
        s.push_str(&format!(
            "  Declared again because their type or flags changed: {}.\n",
            d.recreated.join(", ")
        ));
    }
    if let Some(p) = &d.pending {
        s.push_str(&format!(
            "  It rolls back in {} s unless confirmed with:\n    {}\n",
            p.seconds,
            apply::confirm_command(w, state_dir)
        ));
    }
    s
}

fn list(label: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    format!("  {label} ({}): {}.\n", items.len(), items.join(", "))
}

/// `apply --diff` for a person: sentences and lists, rules grouped by their profile/flow.
fn describe_diff(site: &str, w: &Where, state_dir: &Path, d: &Diff) -> String {
    let mut s = format!(
        "apply --diff: what loading the policy of site {site} into {} would change. Nothing was loaded.\n",
        place(w)
    );
    if !d.had_previous {
        s.push_str("  There is no inet portolan table yet: everything below would be added.\n");
    }
    if d.is_empty() {
        s.push_str(&format!(
            "  Nothing would change: the table already holds this policy ({} rules).\n",
            d.rules_unchanged
        ));
    }
    s.push_str(&list("Objects added", &d.objects_added));
    s.push_str(&list("Objects removed", &d.objects_removed));
    s.push_str(&list(
        "Sets and maps declared again, and emptied, because their type or flags change",
        &d.objects_recreated,
    ));
    s.push_str(&list(
        "DNS-filled sets the policy no longer uses, kept with their elements",
        &d.dns_sets_kept,
    ));
    if !d.rules.is_empty() {
        let added = d.rules.iter().filter(|r| r.change == Change::Added).count();
        s.push_str(&format!(
            "  Rules added ({added}) and removed ({}), by the profile/flow they enforce:\n",
            d.rules.len() - added
        ));
        let mut current: Option<&Option<String>> = None;
        for r in &d.rules {
            if current != Some(&r.provenance) {
                s.push_str(&format!(
                    "    {}\n",
                    r.provenance
                        .as_deref()
                        .unwrap_or("Portolan's own rules (dispatch, logging, hooks and policies)")
                ));
                current = Some(&r.provenance);
            }
            let sign = match r.change {
                Change::Added => '+',
                Change::Removed => '-',
            };
            s.push_str(&format!("      {sign} chain {}: {}\n", r.chain, r.rule));
        }
    }
    if !d.elements.is_empty() {
        s.push_str("  Elements of sets and maps:\n");
        for e in &d.elements {
            for x in &e.added {
                s.push_str(&format!("    + {}: {x}\n", e.object));
            }
            for x in &e.removed {
                s.push_str(&format!("    - {}: {x}\n", e.object));
            }
        }
    }
    if !d.is_empty() {
        s.push_str(&format!(
            "  {} rules stay as they are.\n",
            d.rules_unchanged
        ));
    }
    if let Some(p) = &d.pending {
        s.push_str(&format!(
            "  An apply awaits confirmation (rollback in {} s); a new apply is refused until `{}` or the rollback.\n",
            p.deadline.saturating_sub(now()),
            apply::confirm_command(w, state_dir)
        ));
    }
    s
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The detached rollback timer.
pub fn rollback(a: &RollbackArgs) -> anyhow::Result<Outcome> {
    let w = target(a.netns.as_deref());
    match apply::rollback_after(&w, &a.state_dir, &a.token, Duration::from_secs(a.after))? {
        Rollback::RolledBack => {
            eprintln!("apply-rollback {}: restored the previous ruleset", a.token)
        }
        Rollback::NotNeeded => eprintln!(
            "apply-rollback {}: confirmed in time, nothing to do",
            a.token
        ),
    }
    Ok(Outcome::Ok)
}
