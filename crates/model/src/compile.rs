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
use crate::raw_site::{RawDevice, RawSite};
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

/// Parses, validates and compiles a site; a large site's devices on every core ([`compile`]).
pub fn site_text(
    file: &str,
    text: &str,
    profiles: &dyn ProfileSource,
) -> Result<Loaded<Policy>, Vec<Diagnostic>> {
    site_text_on(file, text, profiles, None)
}

/// [`site_text`] with the devices checked on `threads` threads ([`compile_on`]), or as
/// [`compile`] chooses when `None`: for the test that holds every thread count to one answer.
pub fn site_text_on(
    file: &str,
    text: &str,
    profiles: &dyn ProfileSource,
    threads: Option<usize>,
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
    let policy = match threads {
        Some(n) => compile_on(&raw, profiles, &mut sink, n),
        None => compile(&raw, profiles, &mut sink),
    };
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

/// Sites with at least this many devices per thread check and lower their devices on several
/// threads ([`compile_on`]); below it a thread costs more than it saves.
const DEVICES_PER_THREAD: usize = 2_000;

/// The stack of a thread checking devices: a main thread's usual 8 MiB, not a spawned
/// thread's 2 MiB.
const WORKER_STACK: usize = 8 << 20;

/// Compiles a raw site; problems go to `sink`. A large site's devices are checked and lowered
/// on every core ([`compile_on`]); the result is the one a single thread gives.
pub fn compile(raw: &RawSite, profiles: &dyn ProfileSource, sink: &mut Sink) -> Policy {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores
        .min(raw.devices.value.len() / DEVICES_PER_THREAD)
        .max(1);
    compile_on(raw, profiles, sink, threads)
}

/// One device whose flows are checked and lowered, once every device is placed.
struct Job<'a> {
    device: &'a RawDevice,
    bindings: Vec<bindings::Binding>,
    profile: &'a Profile,
    mode: Option<String>,
    /// How many of the site's diagnostics were made up to and including this device's
    /// placement: its own checks' diagnostics follow them.
    diags_before: usize,
}

/// What checking and lowering a run of devices gave, in their order.
struct Done {
    rules: Vec<crate::ir::Rule>,
    documented: Vec<crate::ir::Documented>,
    discovered: Vec<crate::ir::Rule>,
    /// The devices' diagnostics, in their order.
    diagnostics: Vec<Diagnostic>,
    /// Where each device's diagnostics end in `diagnostics`.
    ends: Vec<usize>,
    /// The work counted on the thread that did it (`crate::work`), for a worker's to be added
    /// to the calling thread's count.
    visits: u64,
}

/// Checks and lowers `jobs` in order, on the calling thread.
fn run_jobs(jobs: &[Job], ctx: &site::SiteCtx, site: &Sink) -> Done {
    let before = crate::work::visits();
    let mut part = Policy {
        site: String::new(),
        zones: Vec::new(),
        groups: Vec::new(),
        rules: Vec::new(),
        documented: Vec::new(),
        discovered: Vec::new(),
        profiles: BTreeMap::new(),
    };
    let mut sink = site.fork();
    let mut ends = Vec::with_capacity(jobs.len());
    for j in jobs {
        device::device(
            &mut sink,
            ctx,
            j.device,
            &j.bindings,
            j.profile,
            j.mode.as_deref(),
            &mut part,
        );
        ends.push(sink.diagnostics.len());
    }
    Done {
        rules: part.rules,
        documented: part.documented,
        discovered: part.discovered,
        diagnostics: sink.diagnostics,
        ends,
        visits: crate::work::visits().saturating_sub(before),
    }
}

/// [`compile`] with the devices' checks and lowering split over `threads` threads, each taking
/// a run of consecutive devices. Placing the devices (ids, addresses, profiles, modes) stays on
/// the calling thread, since each device's addresses are claimed against those before it; the
/// runs' rules and diagnostics are put back in the devices' order, so the policy and the
/// diagnostics are those of one thread.
pub fn compile_on(
    raw: &RawSite,
    profiles: &dyn ProfileSource,
    sink: &mut Sink,
    threads: usize,
) -> Policy {
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
    let mut resolved: BTreeMap<&str, Result<Profile, ProfileError>> = BTreeMap::new();
    for d in &raw.devices.value {
        resolved
            .entry(d.profile.value.as_str())
            .or_insert_with(|| profiles.profile(&d.profile.value));
    }
    let mut ids = BTreeSet::new();
    let mut jobs = Vec::new();
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
        let profile = match &resolved[d.profile.value.as_str()] {
            Ok(p) => p,
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
        if !policy.profiles.contains_key(&profile.id) {
            policy.profiles.insert(profile.id.clone(), profile.clone());
        }
        // Without a valid mode the flows are unknown: the mode error says it all, rather than
        // one error per flow of every mode.
        if mode.is_some() || profile.modes.is_empty() {
            jobs.push(Job {
                device: d,
                bindings,
                profile,
                mode,
                diags_before: sink.diagnostics.len(),
            });
        }
    }
    let runs: Vec<Done> = if threads <= 1 || jobs.len() < 2 {
        // Counted on this thread already.
        let mut run = run_jobs(&jobs, &ctx, sink);
        run.visits = 0;
        vec![run]
    } else {
        let per = jobs.len().div_ceil(threads);
        let (ctx, site) = (&ctx, &*sink);
        std::thread::scope(|s| {
            // Each worker gets the stack a main thread has (conditions are checked by
            // recursion); a run whose thread cannot be made runs here instead.
            let handles: Vec<_> = jobs
                .chunks(per)
                .map(|run| {
                    std::thread::Builder::new()
                        .stack_size(WORKER_STACK)
                        .spawn_scoped(s, move || run_jobs(run, ctx, site))
                        .map_err(|_| run)
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                    Err(run) => run_jobs(run, ctx, site),
                })
                .collect()
        })
    };
    // The rules in the devices' order, and each device's diagnostics right after those made
    // while placing it, as one thread would have made them.
    let placed = std::mem::take(&mut sink.diagnostics);
    let mut placed = placed.into_iter();
    let mut taken = 0;
    let mut job = jobs.iter();
    // Sized once: grown by doubling, the rules would be copied again at each step while the
    // runs still hold theirs.
    policy
        .rules
        .reserve_exact(runs.iter().map(|r| r.rules.len()).sum());
    for run in runs {
        crate::work::visit(usize::try_from(run.visits).unwrap_or(usize::MAX));
        policy.rules.extend(run.rules);
        policy.documented.extend(run.documented);
        policy.discovered.extend(run.discovered);
        let mut own = run.diagnostics.into_iter();
        let mut own_taken = 0;
        for end in run.ends {
            let before = job.next().map_or(taken, |j| j.diags_before);
            sink.diagnostics
                .extend(placed.by_ref().take(before - taken));
            taken = before;
            sink.diagnostics.extend(own.by_ref().take(end - own_taken));
            own_taken = end;
        }
    }
    sink.diagnostics.extend(placed);
    site::zones_without_interface(sink, raw);
    site_check::accepts(sink, raw, &policy);
    policy
}

/// A port number from an i64, for callers outside this module.
pub fn port(n: i64) -> Option<u16> {
    port_number(n).ok()
}
