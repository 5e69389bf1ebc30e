//! `portolan enforce SITE --upstream ADDR [--listen ADDR] [--netns NS]`: the DNS forwarder
//! of `portolan_enforce`, in the foreground, one log line per event on standard output
//! (`--log-format text|json`) until SIGINT or SIGTERM; `--metrics ADDR:PORT` serves its
//! counters to Prometheus; `--status` lists the live elements the kernel holds.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use portolan_enforce::{scopes, start_with, status, Config, Options, Timing, Unlisted};
use portolan_nft::Where;

use crate::cli::{CatalogArgs, EnforceArgs, LogFormat, UnlistedArg};
use crate::output::Outcome;
use crate::report;

pub fn run(g: &CatalogArgs, a: &EnforceArgs) -> anyhow::Result<Outcome> {
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
                    // An SRV-learnt peer's element holds its port: `192.0.2.7:8883`.
                    match (l.peer, l.port) {
                        (std::net::IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
                        (a, Some(p)) => format!("{a}:{p}"),
                        (a, None) => a.to_string(),
                    },
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
    let opts = Options {
        unlisted: match a.unlisted {
            UnlistedArg::Answer => Unlisted::Answer,
            UnlistedArg::Refuse => Unlisted::Refuse,
            UnlistedArg::Nxdomain => Unlisted::Nxdomain,
        },
        doh_names: a.doh_name.clone(),
        metrics: a.metrics,
        sweep: a.sweep_ms.map(Duration::from_millis),
    };
    let text = a.log_format == LogFormat::Text;
    let running = start_with(
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
        opts,
        Arc::new(move |mut v| {
            use std::io::Write as _;
            // Absent, never null (README, "JSON contract").
            crate::contract::drop_nulls(&mut v);
            let line = if text { text_line(&v) } else { v.to_string() };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }),
    )?;
    running.wait_for(&stop);
    // (`--format json`: the event lines follow a header line, printed before the forwarder
    // starts.)
    Ok(Outcome::Ok)
}

/// An event as one text line: `EVENT key=value ...` (strings bare unless they hold a space or
/// a quote, other values as JSON), without the timestamp (a journal adds its own).
fn text_line(v: &serde_json::Value) -> String {
    let Some(o) = v.as_object() else {
        return v.to_string();
    };
    let mut line = o
        .get("event")
        .and_then(|e| e.as_str())
        .unwrap_or("event")
        .to_string();
    for (k, val) in o {
        if k == "event" || k == "ts" || val.is_null() {
            continue;
        }
        let shown = match val {
            serde_json::Value::String(s) if !s.is_empty() && !s.contains([' ', '"', '=']) => {
                s.clone()
            }
            other => other.to_string(),
        };
        line.push_str(&format!(" {k}={shown}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_are_event_then_key_values() {
        let v = serde_json::json!({"ts": 1.5, "event": "answer", "device": "10.0.0.2",
            "name": "a b", "opened": [], "group": null, "written": 0});
        assert_eq!(
            text_line(&v),
            "answer device=10.0.0.2 name=\"a b\" opened=[] written=0"
        );
    }
}
