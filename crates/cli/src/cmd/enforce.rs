//! `portolan enforce SITE --upstream ADDR [--listen ADDR] [--netns NS]`: the DNS forwarder
//! of `portolan_enforce`, in the foreground, one JSON line per event on standard output until
//! SIGINT or SIGTERM; `--status` lists the live elements the kernel holds.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use portolan_enforce::{scopes, start, status, Config, Timing};
use portolan_nft::Where;

use crate::cli::{EnforceArgs, Global};
use crate::output::Outcome;
use crate::report;

pub fn run(g: &Global, a: &EnforceArgs) -> anyhow::Result<Outcome> {
    let json = a.out.json();
    let Some(policy) = super::load_site(g, &a.site, json)? else {
        return Ok(Outcome::BadInput);
    };
    let w = match &a.netns {
        Some(n) => Where::Netns(n.clone()),
        None => Where::Host,
    };
    w.check()?;
    let scopes = scopes(&policy)?;
    if a.status {
        let live = status(&scopes, &w)?;
        let doc = serde_json::json!({ "site": policy.site, "elements": live });
        report::print(&a.out, "enforce-status", &doc, || {
            if live.is_empty() {
                return "enforce: no live elements.\n".to_string();
            }
            let mut t =
                report::table(["group", "device", "peer", "flow", "left (s)", "timeout (s)"]);
            for l in &live {
                let n = |x: Option<u64>| x.map_or("-".to_string(), |v| v.to_string());
                t.add_row(vec![
                    l.group.clone().unwrap_or_else(|| "?".into()),
                    l.device.to_string(),
                    l.peer.to_string(),
                    l.flow.clone().unwrap_or_else(|| l.set.clone()),
                    n(l.expires),
                    n(l.timeout),
                ]);
            }
            format!("{t}\n")
        })?;
        return Ok(Outcome::Ok);
    }
    let Some(upstream) = a.upstream else {
        anyhow::bail!("give --upstream ADDR, the site's resolver");
    };
    if a.floor > a.cap {
        anyhow::bail!(
            "--floor {} is above --cap {}",
            crate::duration::show(a.floor),
            crate::duration::show(a.cap)
        );
    }
    // Every set the forwarder may write must be in the kernel: else each answer it opens
    // would fail its commit and be answered SERVFAIL.
    let wanted: BTreeSet<&str> = scopes
        .iter()
        .flat_map(|s| &s.rules)
        .flat_map(|r| r.sets.iter().map(|(_, n)| n.as_str()))
        .collect();
    let have: BTreeSet<String> =
        portolan_nft::read_table(&w, portolan_nft::TABLE_FAMILY, portolan_nft::table_name())?
            .map(|rs| rs.sets().map(|s| s.name.clone()).collect())
            .unwrap_or_default();
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|n| !have.contains(**n))
        .copied()
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the enforce policy of {} is not loaded (missing sets: {}); load it first: portolan apply {} --enforce{}",
            policy.site,
            missing.join(", "),
            a.site.display(),
            a.netns.as_ref().map(|n| format!(" --netns {n}")).unwrap_or_default()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    if json {
        println!("{}", crate::contract::header_line("enforce"));
    }
    let running = start(
        scopes,
        Config {
            listen: a.listen,
            upstream,
            netns: a.netns.clone(),
            timing: Timing {
                grace: a.grace,
                floor: a.floor,
                cap: a.cap,
            },
            upstream_timeout: Duration::from_secs(2),
        },
        Arc::new(|v| {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{v}");
            let _ = out.flush();
        }),
    )?;
    running.wait_for(&stop);
    // (`--format json`: the event lines follow a header line, printed before the forwarder
    // starts.)
    Ok(Outcome::Ok)
}
