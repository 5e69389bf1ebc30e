//! libnftables-json (`nft -j list ruleset`) into the typed model (`portolan_nft::Ruleset`):
//! what parses writes back to JSON that parses to the same ruleset, and every part of it
//! can be walked (unknown parts named, elements shown).
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_nft::Ruleset;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Ruleset::parse(text, "fuzz") else {
        return;
    };
    let again = Ruleset::parse(&r.to_json(), "fuzz again").expect("the model's own JSON parses");
    assert_eq!(again, r, "the JSON the model writes reads back the same");
    for s in r.sets() {
        for e in s.elements() {
            let _ = e.to_string();
        }
    }
    let _ = r.unsupported().count();
});
