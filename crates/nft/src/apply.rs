//! `portolan apply`: load a ruleset atomically, keep what was there, and roll back unless
//! confirmed (like Junos `commit confirmed`).
//!
//! State lives in `<state-dir>/<scope>/` (`scope` is `host` or `netns-NAME`):
//! - `previous.nft`: the `inet portolan` table before the last apply, as `nft list table`
//!   printed it (or a comment saying there was none);
//! - `rollback.nft`: one transaction that restores it (`delete table`, then the listing);
//! - `applied.nft`: the transaction that was loaded;
//! - `pending.json`: an unconfirmed apply (token, deadline, timer pid); `confirmed.json` and
//!   `last-rollback.json` record what became of it (each apply that loads removes the records
//!   of the one before, so `--confirmed` never reports an older apply's fate), and
//!   `rollback.log` keeps the timers' messages.
//!
//! The transaction is the emitted ruleset with two additions, all in one `nft -f`: sets and
//! maps whose type or flags changed are deleted first (after `flush table`, so no rule still
//! uses them; nft cannot redeclare a set with another type), and objects of the old table that
//! the new one no longer declares are deleted last (maps before chains, as map elements may
//! jump to chains), except the DNS-filled sets, which keep their elements. Both sides are
//! read typed (`nft -j`, [`crate::table::objects`]): the old table from the target, the new
//! ruleset as the kernel lists it once loaded alone into a scratch namespace (which also
//! refuses a ruleset that does not load before anything is written). The file is checked
//! with `nft -c` first; if loading still fails, nft's transaction leaves the old table as it
//! was, and that is verified by listing it again.
//!
//! The rollback timer is a detached process (its own process group, no standard streams,
//! SIGHUP ignored): the caller says which program to start ([`Launcher`]; the CLI re-executes
//! itself with the hidden `apply-rollback` subcommand). After the delay it claims
//! `pending.json` by renaming it; `apply --confirmed` claims it the same way first, so exactly
//! one of them wins.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exec::{self, Where};
use crate::ruleset::read_text;
use crate::table::{self, Kind, Object, Objects};
use crate::TABLE;

/// The program (and leading arguments) that runs [`rollback_after`] when started with
/// [`rollback_args`] appended.
#[derive(Clone, Debug)]
pub struct Launcher {
    pub program: PathBuf,
    pub args: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub target: Where,
    /// The state folder (default `/var/lib/portolan`); a sub-folder per scope is used.
    pub state_dir: PathBuf,
    /// Roll back after this long unless confirmed.
    pub confirm: Option<Duration>,
    /// Required with `confirm`.
    pub launcher: Option<Launcher>,
}

/// An apply awaiting confirmation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    pub token: String,
    /// Seconds since the Unix epoch when the rollback happens.
    pub deadline: u64,
    pub seconds: u64,
    /// The rollback timer's process id.
    pub pid: Option<u32>,
}

/// What an apply did.
#[derive(Clone, Debug, Serialize)]
pub struct Applied {
    pub scope: String,
    pub state_dir: PathBuf,
    /// Whether a previous `inet portolan` table existed (saved in `previous.nft`).
    pub had_previous: bool,
    pub saved: PathBuf,
    /// Objects of the old table that the new one does not declare, deleted.
    pub stale_deleted: Vec<String>,
    /// Sets and maps recreated because their type or flags changed.
    pub recreated: Vec<String>,
    pub pending: Option<Pending>,
}

/// What `apply --confirmed` found.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Confirmation {
    /// The pending apply is now permanent; its timer was stopped.
    Confirmed { token: String },
    /// The last apply was confirmed before (this many seconds ago); nothing is pending.
    AlreadyConfirmed { token: String, seconds_ago: u64 },
    /// Too late: the rollback already ran (or is running). `detail` is a sentence.
    TooLate { detail: String },
    /// Nothing was pending.
    NothingPending,
}

/// What became of an apply awaiting confirmation: `confirmed.json`, `last-rollback.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Record {
    token: String,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    at: u64,
    /// For a rollback: whether it restored the saved table, and what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

fn read_record(path: &Path) -> Option<Record> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// `N s ago`, `N min ago`, `N h ago` for a time in seconds since the epoch.
fn ago(at: u64) -> String {
    let s = now().saturating_sub(at);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// A word as a POSIX shell reads it back unchanged.
fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | ':' | '+' | '=' | ',')
        });
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The command that confirms an apply of `target` with state in `state_dir`, with every
/// option it needs to find the same state: `portolan apply --confirmed --state-dir DIR
/// [--netns NAME]`.
pub fn confirm_command(target: &Where, state_dir: &Path) -> String {
    let dir = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let mut s = format!(
        "portolan apply --confirmed --state-dir {}",
        shell_word(&dir.display().to_string())
    );
    if let Where::Netns(n) = target {
        s.push_str(&format!(" --netns {}", shell_word(n)));
    }
    s
}

/// What the rollback timer did.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Rollback {
    RolledBack,
    /// Confirmed in time (or superseded): nothing to do.
    NotNeeded,
}

pub(crate) fn scope_dir(target: &Where, state_dir: &Path) -> PathBuf {
    state_dir.join(target.scope())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

pub(crate) fn read_pending(path: &Path) -> Option<Pending> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The transaction restoring `previous` (or removing the table when there was none).
pub fn rollback_text(previous: Option<&str>) -> String {
    let mut s = String::from(
        "# Portolan rollback: restores the inet portolan table saved before the last apply.\n\
         table inet portolan\ndelete table inet portolan\n",
    );
    if let Some(p) = previous {
        s.push_str(p);
    }
    s
}

/// The transaction loading `ruleset` (declaring the objects `new`) over a table declaring
/// `old`: recreated and stale objects handled. Returns the text, the stale objects deleted
/// and the objects recreated, as labels.
pub fn transaction(
    ruleset: &str,
    new: &Objects,
    old: &Objects,
) -> (String, Vec<String>, Vec<String>) {
    let mut recreated: Vec<&Object> = Vec::new();
    let mut stale: Vec<&Object> = Vec::new();
    for (k, o) in old {
        match new.get(k) {
            Some(n) => {
                if matches!(o.kind, Kind::Set | Kind::Map) && n.decl != o.decl {
                    recreated.push(o);
                }
            }
            None if o.dns_filled() => {}
            None => stale.push(o),
        }
    }
    let mut s = String::from("# Portolan apply: one transaction.\n");
    if !recreated.is_empty() {
        s.push_str(&format!("table {TABLE}\nflush table {TABLE}\n"));
        for o in &recreated {
            s.push_str(&format!("delete {} {TABLE} {}\n", o.kind, o.name));
        }
    }
    s.push_str(ruleset);
    if !ruleset.ends_with('\n') {
        s.push('\n');
    }
    if !stale.is_empty() {
        s.push_str("# objects of the previous table that this ruleset no longer declares\n");
        // Maps before chains, as map elements may jump to chains.
        let order = |o: &&Object| match o.kind {
            Kind::Map => 0,
            Kind::Chain => 1,
            Kind::Set => 2,
        };
        stale.sort_by_key(order);
        for o in &stale {
            s.push_str(&format!("delete {} {TABLE} {}\n", o.kind, o.name));
        }
    }
    (
        s,
        stale.iter().map(|o| o.label()).collect(),
        recreated.iter().map(|o| o.label()).collect(),
    )
}

/// The objects `ruleset` declares, as the kernel lists them once it is loaded alone into a
/// scratch namespace. A ruleset that does not load there is refused: nothing was changed.
pub(crate) fn declared(ruleset: &str) -> Result<Objects> {
    match read_text(ruleset) {
        Ok(r) => Ok(table::objects(&r)),
        Err(Error::Rejected { detail }) => Err(Error::Apply(format!(
            "the ruleset does not load (tried in a scratch network namespace; nothing was changed):\n{detail}"
        ))),
        Err(e) => Err(e),
    }
}

/// Loads `ruleset` (an `nft -f` text for table `inet portolan`) as described in the module
/// documentation.
pub fn apply(ruleset: &str, opts: &Options) -> Result<Applied> {
    opts.target.check()?;
    if opts.confirm.is_some() && opts.launcher.is_none() {
        return Err(Error::Apply("--confirm needs a rollback launcher".into()));
    }
    let dir = scope_dir(&opts.target, &opts.state_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let pending_path = dir.join("pending.json");
    if let Some(p) = read_pending(&pending_path) {
        return Err(Error::Apply(format!(
            "An apply is awaiting confirmation (rollback in {} s). Confirm it with `{}`, or let \
             it roll back, before applying again.",
            p.deadline.saturating_sub(now()),
            confirm_command(&opts.target, &opts.state_dir)
        )));
    }

    let previous = table::list_table(&opts.target)?;
    let old = table::read(&opts.target)?
        .map(|r| table::objects(&r))
        .unwrap_or_default();
    let new = declared(ruleset)?;
    let saved = dir.join("previous.nft");
    write_atomic(
        &saved,
        previous
            .as_deref()
            .unwrap_or("# there was no table inet portolan before this apply\n"),
    )?;
    write_atomic(
        &dir.join("rollback.nft"),
        &rollback_text(previous.as_deref()),
    )?;

    let (text, stale, recreated) = transaction(ruleset, &new, &old);
    let applied = dir.join("applied.nft");
    write_atomic(&applied, &text)?;
    match exec::run_file(&opts.target, &applied, true) {
        Ok(()) => {}
        Err(Error::Rejected { detail }) => {
            return Err(Error::Apply(format!(
                "the ruleset does not load; nothing was changed:\n{detail}"
            )))
        }
        Err(e) => return Err(e),
    }
    if let Err(e) = exec::run_file(&opts.target, &applied, false) {
        let Error::Rejected { detail: msg } = e else {
            return Err(e);
        };
        let after = table::list_table(&opts.target)?;
        let intact =
            after.as_deref().map(table::normalize) == previous.as_deref().map(table::normalize);
        return Err(Error::Apply(format!(
            "loading failed:\n{msg}\n{}",
            if intact {
                "the previous ruleset is intact (verified: the table lists as before)"
            } else {
                "WARNING: the table no longer lists as before; restore it with `nft -f` of rollback.nft in the state folder"
            }
        )));
    }

    // The records of the previous apply's fate no longer describe the table.
    for old in ["confirmed.json", "last-rollback.json"] {
        let _ = std::fs::remove_file(dir.join(old));
    }
    let mut pending = None;
    if let (Some(delay), Some(launcher)) = (opts.confirm, &opts.launcher) {
        let token = format!("{}-{}", now(), std::process::id());
        let mut p = Pending {
            token: token.clone(),
            deadline: now() + delay.as_secs(),
            seconds: delay.as_secs(),
            pid: None,
        };
        write_atomic(
            &pending_path,
            &serde_json::to_string_pretty(&p).unwrap_or_default(),
        )?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("rollback.log"))
            .map_err(|e| Error::io("cannot open rollback.log", e))?;
        let netns = match &opts.target {
            Where::Host => None,
            Where::Netns(n) => Some(n.as_str()),
        };
        let child = Command::new(&launcher.program)
            .args(&launcher.args)
            .args(rollback_args(
                &opts.state_dir,
                &token,
                delay.as_secs(),
                netns,
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn();
        match child {
            Ok(c) => {
                p.pid = Some(c.id());
                write_atomic(
                    &pending_path,
                    &serde_json::to_string_pretty(&p).unwrap_or_default(),
                )?;
            }
            Err(e) => {
                // No timer: undo now rather than leave an unconfirmable change.
                let _ = std::fs::remove_file(&pending_path);
                let undo = exec::run_file(&opts.target, &dir.join("rollback.nft"), false);
                return Err(Error::Apply(format!(
                    "cannot start the rollback timer ({e}); the previous ruleset was {}",
                    if undo.is_ok() {
                        "restored"
                    } else {
                        "NOT restored: load rollback.nft by hand"
                    }
                )));
            }
        }
        pending = Some(p);
    }
    Ok(Applied {
        scope: opts.target.scope(),
        state_dir: dir,
        had_previous: previous.is_some(),
        saved,
        stale_deleted: stale,
        recreated,
        pending,
    })
}

/// The arguments the rollback timer is started with (after the launcher's own).
pub fn rollback_args(
    state_dir: &Path,
    token: &str,
    seconds: u64,
    netns: Option<&str>,
) -> Vec<String> {
    let mut v = vec![
        "--state-dir".to_string(),
        state_dir.display().to_string(),
        "--token".into(),
        token.into(),
        "--after".into(),
        seconds.to_string(),
    ];
    if let Some(n) = netns {
        v.push("--netns".into());
        v.push(n.into());
    }
    v
}

/// Parsed [`rollback_args`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackArgs {
    pub state_dir: PathBuf,
    pub token: String,
    pub after: Duration,
    pub netns: Option<String>,
}

/// Parses [`rollback_args`] (for programs without clap).
pub fn parse_rollback_args(args: &[String]) -> Result<RollbackArgs> {
    let mut state_dir = None;
    let mut token = None;
    let mut after = None;
    let mut netns = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().cloned();
        match (a.as_str(), v) {
            ("--state-dir", Some(v)) => state_dir = Some(PathBuf::from(v)),
            ("--token", Some(v)) => token = Some(v),
            ("--after", Some(v)) => after = v.parse::<u64>().ok().map(Duration::from_secs),
            ("--netns", Some(v)) => netns = Some(v),
            (other, _) => return Err(Error::Apply(format!("unknown rollback argument {other}"))),
        }
    }
    match (state_dir, token, after) {
        (Some(state_dir), Some(token), Some(after)) => Ok(RollbackArgs {
            state_dir,
            token,
            after,
            netns,
        }),
        _ => Err(Error::Apply(
            "rollback needs --state-dir, --token and --after".into(),
        )),
    }
}

/// The rollback timer: waits, then restores the saved table unless the apply with `token`
/// was confirmed meanwhile.
pub fn rollback_after(
    target: &Where,
    state_dir: &Path,
    token: &str,
    delay: Duration,
) -> Result<Rollback> {
    // nohup: a closing terminal must not cancel the rollback.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGHUP,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    std::thread::sleep(delay);
    let dir = scope_dir(target, state_dir);
    let pending_path = dir.join("pending.json");
    match read_pending(&pending_path) {
        Some(p) if p.token == token => {}
        _ => return Ok(Rollback::NotNeeded),
    }
    let claimed = dir.join("rolling-back.json");
    if std::fs::rename(&pending_path, &claimed).is_err() {
        return Ok(Rollback::NotNeeded); // `--confirmed` claimed it first
    }
    let result = exec::run_file(target, &dir.join("rollback.nft"), false);
    let (ok, detail) = match &result {
        Ok(()) => (
            true,
            "restored the table saved before the apply".to_string(),
        ),
        Err(e) => (false, e.to_string()),
    };
    let record = Record {
        token: token.to_string(),
        at: now(),
        ok: Some(ok),
        detail: Some(detail.clone()),
    };
    write_atomic(
        &dir.join("last-rollback.json"),
        &serde_json::to_string(&record).unwrap_or_default(),
    )?;
    let _ = std::fs::remove_file(&claimed);
    if ok {
        Ok(Rollback::RolledBack)
    } else {
        Err(Error::Apply(format!("rollback failed: {detail}")))
    }
}

/// `apply --confirmed`: makes the pending apply permanent and stops its timer.
pub fn confirm(target: &Where, state_dir: &Path) -> Result<Confirmation> {
    let dir = scope_dir(target, state_dir);
    let pending_path = dir.join("pending.json");
    let Some(p) = read_pending(&pending_path) else {
        return Ok(settled(&dir));
    };
    let done = dir.join("confirmed.json");
    if std::fs::rename(&pending_path, &done).is_err() {
        return Ok(Confirmation::TooLate {
            detail: "the rollback started just now.".into(),
        });
    }
    let record = Record {
        token: p.token.clone(),
        at: now(),
        ..Record::default()
    };
    write_atomic(&done, &serde_json::to_string(&record).unwrap_or_default())?;
    // The timer has nothing left to do; stop it if it is still the process we started.
    if let Some(pid) = p.pid {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&cmdline).contains(&p.token);
        if ours {
            let _ = Command::new("kill")
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    Ok(Confirmation::Confirmed { token: p.token })
}

/// What `--confirmed` finds when nothing is pending: a rollback running or done, a confirm
/// done before, or nothing at all, each told as a sentence.
fn settled(dir: &Path) -> Confirmation {
    if dir.join("rolling-back.json").exists() {
        return Confirmation::TooLate {
            detail: "the rollback is running now.".into(),
        };
    }
    let confirmed = read_record(&dir.join("confirmed.json"));
    let rolled = read_record(&dir.join("last-rollback.json"));
    match (confirmed, rolled) {
        (Some(c), r) if r.as_ref().is_none_or(|r| r.at <= c.at) => Confirmation::AlreadyConfirmed {
            seconds_ago: now().saturating_sub(c.at),
            token: c.token,
        },
        (_, Some(r)) => Confirmation::TooLate {
            detail: if r.ok == Some(false) {
                format!(
                    "the rollback ran {} and failed ({}); load rollback.nft in {} by hand.",
                    ago(r.at),
                    r.detail.unwrap_or_default(),
                    dir.display()
                )
            } else {
                format!(
                    "the apply was rolled back {}; the table saved before it is loaded again.",
                    ago(r.at)
                )
            },
        },
        _ => Confirmation::NothingPending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_arguments_round_trip() {
        let a = rollback_args(Path::new("/tmp/s"), "t1", 5, Some("ns1"));
        let p = parse_rollback_args(&a).expect("parse");
        assert_eq!(p.state_dir, PathBuf::from("/tmp/s"));
        assert_eq!(p.token, "t1");
        assert_eq!(p.after, Duration::from_secs(5));
        assert_eq!(p.netns.as_deref(), Some("ns1"));
    }

    #[test]
    fn transaction_deletes_stale_and_recreates_changed() {
        // The old table as `nft -j list table` prints it: a DNS-filled set, an interval set, a
        // verdict map and a chain.
        let old = r#"{"nftables": [{"table": {"family": "inet", "name": "portolan"}}, {"set": {"family": "inet", "name": "old_example_com_v4", "table": "portolan", "type": "ipv4_addr", "flags": ["timeout"]}}, {"set": {"family": "inet", "name": "s4_a", "table": "portolan", "type": "ipv4_addr", "flags": ["interval"]}}, {"map": {"family": "inet", "name": "m_old", "table": "portolan", "type": "ipv4_addr", "map": "verdict"}}, {"chain": {"family": "inet", "table": "portolan", "name": "k_gone_out"}}]}"#;
        let new = "table inet portolan {\n\tset s4_a {\n\t\ttype ipv4_addr . inet_service\n\t\tflags interval\n\t}\n}\n";
        // What the kernel lists for `new`.
        let new_listed = r#"{"nftables": [{"table": {"family": "inet", "name": "portolan"}}, {"set": {"family": "inet", "name": "s4_a", "table": "portolan", "type": ["ipv4_addr", "inet_service"], "flags": ["interval"]}}]}"#;
        let objects =
            |json: &str| table::objects(&crate::Ruleset::parse(json, "test").expect("json"));
        let (text, stale, recreated) = transaction(new, &objects(new_listed), &objects(old));
        assert_eq!(stale, ["map m_old", "chain k_gone_out"]);
        assert_eq!(recreated, ["set s4_a"]);
        let del_set = text
            .find("delete set inet portolan s4_a")
            .expect("recreated first");
        assert!(del_set < text.find("type ipv4_addr . inet_service").expect("new"));
        assert!(
            text.find("delete map inet portolan m_old")
                < text.find("delete chain inet portolan k_gone_out")
        );
        assert!(
            !text.contains("old_example_com_v4"),
            "DNS-filled sets are kept"
        );
    }

    #[test]
    fn the_confirm_command_repeats_the_options_it_needs() {
        let ns = Where::Netns("fw1".into());
        assert_eq!(
            confirm_command(&ns, Path::new("/srv/portolan state")),
            "portolan apply --confirmed --state-dir '/srv/portolan state' --netns fw1"
        );
        assert_eq!(
            confirm_command(&Where::Host, Path::new("/var/lib/portolan")),
            "portolan apply --confirmed --state-dir /var/lib/portolan"
        );
        // A relative folder is made absolute: the command works from any directory.
        let rel = confirm_command(&Where::Host, Path::new("st"));
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            rel,
            format!(
                "portolan apply --confirmed --state-dir {}",
                shell_word(&cwd.join("st").display().to_string())
            )
        );
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn a_settled_apply_is_told_as_it_was() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        assert_eq!(settled(d), Confirmation::NothingPending);
        let write = |name: &str, r: &Record| {
            std::fs::write(d.join(name), serde_json::to_string(r).expect("json")).expect("write")
        };
        let rolled = Record {
            token: "t1".into(),
            at: now() - 30,
            ok: Some(true),
            detail: Some("restored".into()),
        };
        write("last-rollback.json", &rolled);
        let Confirmation::TooLate { detail } = settled(d) else {
            panic!("rolled back")
        };
        assert!(
            detail.starts_with("the apply was rolled back 30 s ago"),
            "{detail}"
        );
        assert!(!detail.contains('{'), "a sentence, not JSON: {detail}");
        // A later confirm (of a later apply) wins over an older rollback record.
        let confirmed = Record {
            token: "t2".into(),
            at: now() - 5,
            ..Record::default()
        };
        write("confirmed.json", &confirmed);
        assert!(matches!(
            settled(d),
            Confirmation::AlreadyConfirmed { token, seconds_ago } if token == "t2" && seconds_ago >= 5
        ));
        write(
            "last-rollback.json",
            &Record {
                at: now(),
                ok: Some(false),
                ..rolled
            },
        );
        let Confirmation::TooLate { detail } = settled(d) else {
            panic!("a failed rollback")
        };
        assert!(
            detail.contains("failed") && detail.contains("by hand"),
            "{detail}"
        );
    }

    #[test]
    fn rollback_without_previous_removes_the_table() {
        let t = rollback_text(None);
        assert!(t.contains("delete table inet portolan"));
    }
}
