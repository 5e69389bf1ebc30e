//! The committer `portolan enforce` writes its elements through: one thread per firewall
//! namespace that owns the connection to the kernel and turns every request waiting when it
//! is free into one nftables transaction (group commit), so concurrent answers share a
//! commit. Each caller of [`Committer::write`] returns only when the kernel has committed
//! (or refused) the transaction holding its elements.
//!
//! Three back ends write the same elements:
//! - [`Backend::Netlink`] (the default): the element messages straight to the kernel over
//!   nfnetlink ([`crate::netlink`]), one batch per transaction. No library and no cache:
//!   libnftables reads the table's sets before every command, which costs more the larger
//!   the policy is (about 150 µs a commit for a four-device site, 270–440 µs for the
//!   example plant's, against 50–75 µs for a table of one set, measured here).
//! - [`Backend::Library`]: libnftables (Debian `libnftables1`, the library `nft` itself and
//!   dnsmasq's `nftset=` use), loaded at run time and called in-process: one netlink batch
//!   per transaction, no process started. The context is created on the committer thread
//!   after it entered the namespace, so its netlink socket lives there.
//! - [`Backend::Process`]: one `nft -f -` per transaction, where the library cannot be loaded
//!   (or `PORTOLAN_NFT_BACKEND=process` asks for it, to compare; `=library` asks for the
//!   library). The last two say the script of [`crate::elements::pair_script`].
//!
//! A refused batch of several requests is retried request by request, so one bad request
//! fails alone and the others still commit.
//!
//! `unsafe` is allowed in this module only (the crate denies it; the workspace forbids it
//! elsewhere): the four libnftables calls below, on a context used by one thread.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write as _;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::elements::{fresh_pair_script, pair_script, Pair};
use crate::error::{Error, Result};
use crate::exec::{first_lines, show, Where};

/// The most requests one transaction takes; more wait for the next one.
pub const MAX_BATCH: usize = 256;

/// How a committer reaches the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// nfnetlink messages written by Portolan itself.
    Netlink,
    /// libnftables in-process (netlink).
    Library,
    /// One `nft -f -` process per transaction.
    Process,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Netlink => "netlink",
            Backend::Library => "libnftables",
            Backend::Process => "nft-process",
        }
    }
}

struct Job {
    /// Elements known to be in no set (one add each), and elements to refresh.
    fresh: Vec<Pair>,
    refresh: Vec<Pair>,
    reply: mpsc::SyncSender<Result<()>>,
}

/// A running committer for one namespace. Dropping it ends its thread after the requests
/// already sent.
pub struct Committer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    backend: Backend,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Committer {
    /// Starts the committer thread for `w`: nfnetlink, else libnftables if it loads, else
    /// `nft` processes; `PORTOLAN_NFT_BACKEND=library` or `=process` starts from there.
    pub fn start(w: &Where) -> Result<Committer> {
        let from = match std::env::var("PORTOLAN_NFT_BACKEND").as_deref() {
            Ok("process") => Backend::Process,
            Ok("library") => Backend::Library,
            _ => Backend::Netlink,
        };
        Self::start_with(w, from)
    }

    /// Starts a committer that uses `nft` processes only.
    pub fn start_process(w: &Where) -> Result<Committer> {
        Self::start_with(w, Backend::Process)
    }

    /// Starts a committer that uses libnftables (or, where it does not load, `nft`).
    pub fn start_library(w: &Where) -> Result<Committer> {
        Self::start_with(w, Backend::Library)
    }

    fn start_with(w: &Where, from: Backend) -> Result<Committer> {
        w.check()?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Backend>>();
        let at = w.clone();
        let thread = std::thread::Builder::new()
            .name("nft-commit".into())
            .spawn(move || {
                let engine = (|| {
                    if let Where::Netns(ns) = &at {
                        enter_netns(ns)?;
                    }
                    if from == Backend::Netlink {
                        if let Ok(nl) = crate::netlink::Netlink::open() {
                            return Ok(Engine::Netlink(nl));
                        }
                    }
                    if from != Backend::Process {
                        if let Ok(lib) = Lib::open() {
                            return Ok(Engine::Library(lib));
                        }
                    }
                    Ok(Engine::Process(at.clone()))
                })();
                let mut engine = match engine {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(engine.backend()));
                serve(&mut engine, &rx);
            })
            .map_err(|e| Error::io("cannot start the commit thread", e))?;
        let backend = match ready_rx.recv() {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::Apply("the commit thread ended at start".into())),
        };
        Ok(Committer {
            tx: Some(tx),
            thread: Some(thread),
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Adds or refreshes `pairs` (as [`crate::elements::write_pairs`] does); returns when the
    /// kernel has committed the transaction holding them.
    pub fn write(&self, pairs: &[Pair]) -> Result<()> {
        self.write_split(&[], pairs)
    }

    /// Adds `fresh` (elements known to be in no set: one `add` each, see
    /// [`crate::elements::fresh_pair_script`]) and refreshes `refresh`, in one request;
    /// returns when the kernel has committed the transaction holding them.
    pub fn write_split(&self, fresh: &[Pair], refresh: &[Pair]) -> Result<()> {
        if fresh.is_empty() && refresh.is_empty() {
            return Ok(());
        }
        if !fresh.iter().chain(refresh).all(crate::elements::writable) {
            return Err(Error::Apply(
                "refusing an enforce element of mixed families or an unknown set".into(),
            ));
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = || Error::Apply("the commit thread has ended".into());
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(Job {
                fresh: fresh.to_vec(),
                refresh: refresh.to_vec(),
                reply,
            })
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(engine: &mut Engine, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        match engine.run(&batch) {
            Ok(()) => {
                for j in batch {
                    let _ = j.reply.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(j) = batch.pop() {
                    let _ = j.reply.send(Err(e));
                }
            }
            Err(_) => {
                for j in batch {
                    let r = engine.run(std::slice::from_ref(&j));
                    let _ = j.reply.send(r);
                }
            }
        }
    }
}

/// Moves the calling thread into the named network namespace.
pub fn enter_netns(ns: &str) -> Result<()> {
    if !crate::exec::valid_netns_name(ns) {
        return Err(Error::Apply(format!(
            "`{ns}` is not a network namespace name"
        )));
    }
    let path = format!("/run/netns/{ns}");
    let f = std::fs::File::open(&path)
        .map_err(|e| Error::Apply(format!("no network namespace `{ns}` ({path}: {e})")))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| Error::Apply(format!("cannot enter network namespace {ns} (setns): {e}")))
}

enum Engine {
    Netlink(crate::netlink::Netlink),
    Library(Lib),
    Process(Where),
}

impl Engine {
    fn backend(&self) -> Backend {
        match self {
            Engine::Netlink(_) => Backend::Netlink,
            Engine::Library(_) => Backend::Library,
            Engine::Process(_) => Backend::Process,
        }
    }

    /// One transaction writing every job of `jobs`.
    fn run(&mut self, jobs: &[Job]) -> Result<()> {
        if let Engine::Netlink(nl) = self {
            let ops: Vec<_> = jobs
                .iter()
                .flat_map(|j| crate::netlink::ops(&j.fresh, &j.refresh))
                .collect();
            return nl.run(&ops);
        }
        let mut script = String::new();
        for j in jobs {
            // Checked in `write_split`; `None` cannot come back here.
            script.push_str(&fresh_pair_script(&j.fresh).unwrap_or_default());
            script.push_str(&pair_script(&j.refresh).unwrap_or_default());
        }
        match self {
            Engine::Library(l) => l.run(&script),
            Engine::Process(w) => run_process(w, &script),
            Engine::Netlink(_) => Ok(()),
        }
    }
}

/// `nft -f -` with `script` on its standard input.
pub(crate) fn run_process(w: &Where, script: &str) -> Result<()> {
    let mut cmd = w.command("nft", &["-f", "-"]);
    let shown = show(&cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("cannot run `{shown}`"), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::io(format!("cannot write to `{shown}`"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("cannot wait for `{shown}`"), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Rejected {
            detail: first_lines(&String::from_utf8_lossy(&out.stderr), 20),
        })
    }
}

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type CtxInt = unsafe extern "C" fn(*mut c_void) -> c_int;
type CtxStr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

/// libnftables and one context (libnftables(3): `nft_ctx_new`, `nft_ctx_buffer_output`,
/// `nft_ctx_buffer_error`, `nft_run_cmd_from_buffer`, `nft_ctx_get_*_buffer`,
/// `nft_ctx_free`). Lives on the committer thread only.
struct Lib {
    ctx: *mut c_void,
    run: RunCmd,
    get_error: CtxStr,
    get_output: CtxStr,
    free: CtxFree,
    _lib: libloading::Library,
}

impl Lib {
    fn open() -> std::result::Result<Lib, String> {
        // SAFETY: loading libnftables runs its (and libnftnl's, libmnl's) initialisers, which
        // only set up their own state; the symbols are typed as libnftables(3) declares them.
        unsafe {
            let lib = libloading::Library::new("libnftables.so.1").map_err(|e| e.to_string())?;
            let new: CtxNew = *lib
                .get::<CtxNew>(b"nft_ctx_new\0")
                .map_err(|e| e.to_string())?;
            let free: CtxFree = *lib
                .get::<CtxFree>(b"nft_ctx_free\0")
                .map_err(|e| e.to_string())?;
            let buffer_output: CtxInt = *lib
                .get::<CtxInt>(b"nft_ctx_buffer_output\0")
                .map_err(|e| e.to_string())?;
            let buffer_error: CtxInt = *lib
                .get::<CtxInt>(b"nft_ctx_buffer_error\0")
                .map_err(|e| e.to_string())?;
            let get_output: CtxStr = *lib
                .get::<CtxStr>(b"nft_ctx_get_output_buffer\0")
                .map_err(|e| e.to_string())?;
            let get_error: CtxStr = *lib
                .get::<CtxStr>(b"nft_ctx_get_error_buffer\0")
                .map_err(|e| e.to_string())?;
            let run: RunCmd = *lib
                .get::<RunCmd>(b"nft_run_cmd_from_buffer\0")
                .map_err(|e| e.to_string())?;
            // NFT_CTX_DEFAULT = 0.
            let ctx = new(0);
            if ctx.is_null() {
                return Err("nft_ctx_new failed".into());
            }
            if buffer_output(ctx) != 0 || buffer_error(ctx) != 0 {
                free(ctx);
                return Err("nft_ctx_buffer_* failed".into());
            }
            Ok(Lib {
                ctx,
                run,
                get_error,
                get_output,
                free,
                _lib: lib,
            })
        }
    }

    fn run(&self, script: &str) -> Result<()> {
        let text = CString::new(script)
            .map_err(|_| Error::Apply("an nft script holds a NUL byte".into()))?;
        // SAFETY: `ctx` is a live context of this library, used by this thread only; the
        // buffers returned are owned by the context and copied before the next call.
        let (rc, err) = unsafe {
            let rc = (self.run)(self.ctx, text.as_ptr());
            // Reading a buffer also empties it for the next command.
            let _ = (self.get_output)(self.ctx);
            let e = (self.get_error)(self.ctx);
            let err = if e.is_null() {
                String::new()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            };
            (rc, err)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Rejected {
                detail: first_lines(&err, 20),
            })
        }
    }
}

impl Drop for Lib {
    fn drop(&mut self) {
        // SAFETY: the context was made by this library and is freed once, before the library
        // is unloaded (`_lib` drops after this).
        unsafe { (self.free)(self.ctx) }
    }
}
