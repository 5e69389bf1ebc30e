//! Shared by the back-end tests: fixture paths, site compilation (profiles from
//! `portolan-testkit`), and the steps of kernel checks inside the kit's throwaway network
//! namespaces.

use std::path::{Path, PathBuf};

use portolan_model::compile::site_text;
use portolan_model::ir::Policy;
pub use portolan_testkit::{kernel, Netns, Profiles};

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

/// Compiles a site file against the catalog; panics with the diagnostics when it is refused.
pub fn compile_file(path: &Path) -> Policy {
    let text = std::fs::read_to_string(path).expect("site is readable");
    let profiles = Profiles::catalog().files(path.parent().expect("a folder"));
    match site_text(&path.display().to_string(), &text, &profiles) {
        Ok(l) => l.value,
        Err(d) => panic!(
            "{} is refused:\n{}",
            path.display(),
            d.iter().map(|d| format!("  {d}\n")).collect::<String>()
        ),
    }
}

/// What the back-end tests do inside a namespace of their own (firewall rules are only ever
/// loaded there, never into the test's own namespace), each failure naming the step.
pub trait Steps {
    /// Runs `args` inside with `stdin`; its standard output. Panics naming `what`.
    fn step(&self, what: &str, args: &[&str], stdin: Option<&str>) -> String;
    /// Loads an nftables ruleset from text (`nft -f -`), or checks it only (`nft -c`).
    fn nft(&self, what: &str, ruleset: &str, check_only: bool);
    /// Loads an iptables back-end output: its ipset, iptables and ip6tables sections.
    fn iptables(&self, what: &str, text: &str);
}

impl Steps for Netns {
    fn step(&self, what: &str, args: &[&str], stdin: Option<&str>) -> String {
        self.run(args, stdin)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    fn nft(&self, what: &str, ruleset: &str, check_only: bool) {
        let args: &[&str] = if check_only {
            &["nft", "-c", "-f", "-"]
        } else {
            &["nft", "-f", "-"]
        };
        self.step(what, args, Some(ruleset));
    }

    fn iptables(&self, what: &str, text: &str) {
        use portolan_emit::iptables::section;
        for (part, args) in [
            ("ipset", &["ipset", "restore", "-exist"][..]),
            ("iptables", &["iptables-restore", "-w"][..]),
            ("ip6tables", &["ip6tables-restore", "-w"][..]),
        ] {
            self.step(
                &format!("{what} ({part})"),
                args,
                Some(&section(text, part)),
            );
        }
    }
}
