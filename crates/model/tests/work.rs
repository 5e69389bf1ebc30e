//! Compiling a site does work linear in its devices, counted, not timed (issue #21).
//!
//! A check that read every rule of the policy once per device group (`names-need-dns`, before
//! it was given the device's own rules) made a site of 100,000 one-device groups compile in
//! 854 s. A timed test would not catch its return reliably on a shared machine; this one counts
//! the items compile reads from what the whole site has grown (`portolan_model::work`: the
//! policy's rules, the diagnostics, the zones, the claimed addresses) on generated sites of two
//! sizes, and holds the count to a per-device figure derived by hand below.

use portolan_model::compile::site_text;
use portolan_model::work;

mod fleet;

/// A site of `n` one-device groups (the worst case for per-group work), alternating the two
/// profiles, each device one IPv4 address of 10.0.0.0/8.
fn site(n: usize) -> String {
    let mut s = fleet::header("work");
    for d in 0..n {
        let profile = if d % 2 == 0 {
            "work-named"
        } else {
            "work-plain"
        };
        s.push_str(&format!(
            "  - id: g{d}\n    profile: {profile}\n    zone: field\n    addresses: [{}]\n",
            fleet::address(d)
        ));
    }
    s
}

/// Compiles a site of `n` devices and returns (items read, rules made, diagnostics).
fn count(n: usize) -> (u64, usize, usize) {
    let profiles = fleet::profiles();
    let text = site(n);
    work::reset();
    let loaded = site_text("work.yaml", &text, &profiles)
        .unwrap_or_else(|d| panic!("the generated site is refused: {d:?}"));
    (
        work::visits(),
        loaded.value.rules.len(),
        loaded.warnings.len(),
    )
}

/// Per device, by hand from the site and the instrumented reads (`work.rs`'s callers):
/// - the zone lookup reads the site's 2 zones: 2;
/// - the address claim of a /32 looks up each prefix length some earlier claim has (only 32,
///   once the first device has claimed its address) and one range: 1 + 1 = 2, and 1 for the
///   first device;
/// - `names-need-dns` reads the device's own rules at most twice: 2 × 2 for a named device,
///   2 × 1 for a plain one, 3 on average;
/// - `nothing-allowed` reads the device's own new diagnostics: none (the site is clean).
///
/// So 2 + 2 + 3 = 7 per device, less 1 for the first, the same at any size: a site of 4n
/// devices reads 4 × (7n) − 1. A check reading the whole policy per device would read about
/// 1.5 × n rules for each, 1,500 at n = 1,000, and fail both bounds.
const PER_DEVICE: u64 = 7;

#[test]
fn site_compile_reads_a_fixed_amount_per_device() {
    let (small, large) = (1_000usize, 4_000usize);
    let (v1, rules1, warnings1) = count(small);
    let (v4, rules4, warnings4) = count(large);
    // The sites compiled as derived above: 3 rules per pair of devices, no diagnostic.
    assert_eq!((rules1, rules4), (3 * small / 2, 3 * large / 2));
    assert_eq!((warnings1, warnings4), (0, 0));
    assert_eq!(
        v1,
        PER_DEVICE * small as u64 - 1,
        "items read for {small} devices"
    );
    assert_eq!(
        v4,
        PER_DEVICE * large as u64 - 1,
        "items read for {large} devices"
    );
    // The growth itself, whatever the constant: four times the devices, four times the work.
    assert_eq!(
        v4 + 1,
        4 * (v1 + 1),
        "compile work grew faster than the devices"
    );
}
