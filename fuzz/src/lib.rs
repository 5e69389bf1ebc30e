//! What the fuzz targets share: the shipped catalog (loaded once), the example site's policy
//! (for audit targets to match against), and the invariants a compiled site must hold.

pub mod gen;
pub mod kernel;

use std::sync::OnceLock;

use portolan_model::catalog::Catalog;
use portolan_model::compile::site_text;
use portolan_model::ir::Policy;
use portolan_model::{PortItem, PortSpec};

/// The embedded catalog; the test suite proves it loads.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::embedded().expect("the embedded catalog is valid"))
}

/// The shipped example site, compiled.
pub fn example_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let text = include_str!("../../examples/site.yaml");
        site_text("examples/site.yaml", text, catalog())
            .expect("the example site compiles")
            .value
    })
}

/// Least privilege, checked on any compiled site: every rule comes from a flow its profile
/// states, with the flow's protocol when the profile gives one, and ports inside the flow's
/// literal ports when the profile lists them (ports from params and `unspecified` ones are
/// the site's to give). Panics, which the fuzzer reports, when a rule is wider.
pub fn assert_rules_within_profiles(policy: &Policy) {
    for r in &policy.rules {
        let p = policy
            .profiles
            .get(&r.profile)
            .unwrap_or_else(|| panic!("rule {} names a profile the policy lacks", r.provenance()));
        let f = p
            .flows
            .iter()
            .find(|f| f.id == r.flow)
            .unwrap_or_else(|| panic!("rule {} names no flow of its profile", r.provenance()));
        if let Some(n) = f.protocol.number() {
            assert_eq!(
                n,
                r.protocol.number(),
                "rule {} changes the protocol",
                r.provenance()
            );
        }
        if let PortSpec::List(items) = &f.ports {
            let literal: Option<Vec<(u16, u16)>> = items
                .iter()
                .map(|i| match i {
                    PortItem::Single(p) => Some((*p, *p)),
                    PortItem::Range(a, b) => Some((*a, *b)),
                    PortItem::Param(_) => None,
                })
                .collect();
            if let Some(literal) = literal {
                for pr in &r.ports {
                    assert!(
                        literal.iter().any(|(lo, hi)| *lo <= pr.lo && pr.hi <= *hi),
                        "rule {} opens ports {pr} the profile does not state",
                        r.provenance()
                    );
                }
            }
        }
    }
}

/// Feeds `data` to one flow-log reader with a fresh flow table and name table.
pub fn flow_log(
    data: &[u8],
    read: impl FnOnce(
        &[u8],
        &mut portolan_audit::flowlog::Sink<'_>,
    ) -> (u64, Option<portolan_audit::InputProblem>),
) {
    let mut flows = portolan_audit::flows::FlowTable::new();
    let mut names = portolan_audit::dns::Names::new();
    let mut sink = portolan_audit::flowlog::Sink {
        flows: &mut flows,
        names: &mut names,
    };
    let _ = read(data, &mut sink);
}

/// With `PORTOLAN_FUZZ_PRINT` set (for tuning a generator by hand: `PORTOLAN_FUZZ_PRINT=1
/// TARGET -runs=N`), prints the codes of the errors that refused a generated input.
pub fn explain(diags: &[portolan_model::Diagnostic]) {
    if std::env::var_os("PORTOLAN_FUZZ_PRINT").is_some() {
        let codes: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{} ({})", d.code, d.message))
            .collect();
        eprintln!("REFUSED: {}", codes.join(" "));
    }
}
