//! A large site's devices are checked and lowered on several threads (`compile::compile_on`,
//! issue #21): the policy and the diagnostics must be those of one thread, whatever the count.
//!
//! The generated sites put every kind of diagnostic a device can get into every thread's run
//! of devices: those made while placing a device on the calling thread (a duplicate id, an
//! address another device claimed, an unknown profile, a mode its profile does not have) and
//! those made while checking it on a worker (an undeclared param, a required flow switched
//! off, a device allowed nothing), so that putting them back in order is tested too: the
//! diagnostics a site's compile returns are sorted by position, so the order they were made in
//! is read from the sink before that sort, against the devices' order in the site's text.

use portolan_model::compile::site_text_on;

mod fleet;

/// `n` devices of both profiles; with `errors`, every 97th device has a problem found while
/// placing it or while checking it, in turn. Every 89th switches a required flow off (two
/// warnings, made on a worker).
fn site(n: usize, errors: bool) -> String {
    let mut s = fleet::header("threads");
    for d in 0..n {
        let profile = if d % 2 == 0 {
            "work-named"
        } else {
            "work-plain"
        };
        let mut id = format!("g{d}");
        let mut addr = d;
        let mut extra = String::new();
        if d % 89 == 5 && profile == "work-plain" {
            extra.push_str("    flows: {ntp: {enabled: false}}\n");
        }
        let mut profile = profile.to_string();
        if errors && d % 97 == 3 {
            match (d / 97) % 5 {
                0 => id = format!("g{}", d - 1),   // placing: duplicate id
                1 => addr = d - 1,                 // placing: address claimed
                2 => profile = "t-missing".into(), // placing: unknown profile
                3 => extra.push_str("    mode: nonexistent\n"), // placing: unknown mode
                _ => extra.push_str("    params: {undeclared: 1}\n"), // checking: unknown param
            }
        }
        s.push_str(&format!(
            "  - id: {id}\n    profile: {profile}\n    zone: field\n    addresses: [{}]\n{extra}",
            fleet::address(addr)
        ));
    }
    s
}

/// The compile of `text` on `threads` threads, as text: the policy (JSON) and the warnings,
/// or the diagnostics that refused it.
fn compiled(text: &str, threads: usize) -> (bool, String) {
    let profiles = fleet::profiles();
    match site_text_on("threads.yaml", text, &profiles, Some(threads)) {
        Ok(l) => (
            true,
            format!(
                "{}\n{:?}\n{:?}",
                serde_json::to_string(&l.value).expect("a policy serialises"),
                l.value.profiles.keys().collect::<Vec<_>>(),
                l.warnings
            ),
        ),
        Err(d) => (false, format!("{d:?}")),
    }
}

#[test]
fn every_thread_count_gives_the_one_thread_policy_and_warnings() {
    let text = site(6_000, false);
    let (ok, one) = compiled(&text, 1);
    assert!(ok, "the clean site is refused: {one}");
    // The site compiled as generated: 3 rules per pair of devices, less the NTP rule of each
    // device that switched it off; and each of those has its two warnings.
    let off = (0..6_000).filter(|d| d % 89 == 5 && d % 2 == 1).count();
    let policy: serde_json::Value =
        serde_json::from_str(one.lines().next().expect("policy line")).expect("JSON");
    assert_eq!(
        policy["rules"].as_array().map(Vec::len),
        Some(3 * 6_000 / 2 - off)
    );
    assert_eq!(one.matches("RequiredFlowDisabled").count(), off);
    assert_eq!(one.matches("NothingAllowed").count(), off);
    for threads in [2, 3, 8] {
        let (ok, many) = compiled(&text, threads);
        assert!(ok);
        assert!(
            one == many,
            "{threads} threads compiled the site differently"
        );
    }
}

#[test]
fn every_thread_count_gives_the_one_thread_diagnostics() {
    let text = site(6_000, true);
    let (ok, one) = compiled(&text, 1);
    assert!(!ok, "the site with errors was accepted");
    for code in [
        "DuplicateId",
        "AddressConflict",
        "UnknownProfile",
        "UnknownMode",
        "UnknownParam",
        "RequiredFlowDisabled",
    ] {
        assert!(one.contains(code), "no {code} among the diagnostics");
    }
    for threads in [2, 3, 8] {
        let (ok, many) = compiled(&text, threads);
        assert!(!ok);
        assert!(one == many, "{threads} threads gave other diagnostics");
    }
}

/// The diagnostics in the order they are made, before `Sink::finish` sorts them by position:
/// one device's all together, the devices in the site's order, as a single loop over the
/// devices made them before their checks ran on several threads. The device a diagnostic is
/// about is read from its line: the site's text says where each device's entry starts.
#[test]
fn diagnostics_are_made_device_by_device_in_the_sites_order() {
    use portolan_model::compile::compile_on;
    use portolan_model::diag::Sink;
    use portolan_model::raw_site::RawSite;

    let text = site(6_000, true);
    let devices_at = text
        .lines()
        .position(|l| l == "devices:")
        .expect("a devices list");
    let starts: Vec<usize> = text
        .lines()
        .enumerate()
        .skip(devices_at)
        .filter(|(_, l)| l.starts_with("  - id: "))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(starts.len(), 6_000);
    let device_of = |line: usize| starts.partition_point(|&s| s <= line).checked_sub(1);
    let profiles = fleet::profiles();
    let raw: RawSite = serde_saphyr::from_str(&text).expect("the generated site parses");
    let mut made = Vec::new();
    for threads in [1, 2, 3, 8] {
        let mut sink = Sink::new("threads.yaml");
        compile_on(&raw, &profiles, &mut sink, threads);
        let devices: Vec<usize> = sink
            .diagnostics
            .iter()
            .filter_map(|d| device_of(d.line as usize))
            .collect();
        // Placing and checking each gave some (see `site`), spread over every thread's run.
        assert!(devices.len() > 100, "{} diagnostics", devices.len());
        assert!(
            devices.windows(2).all(|w| w[0] <= w[1]),
            "{threads} threads: a device's diagnostics came after a later device's"
        );
        made.push(format!("{:?}", sink.diagnostics));
    }
    assert!(made.iter().all(|m| *m == made[0]));
}
