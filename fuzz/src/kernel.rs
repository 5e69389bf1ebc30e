//! The property targets' kernel check: an emitted ruleset must be one the real tools accept.
//! Everything runs inside one network namespace per fuzzing process (`portolan-fuzz-<pid>`),
//! never in the machine's own: `nft -c -f` (check only), and for the iptables back end
//! `ipset restore` (the sets exist only in that namespace) followed by
//! `iptables-restore --test` / `ip6tables-restore --test`; the dnsmasq lines go through
//! `dnsmasq --test`.
//!
//! libFuzzer ends a process with `exit()`, which runs no destructor, so the namespace is
//! removed by a watchdog started with it (`tail --pid` waits for the fuzzer to end, however it
//! ends, then `ip netns del`); and on the way in, namespaces and scratch folders left by
//! processes that no longer exist are removed. Scratch files live in `/dev/shm`.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use portolan_emit::{emit, EmitError, Options, Target};
use portolan_model::ir::Policy;

const PREFIX: &str = "portolan-fuzz-";

/// This process's namespace and scratch folder.
struct Ns {
    name: String,
    dir: PathBuf,
}

fn ns() -> &'static Ns {
    static NS: OnceLock<Ns> = OnceLock::new();
    NS.get_or_init(|| {
        remove_leftovers();
        let pid = std::process::id();
        let name = format!("{PREFIX}{pid}");
        let dir = scratch_root().join(&name);
        let _ = std::fs::create_dir_all(&dir);
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "the kernel check needs root and iproute2: `ip netns add {name}` failed"
        );
        // The watchdog outlives this process in its own session, so that neither the end of
        // the fuzzer nor a Ctrl-C to its process group stops it before it cleans up.
        let script = format!(
            "tail --pid={pid} -f /dev/null; ip netns del {name}; rm -rf '{}'",
            dir.display()
        );
        let watchdog = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        assert!(watchdog.is_ok(), "cannot start the namespace's watchdog");
        Ns { name, dir }
    })
}

/// Where the scratch folders go: memory (`/dev/shm`) where there is one, so that the checks
/// neither wear nor depend on a disk a shared machine may fill; else the temporary folder.
fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Namespaces and scratch folders of fuzzing processes that no longer exist.
fn remove_leftovers() {
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let dead = |name: &str| {
        name.strip_prefix(PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    for name in listed.lines().filter_map(|l| l.split_whitespace().next()) {
        if dead(name) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
    if let Ok(rd) = std::fs::read_dir(scratch_root()) {
        for e in rd.flatten() {
            if dead(&e.file_name().to_string_lossy()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Outputs already checked (by hash): mutations that change nothing in the output cost no
/// kernel round trip. Cleared when it grows large.
fn seen(text: &str) -> bool {
    static SEEN: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let mut s = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if s.len() > 200_000 {
        s.clear();
    }
    !s.insert(h.finish())
}

/// One back end's output, or `None` where it refuses the policy for a reason it states
/// (`Unsupported`: the same prefix in two zones, a dnsmasq line too long). An `Unsafe` refusal
/// is a string validation let through, a finding: it panics.
fn emitted(target: Target, policy: &Policy) -> Option<String> {
    match emit(target, policy, &Options::default()) {
        Ok(t) => Some(t),
        Err(e @ EmitError::Unsafe { .. }) => {
            panic!("validation let through what the {target:?} back end refuses: {e}")
        }
        Err(EmitError::Unsupported { .. }) => None,
    }
}

/// Runs a shell script inside the namespace; panics with the tools' messages and the inputs
/// when it fails.
fn run_checked(what: &str, script: &str, files: &[(&str, &str)]) {
    let ns = ns();
    let mut args = Vec::new();
    for (name, text) in files {
        let p = ns.dir.join(name);
        std::fs::write(&p, text).expect("write to the scratch folder");
        args.push(p);
    }
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "sh", "-c", script, "sh"])
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip netns exec");
    if !out.status.success() {
        let inputs: Vec<String> = files
            .iter()
            .map(|(n, t)| format!("----- {n}\n{t}"))
            .collect();
        panic!(
            "{what}: the emitted output is refused (exit {:?}):\n{}{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            inputs.join("\n")
        );
    }
}

/// Every back end's output of a compiled policy passes its own tool's check.
pub fn assert_outputs_load(policy: &Policy) {
    if let Some(text) = emitted(Target::Nftables, policy) {
        if !seen(&text) {
            run_checked("nft -c -f", "nft -c -f \"$1\"", &[("ruleset.nft", &text)]);
        }
    }
    if let Some(text) = emitted(Target::Iptables, policy) {
        if !seen(&text) {
            use portolan_emit::iptables::section;
            let script = "ipset -q destroy; ipset restore -exist < \"$1\" \
                && iptables-restore --test < \"$2\" && ip6tables-restore --test < \"$3\" \
                && dnsmasq --test --conf-file=\"$4\"";
            run_checked(
                "ipset restore, iptables-restore --test, ip6tables-restore --test, dnsmasq --test",
                script,
                &[
                    ("ipset", &section(&text, "ipset")),
                    ("iptables", &section(&text, "iptables")),
                    ("ip6tables", &section(&text, "ip6tables")),
                    ("dnsmasq-ipset.conf", &section(&text, "dnsmasq")),
                ],
            );
        }
    }
    if let Some(text) = emitted(Target::Dnsmasq, policy) {
        if !seen(&text) {
            run_checked(
                "dnsmasq --test",
                "dnsmasq --test --conf-file=\"$1\"",
                &[("dnsmasq.conf", &text)],
            );
        }
    }
}
