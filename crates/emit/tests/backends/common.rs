//! Shared by the back-end tests: fixture paths, a profile source over the catalog and profile
//! files, site compilation, and throwaway network namespaces for kernel checks.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use portolan_model::catalog::{load_file, Catalog};
use portolan_model::compile::{site_text, ProfileSource};
use portolan_model::ir::Policy;
use portolan_model::validate::profile_text;
use portolan_model::{Diagnostic, Profile};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `*.yaml` of a folder, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// The sites every kernel and provenance check runs on: the example and the good fixtures.
pub fn good_sites() -> Vec<PathBuf> {
    let mut v = vec![root().join("examples/site.yaml")];
    v.extend(yaml_files(&root().join("test-data/sites/good")));
    assert!(v.len() >= 4, "the good site fixtures are there");
    v
}

/// Catalog profiles, profiles given inline (by name), and profile files relative to `base`.
pub struct Profiles {
    pub catalog: Catalog,
    pub base: PathBuf,
    pub inline: BTreeMap<String, Profile>,
}

impl Profiles {
    pub fn new(base: &Path) -> Self {
        Profiles {
            catalog: Catalog::embedded().expect("the shipped catalog is valid"),
            base: base.to_path_buf(),
            inline: BTreeMap::new(),
        }
    }

    /// Adds a profile from YAML text under `name`; `Err` with the validation diagnostics.
    pub fn with_text(mut self, name: &str, text: &str) -> Result<Self, Vec<Diagnostic>> {
        let p = profile_text(name, text)?.value;
        self.inline.insert(name.to_string(), p);
        Ok(self)
    }
}

impl ProfileSource for Profiles {
    fn profile(&self, name: &str) -> Result<Profile, portolan_model::ProfileError> {
        if let Some(p) = self.inline.get(name) {
            return Ok(p.clone());
        }
        if let Some(p) = self.catalog.get(name) {
            return Ok(p.clone());
        }
        if name.ends_with(".yaml") {
            let path = self.base.join(name);
            return load_file(&path)
                .map(|l| l.value)
                .map_err(|e| portolan_model::ProfileError::file(path, e));
        }
        Err(portolan_model::ProfileError::NotInCatalog { known: Vec::new() })
    }
}

/// Compiles a site file against the catalog; panics with the diagnostics when it is refused.
pub fn compile_file(path: &Path) -> Policy {
    let text = std::fs::read_to_string(path).expect("site is readable");
    let profiles = Profiles::new(path.parent().expect("a folder"));
    match site_text(&path.display().to_string(), &text, &profiles) {
        Ok(l) => l.value,
        Err(d) => panic!(
            "{} is refused:\n{}",
            path.display(),
            d.iter().map(|d| format!("  {d}\n")).collect::<String>()
        ),
    }
}

/// Kernel tests take turns: they share two cores and the xtables lock.
pub static KERNEL: Mutex<()> = Mutex::new(());

/// A network namespace of its own, removed on drop (also when the test fails). Firewall
/// rules are only ever loaded inside one of these, never into the test's own namespace.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("ptl-emit-{}-{nanos:08x}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "KERNEL TEST CANNOT RUN: `ip netns add {name}` failed (needs root and iproute2)"
        );
        Netns { name }
    }

    /// Runs a command inside the namespace, with `stdin` as its input.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.unwrap_or("").as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("command ends");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Like [`Netns::run`], panicking with the output when the command fails.
    pub fn must(&self, what: &str, args: &[&str], stdin: Option<&str>) -> String {
        let r = self.run(args, stdin);
        assert!(r.ok, "{what}: {args:?} failed:\n{}\n{}", r.stderr, r.stdout);
        r.stdout
    }

    /// Loads an nftables ruleset from text (`nft -f -`), or checks it only.
    pub fn nft(&self, what: &str, ruleset: &str, check_only: bool) {
        let args: &[&str] = if check_only {
            &["nft", "-c", "-f", "-"]
        } else {
            &["nft", "-f", "-"]
        };
        self.must(what, args, Some(ruleset));
    }

    /// Loads an iptables back-end output: its ipset, iptables and ip6tables sections.
    pub fn iptables(&self, what: &str, text: &str) {
        use portolan_emit::iptables::section;
        self.must(
            &format!("{what} (ipset)"),
            &["ipset", "restore", "-exist"],
            Some(&section(text, "ipset")),
        );
        self.must(
            &format!("{what} (iptables)"),
            &["iptables-restore", "-w"],
            Some(&section(text, "iptables")),
        );
        self.must(
            &format!("{what} (ip6tables)"),
            &["ip6tables-restore", "-w"],
            Some(&section(text, "ip6tables")),
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// What a command inside a namespace did.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}
