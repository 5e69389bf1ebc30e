//! The emitted rulesets in a real kernel, each inside a network namespace created for the test
//! and removed after it: `nft -c`, a load, a reload, and DNS-filled sets that keep their
//! elements across the reload; the same for the iptables/ipset output.

use portolan_emit::{emit, Options, Target};

use crate::common::{compile_file, good_sites, kernel, Netns, Steps};

fn nft_text(site: &std::path::Path) -> String {
    emit(Target::Nftables, &compile_file(site), &Options::default()).expect("emits")
}

fn ipt_text(site: &std::path::Path) -> String {
    emit(Target::Iptables, &compile_file(site), &Options::default()).expect("emits")
}

/// The first set of the output that is DNS-filled (`dns`) or static.
fn first_set(text: &str, dns: bool) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("set "))
        .filter_map(|l| l.split_whitespace().next())
        .find(|n| portolan_emit::nftables::dns_filled(n) == dns)
        .map(str::to_string)
}

#[test]
fn nftables_output_checks_loads_and_reloads() {
    let _turn = kernel::turn();
    for site in good_sites() {
        let text = nft_text(&site);
        let ns = Netns::new("emit");
        let what = site.display().to_string();
        ns.nft(&format!("{what}: nft -c"), &text, true);
        ns.nft(&format!("{what}: load"), &text, false);
        ns.nft(&format!("{what}: reload"), &text, false);
        let listed = ns.step("list", &["nft", "list", "table", "inet", "portolan"], None);
        assert!(listed.contains("chain forward"), "{what}: {listed}");
    }
}

#[test]
fn dns_filled_sets_survive_a_reload_and_static_sets_do_not_keep_strays() {
    let _turn = kernel::turn();
    let site = crate::common::root().join("examples/site.yaml");
    let text = nft_text(&site);
    let dns = first_set(&text, true).expect("the example has a name set");
    let fixed = first_set(&text, false).expect("the example has a static set");
    let ns = Netns::new("emit");
    ns.nft("load", &text, false);
    ns.step(
        "add a DNS answer",
        &[
            "nft",
            "add",
            "element",
            "inet",
            "portolan",
            &dns,
            "{ 192.0.2.77 timeout 1h }",
        ],
        None,
    );
    ns.step(
        "add a stray static element",
        &[
            "nft",
            "add",
            "element",
            "inet",
            "portolan",
            &fixed,
            "{ 192.0.2.99 }",
        ],
        None,
    );
    ns.nft("reload", &text, false);
    let dns_now = ns.step(
        "list",
        &["nft", "list", "set", "inet", "portolan", &dns],
        None,
    );
    assert!(
        dns_now.contains("192.0.2.77"),
        "the DNS-filled set {dns} lost its element on reload:\n{dns_now}"
    );
    let fixed_now = ns.step(
        "list",
        &["nft", "list", "set", "inet", "portolan", &fixed],
        None,
    );
    assert!(
        !fixed_now.contains("192.0.2.99"),
        "the static set {fixed} kept a stray element:\n{fixed_now}"
    );
}

#[test]
fn one_site_policy_replaces_another() {
    // Set names say their type, so loading another site's policy over a loaded one (a site
    // edit) never meets an existing set of another type.
    let _turn = kernel::turn();
    let ns = Netns::new("emit");
    for site in good_sites() {
        ns.nft(&site.display().to_string(), &nft_text(&site), false);
    }
    for site in good_sites().iter().rev() {
        ns.nft(&site.display().to_string(), &nft_text(site), false);
    }
}

#[test]
fn iptables_output_loads_and_reloads() {
    let _turn = kernel::turn();
    for site in good_sites() {
        let text = ipt_text(&site);
        let what = site.display().to_string();
        let ns = Netns::new("emit");
        ns.iptables(&format!("{what}: load"), &text);
        ns.iptables(&format!("{what}: reload"), &text);
        let saved = ns.step("save", &["iptables-save"], None);
        assert!(saved.contains(":PORTOLAN-FORWARD"), "{what}: {saved}");
        assert!(saved.contains(":FORWARD DROP"), "{what}: {saved}");
    }
}

#[test]
fn iptables_dns_sets_survive_a_reload_and_another_site_replaces_the_policy() {
    let _turn = kernel::turn();
    let site = crate::common::root().join("examples/site.yaml");
    let text = ipt_text(&site);
    let dns = text
        .lines()
        .filter_map(|l| l.strip_prefix("create "))
        .filter_map(|l| l.split_whitespace().next())
        .find(|n| portolan_emit::names::is_dns_filled_set(n))
        .map(str::to_string)
        .expect("the example has a name set");
    let ns = Netns::new("emit");
    ns.iptables("load", &text);
    ns.step("add", &["ipset", "add", &dns, "192.0.2.77"], None);
    ns.iptables("reload", &text);
    ns.step("kept", &["ipset", "test", &dns, "192.0.2.77"], None);
    for other in good_sites() {
        ns.iptables(&other.display().to_string(), &ipt_text(&other));
    }
}
