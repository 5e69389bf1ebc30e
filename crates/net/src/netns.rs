//! Running code inside a named network namespace (`ip netns add NAME`) without `unsafe` and
//! without re-executing: a fresh thread moves itself into the namespace (setns through
//! rustix) and runs the closure there. Sockets belong to the namespace they were created in,
//! so everything the closure opens — a current-thread tokio runtime's sockets included —
//! lives in that namespace. `/proc/thread-self/net` shows that namespace's routes.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::NetError;

/// The file `ip netns` keeps for `name`, after checking the name.
pub fn path(name: &str) -> Result<PathBuf, NetError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    if !ok {
        return Err(NetError::Netns {
            name: name.to_string(),
            detail: "not a namespace name".into(),
        });
    }
    Ok(Path::new("/run/netns").join(name))
}

/// The resolv.conf `ip netns exec NAME` would show: `/etc/netns/NAME/resolv.conf` when it
/// exists.
pub fn resolv_conf(name: &str) -> Option<PathBuf> {
    let p = Path::new("/etc/netns").join(name).join("resolv.conf");
    p.is_file().then_some(p)
}

/// Runs `f` on a new thread inside namespace `name` and returns its result.
pub fn run_in<T, F>(name: &str, f: F) -> Result<T, NetError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let p = path(name)?;
    let file = std::fs::File::open(&p).map_err(|e| NetError::Netns {
        name: name.to_string(),
        detail: format!("{}: {e}", p.display()),
    })?;
    let n = name.to_string();
    let handle = std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || -> Result<T, NetError> {
            move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
                |e| NetError::Netns {
                    name: n,
                    detail: format!("setns: {e} (needs CAP_SYS_ADMIN)"),
                },
            )?;
            Ok(f())
        })
        .map_err(NetError::Io)?;
    handle.join().map_err(|_| NetError::Netns {
        name: name.to_string(),
        detail: "the thread running in the namespace panicked".into(),
    })?
}

/// Spawns `f` on a thread inside namespace `name` and returns at once (for servers).
pub fn spawn_in<F>(name: &str, f: F) -> Result<std::thread::JoinHandle<()>, NetError>
where
    F: FnOnce() + Send + 'static,
{
    let p = path(name)?;
    let file = std::fs::File::open(&p).map_err(|e| NetError::Netns {
        name: name.to_string(),
        detail: format!("{}: {e}", p.display()),
    })?;
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            let r = move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network));
            let ok = r.is_ok();
            let _ = tx.send(r.map_err(|e| e.to_string()));
            if ok {
                f();
            }
        })
        .map_err(NetError::Io)?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(NetError::Netns {
            name: name.to_string(),
            detail: format!("setns: {e}"),
        }),
        Err(_) => Err(NetError::Netns {
            name: name.to_string(),
            detail: "the namespace thread ended early".into(),
        }),
    }
}
