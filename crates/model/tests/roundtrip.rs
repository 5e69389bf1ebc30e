//! Every shipped profile survives parse → validate → serialize → parse → validate unchanged.

use portolan_model::catalog::{Catalog, EMBEDDED};
use portolan_model::validate::profile_text;

#[test]
fn every_catalog_profile_round_trips() {
    assert!(EMBEDDED.len() >= 5, "the catalog ships every seed system");
    let cat = Catalog::embedded().expect("shipped catalog validates");
    for e in &cat.entries {
        let yaml = serde_saphyr::to_string(&e.profile).expect("serializes");
        let again = match profile_text("roundtrip.yaml", &yaml) {
            Ok(l) => l.value,
            Err(d) => panic!("{} does not re-parse: {d:?}\n{yaml}", e.profile.id),
        };
        assert_eq!(
            again, e.profile,
            "{} changed in the round trip",
            e.profile.id
        );
    }
}

#[test]
fn shipped_profiles_have_no_warnings() {
    for (name, text) in EMBEDDED {
        let l = profile_text(name, text).expect("valid");
        assert!(l.warnings.is_empty(), "{name}: {:?}", l.warnings);
    }
}
