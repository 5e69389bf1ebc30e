//! Network namespaces the lab and the tests create, and the guarantee that they go away.
//!
//! Every namespace and every child process (dnsmasq) is registered in a process-wide
//! registry as soon as it exists. A [`Resources`] guard removes what it registered when it is
//! dropped — on success, on error, on panic — and a signal thread (SIGINT, SIGTERM, SIGHUP)
//! removes everything still registered before the process exits. Namespaces are named
//! `pl<pid><random>-<role>` ([`unique_prefix`]) so that a person can see whose they are.
//!
//! Threads enter a namespace with [`enter`] (`setns(2)` through rustix, safe code) and check
//! afterwards that they really are in it, so a socket is never opened in the host's namespace
//! by mistake.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::command;
use crate::error::{Error, Result};

/// What a run created and must remove.
enum Resource {
    Netns(String),
    Child(Child),
    Dir(PathBuf),
}

static REGISTRY: Mutex<BTreeMap<u64, Resource>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<u64, Resource>> {
    // A panic while holding the lock leaves the map usable: take it anyway.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn release(r: Resource) -> Option<String> {
    match r {
        Resource::Child(mut c) => {
            let _ = c.kill();
            let _ = c.wait();
            None
        }
        Resource::Netns(name) => match command::ip(&["netns", "del", &name]) {
            Ok(_) => None,
            Err(e) => Some(format!("cannot remove network namespace {name}: {e}")),
        },
        Resource::Dir(d) => {
            let _ = std::fs::remove_dir_all(&d);
            None
        }
    }
}

/// Releases resources in a safe order: processes first (they may live in a namespace), then
/// namespaces, then folders.
fn release_all(mut rs: Vec<Resource>) -> Vec<String> {
    rs.sort_by_key(|r| match r {
        Resource::Child(_) => 0,
        Resource::Netns(_) => 1,
        Resource::Dir(_) => 2,
    });
    rs.into_iter().filter_map(release).collect()
}

/// Removes everything still registered (the signal path).
pub fn release_everything() -> Vec<String> {
    let all: Vec<Resource> = std::mem::take(&mut *registry()).into_values().collect();
    release_all(all)
}

/// Installs, once per process, the thread that cleans up on SIGINT, SIGTERM and SIGHUP (the
/// lab's resources, and `portolan-nft`'s scratch namespaces) and then exits with 128 + the
/// signal number. One thread for the whole process: `portolan-nft` owns it, this crate adds
/// its own release to it.
pub fn install_signal_cleanup() -> Result<()> {
    static HOOKED: std::sync::Once = std::sync::Once::new();
    HOOKED.call_once(|| portolan_nft::scratch::add_signal_hook(release_everything));
    Ok(portolan_nft::scratch::install_signal_cleanup()?)
}

/// The resources one run created. Dropping it removes them.
#[derive(Default)]
pub struct Resources {
    ids: Vec<u64>,
    namespaces: Vec<String>,
}

impl Resources {
    pub fn new() -> Self {
        Self::default()
    }

    fn register(&mut self, r: Resource) {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        registry().insert(id, r);
        self.ids.push(id);
    }

    /// Creates a network namespace (with its loopback up) and registers it.
    pub fn add_netns(&mut self, name: &str) -> Result<()> {
        if !command::valid_netns_name(name) {
            return Err(Error::Plan(format!("bad namespace name {name}")));
        }
        match command::ip(&["netns", "add", name]) {
            Ok(_) => {}
            Err(Error::Command { detail, .. }) => {
                return Err(Error::Unsupported(format!(
                    "cannot create a network namespace (`ip netns add` needs root or \
                     CAP_SYS_ADMIN and a kernel with network namespaces): {detail}"
                )))
            }
            Err(e) => return Err(e),
        }
        self.register(Resource::Netns(name.to_string()));
        self.namespaces.push(name.to_string());
        command::ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Registers a child process, killed before the namespaces go.
    pub fn add_child(&mut self, c: Child) {
        self.register(Resource::Child(c));
    }

    /// Registers a folder, removed last.
    pub fn add_dir(&mut self, d: PathBuf) {
        self.register(Resource::Dir(d));
    }

    /// The namespaces created so far, in order.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Removes everything now; returns what could not be removed.
    pub fn release(&mut self) -> Vec<String> {
        let mut reg = registry();
        let rs: Vec<Resource> = self
            .ids
            .drain(..)
            .filter_map(|id| reg.remove(&id))
            .collect();
        drop(reg);
        release_all(rs)
    }

    /// Removes the processes and folders but leaves the namespaces (`lab --keep`); returns the
    /// namespaces left behind.
    pub fn keep_namespaces(&mut self) -> Vec<String> {
        let mut reg = registry();
        let mut rs = Vec::new();
        for id in self.ids.drain(..) {
            match reg.remove(&id) {
                Some(Resource::Netns(_)) | None => {}
                Some(r) => rs.push(r),
            }
        }
        drop(reg);
        release_all(rs);
        std::mem::take(&mut self.namespaces)
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        for problem in self.release() {
            eprintln!("portolan: {problem}");
        }
    }
}

pub use portolan_nft::scratch::unique_prefix;

/// The namespaces that exist now (`ip netns list`), by name.
pub fn list() -> Result<Vec<String>> {
    let out = command::ip(&["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// An open handle on a named namespace, to enter it from a thread.
pub struct Handle {
    name: String,
    file: File,
    inode: u64,
}

impl Handle {
    pub fn open(name: &str) -> Result<Self> {
        let path = PathBuf::from("/run/netns").join(name);
        let file = File::open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        let inode = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .ino();
        Ok(Handle {
            name: name.to_string(),
            file,
            inode,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the calling thread into this namespace and checks that it is there. Sockets the
    /// thread opens afterwards belong to the namespace for their whole life.
    pub fn enter(&self) -> Result<()> {
        rustix::thread::move_into_link_name_space(
            self.file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| {
            Error::Unsupported(format!(
                "cannot enter network namespace {} (setns): {e}",
                self.name
            ))
        })?;
        let now = std::fs::metadata("/proc/thread-self/ns/net")
            .map_err(|e| Error::io("cannot read /proc/thread-self/ns/net", e))?
            .ino();
        if now != self.inode {
            return Err(Error::Unsupported(format!(
                "entered namespace {} but the thread is elsewhere",
                self.name
            )));
        }
        Ok(())
    }
}

/// Holds the machine-wide lab lock while alive: one lab (or kernel test) at a time, so two
/// runs never compete for the two cores or see each other's namespaces.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Waits for the lock, calling `waiting` once if another run holds it.
    pub fn acquire(waiting: &dyn Fn()) -> Result<Lock> {
        let dir = if std::path::Path::new("/run/lock").is_dir() {
            PathBuf::from("/run/lock")
        } else {
            std::env::temp_dir()
        };
        let path = dir.join("portolan-lab.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        use rustix::fs::{flock, FlockOperation};
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            waiting();
            flock(&file, FlockOperation::LockExclusive)
                .map_err(|e| Error::io(format!("cannot lock {}", path.display()), e.into()))?;
        }
        Ok(Lock { _file: file })
    }
}
