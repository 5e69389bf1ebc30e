//! Property: every site that validates compiles to outputs the real tools accept. The input
//! drives a generator (`portolan_fuzz::gen`) that writes a site over the shipped catalog's
//! profiles (their modes, features, params, endpoints and unspecified flows, with zones,
//! addresses, MACs, multicast and broadcast peers, and a share of wrong values), so that most
//! inputs reach validation and compile. A site that compiles must hold the least-privilege
//! invariant, and its nftables ruleset must pass `nft -c -f`, its iptables output
//! `ipset restore` + `iptables-restore --test` + `ip6tables-restore --test`, and its dnsmasq
//! lines `dnsmasq --test`, all inside this process's own network namespace.
#![no_main]
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use portolan_fuzz::gen::{site, G};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let profiles: Vec<_> = portolan_fuzz::catalog()
        .entries
        .iter()
        .map(|e| &e.profile)
        .collect();
    let Ok(text) = site(&mut G { u: &mut u }, &profiles) else {
        return;
    };
    if std::env::var_os("PORTOLAN_FUZZ_PRINT").is_some() {
        eprintln!("{text}");
    }
    let loaded =
        match portolan_model::compile::site_text("fuzz.yaml", &text, portolan_fuzz::catalog()) {
            Ok(l) => l,
            Err(d) => return portolan_fuzz::explain(&d),
        };
    portolan_fuzz::assert_rules_within_profiles(&loaded.value);
    portolan_fuzz::kernel::assert_outputs_load(&loaded.value);
});
