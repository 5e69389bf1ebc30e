//! libnftables-json (`nft -j list ruleset`) into the typed model (`portolan_nft::Ruleset`):
//! the model's own JSON is a fixed point (what it writes reads back the same), and every part
//! of it can be walked (unknown parts named, elements shown). Not the input itself: an object
//! that names a field twice stays unknown (RFC 8259 leaves duplicate names undefined), and
//! its raw JSON keeps one value per name, which may then read as a known object
//! (fuzz/README.md, findings; `an_object_with_a_duplicate_name_stays_unknown` in
//! crates/nft/tests/model.rs).
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
    let once = Ruleset::parse(&r.to_json(), "fuzz once").expect("the model's own JSON parses");
    let twice = Ruleset::parse(&once.to_json(), "fuzz twice").expect("and again");
    assert_eq!(twice, once, "the JSON the model writes reads back the same");
    for s in r.sets() {
        for e in s.elements() {
            let _ = e.to_string();
        }
    }
    let _ = r.unsupported().count();
});
