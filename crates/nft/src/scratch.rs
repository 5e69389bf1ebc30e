//! Scratch network namespaces: somewhere to load a ruleset that must not go where it is
//! meant to go (to list it as the kernel keeps it, or to prove it loads), removed after.
//!
//! Each [`Scratch`] is registered process-wide while it exists and removed when dropped — on
//! success, error or panic. [`install_signal_cleanup`] starts, once per process, the one
//! thread that removes everything still registered on SIGINT, SIGTERM or SIGHUP and exits with
//! 128 + the signal number; crates with resources of their own (the lab's namespaces and
//! processes) add what they must release with [`add_signal_hook`], so one thread does it all.
//! Names are `pl<pid><4 hex>-<role>` ([`unique_prefix`]) so that a person can see whose they
//! are.

use std::collections::BTreeSet;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::exec::{self, valid_netns_name, Where};

static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
/// Releases resources of another crate; returns what it could not release.
pub type Hook = fn() -> Vec<String>;

static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    // A panic while holding the lock leaves the set usable: take it anyway.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A prefix no other run shares: `pl<pid><4 hex>`.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = (u64::from(nanos) ^ (n.wrapping_mul(0x9e37_79b9_7f4a_7c15))) & 0xffff;
    format!("pl{}{mixed:04x}", std::process::id())
}

fn ip(args: &[&str]) -> Result<String> {
    let mut c = Command::new("ip");
    c.args(args);
    exec::run(c)
}

fn remove_netns(name: &str) -> Option<String> {
    match ip(&["netns", "del", name]) {
        Ok(_) => None,
        Err(e) => Some(format!("cannot remove network namespace {name}: {e}")),
    }
}

/// Removes every scratch namespace still registered (the signal path); returns what could
/// not be removed.
pub fn release_all() -> Vec<String> {
    let all = std::mem::take(&mut *live());
    all.iter().filter_map(|n| remove_netns(n)).collect()
}

/// Adds a function the signal thread calls after removing the scratch namespaces (each
/// returns what it could not release).
pub fn add_signal_hook(f: Hook) {
    HOOKS.lock().unwrap_or_else(|e| e.into_inner()).push(f);
}

/// Installs, once per process, the thread that cleans up on SIGINT, SIGTERM and SIGHUP and
/// then exits with 128 + the signal number.
pub fn install_signal_cleanup() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let r = INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("portolan-cleanup".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    eprintln!(
                        "portolan: signal {sig}: removing the namespaces and processes of this run"
                    );
                    let hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let problems = hooks.iter().flat_map(|h| h()).chain(release_all());
                    for problem in problems.collect::<Vec<_>>() {
                        eprintln!("portolan: {problem}");
                    }
                    std::process::exit(128 + sig);
                }
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    r.clone()
        .map_err(|e| Error::Unsupported(format!("cannot install signal handlers: {e}")))
}

/// A network namespace made for one purpose, with a private folder for files; both go when
/// it is dropped (or [`Scratch::remove`]d, which reports what could not be removed).
pub struct Scratch {
    name: String,
    dir: PathBuf,
    removed: bool,
}

impl Scratch {
    /// Creates `pl<pid><hex>-<role>` with its loopback up, and its folder.
    pub fn new(role: &str) -> Result<Scratch> {
        install_signal_cleanup()?;
        let name = format!("{}-{role}", unique_prefix());
        if !valid_netns_name(&name) {
            return Err(Error::Apply(format!("bad namespace name {name}")));
        }
        match ip(&["netns", "add", &name]) {
            Ok(_) => {}
            Err(Error::Command { detail, .. }) => {
                return Err(Error::Unsupported(format!(
                    "cannot create a network namespace (`ip netns add` needs root or \
                     CAP_SYS_ADMIN and a kernel with network namespaces): {detail}"
                )))
            }
            Err(e) => return Err(e),
        }
        live().insert(name.clone());
        let mut s = Scratch {
            dir: std::env::temp_dir().join(&name),
            name,
            removed: false,
        };
        ip(&["-n", &s.name, "link", "set", "lo", "up"])?;
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&s.dir) {
            let what = format!("cannot create {}", s.dir.display());
            s.cleanup();
            return Err(Error::io(what, e));
        }
        Ok(s)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where commands for this namespace run.
    pub fn at(&self) -> Where {
        Where::Netns(self.name.clone())
    }

    /// Writes `text` to `FILE` in the private folder and returns its path.
    pub fn write(&self, file: &str, text: &str) -> Result<PathBuf> {
        let path = self.dir.join(file);
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        Ok(path)
    }

    fn cleanup(&mut self) -> Option<String> {
        if self.removed {
            return None;
        }
        self.removed = true;
        let _ = std::fs::remove_dir_all(&self.dir);
        let registered = live().remove(&self.name);
        if registered {
            remove_netns(&self.name)
        } else {
            None
        }
    }

    /// Removes the namespace and the folder now.
    pub fn remove(mut self) -> Result<()> {
        match self.cleanup() {
            None => Ok(()),
            Some(problem) => Err(Error::Apply(format!(
                "could not remove the scratch namespace: {problem}"
            ))),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(problem) = self.cleanup() {
            eprintln!("portolan: {problem}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_distinct_and_valid() {
        let a = unique_prefix();
        let b = unique_prefix();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("pl{}", std::process::id())));
        assert!(valid_netns_name(&format!("{a}-fw")));
    }
}
