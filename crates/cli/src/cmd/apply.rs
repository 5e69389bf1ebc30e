//! `portolan apply SITE [--confirm SECONDS]` and `portolan apply --confirmed`: the site's
//! nftables policy loaded in one transaction, the previous table saved, and an automatic
//! rollback unless confirmed in time (see `portolan_lab::apply`). The hidden `apply-rollback`
//! subcommand is the detached timer that `--confirm` starts by re-executing this binary.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use portolan_lab::apply::{self, Applied, Confirmation, Launcher, Options, Rollback};
use portolan_lab::command::Where;

use crate::cli::{Format, Global};
use crate::output::Outcome;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The site file (not with --confirmed).
    #[arg(required_unless_present = "confirmed", conflicts_with = "confirmed")]
    pub site: Option<PathBuf>,
    /// Roll back to the previous ruleset after this long (`90`, `90s`, `2m`) unless
    /// `portolan apply --confirmed` comes first.
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration)]
    pub confirm: Option<Duration>,
    /// Make the pending apply permanent and stop its rollback timer.
    #[arg(long, conflicts_with = "confirm")]
    pub confirmed: bool,
    /// Act inside this network namespace (`ip netns exec NAME`) instead of the host.
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Where the previous ruleset and the rollback state are kept (a folder per namespace).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/portolan")]
    pub state_dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of the hidden rollback timer (see `portolan_lab::apply::rollback_args`).
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(long)]
    pub state_dir: PathBuf,
    #[arg(long)]
    pub token: String,
    /// Seconds to wait.
    #[arg(long)]
    pub after: u64,
    #[arg(long)]
    pub netns: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix('s') {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60)
    } else {
        (s, 1)
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: give seconds, e.g. 60, 60s or 2m"))?;
    if n == 0 || n * mult > 24 * 3600 {
        return Err(format!("`{s}`: between 1 second and 24 hours"));
    }
    Ok(Duration::from_secs(n * mult))
}

fn target(netns: Option<&str>) -> Where {
    match netns {
        Some(n) => Where::Netns(n.to_string()),
        None => Where::Host,
    }
}

pub fn run(g: &Global, a: &ApplyArgs) -> anyhow::Result<Outcome> {
    let json = a.format == Format::Json;
    let w = target(a.netns.as_deref());
    if a.confirmed {
        w.check()?;
        let c = apply::confirm(&w, &a.state_dir)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&c)?);
        }
        return Ok(match c {
            Confirmation::Confirmed { .. } => {
                if !json {
                    println!("apply: confirmed; the rollback timer is stopped");
                }
                Outcome::Ok
            }
            Confirmation::TooLate { detail } => {
                eprintln!("apply: too late to confirm: {detail}");
                Outcome::Findings
            }
            Confirmation::NothingPending => {
                eprintln!("apply: nothing awaits confirmation in {}", w.scope());
                Outcome::BadInput
            }
        });
    }
    let Some(site) = &a.site else {
        anyhow::bail!("give a site file, or --confirmed");
    };
    let Some(policy) = super::load_site(g, site, json)? else {
        return Ok(Outcome::BadInput);
    };
    let ruleset = portolan_emit::nftables::emit(&policy, &portolan_emit::Options::default())?;
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
        state_dir: a.state_dir.clone(),
        confirm: a.confirm,
        launcher,
    };
    let done = apply::apply(&ruleset, &opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        print!("{}", describe(&policy.site, &w, a.netns.as_deref(), &done));
    }
    Ok(Outcome::Ok)
}

fn describe(site: &str, w: &Where, netns: Option<&str>, d: &Applied) -> String {
    let place = match w {
        Where::Host => "this host".to_string(),
        Where::Netns(n) => format!("network namespace {n}"),
    };
    let mut s =
        format!("apply: loaded the policy of site {site} into {place} (one nft transaction)\n");
    if d.had_previous {
        s.push_str(&format!(
            "  previous table saved in {}\n",
            d.saved.display()
        ));
    } else {
        s.push_str("  there was no inet portolan table before; a rollback removes it\n");
    }
    if !d.stale_deleted.is_empty() {
        s.push_str(&format!(
            "  deleted stale objects: {}\n",
            d.stale_deleted.join(", ")
        ));
    }
    if !d.recreated.is_empty() {
        s.push_str(&format!(
            "  recreated (type changed): {}\n",
            d.recreated.join(", ")
        ));
    }
    if let Some(p) = &d.pending {
        let ns = netns.map(|n| format!(" --netns {n}")).unwrap_or_default();
        s.push_str(&format!(
            "  rolls back in {} s unless confirmed: portolan apply --confirmed{ns}\n",
            p.seconds
        ));
    }
    s
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
