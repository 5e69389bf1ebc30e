//! A site file against the shipped catalog: parse, validate, compile; a site that compiles
//! must hold the least-privilege invariant and go through every back end without a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_emit::{emit, Options, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) =
        portolan_model::compile::site_text("fuzz.yaml", text, portolan_fuzz::catalog())
    else {
        return;
    };
    portolan_fuzz::assert_rules_within_profiles(&loaded.value);
    for t in [Target::Nftables, Target::Iptables, Target::Dnsmasq] {
        let _ = emit(t, &loaded.value, &Options::default());
    }
});
