//! A generated profile (`portolan_fuzz::gen::profile`: every flow field that reaches the IR
//! or a back end) is validated; one that validates is bound in a generated site (alone, or
//! beside the shipped catalog's profiles) and compiled. A site that compiles must hold the
//! least-privilege invariant, and every back end's output must pass its tool's check inside
//! this process's network namespace, as in `site_nft_check`. The byte-level `profile_yaml`
//! target stops at validation; this one takes profile-side values (ICMP types, casts and
//! groups, families, param-typed protocols and ports, templates) through compile and emit.
#![no_main]
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use portolan_fuzz::gen::{profile, site, G};
use portolan_model::compile::ProfileSource;
use portolan_model::profile::Profile;

/// The generated profile by its id, the catalog for every other name.
struct With<'a>(&'a Profile);

impl ProfileSource for With<'_> {
    fn profile(&self, name: &str) -> Result<Profile, portolan_model::ProfileError> {
        if name == self.0.id {
            Ok(self.0.clone())
        } else {
            portolan_fuzz::catalog().profile(name)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut g = G { u: &mut u };
    let ptext = profile(&mut g);
    let print = std::env::var_os("PORTOLAN_FUZZ_PRINT").is_some();
    if print {
        eprintln!("{ptext}");
    }
    let p = match portolan_model::validate::profile_text("fuzz-dev.yaml", &ptext) {
        Ok(p) => p,
        Err(d) => return portolan_fuzz::explain(&d),
    };
    let p = p.value;
    let mut profiles = vec![&p];
    if g.chance(20) {
        profiles.extend(portolan_fuzz::catalog().entries.iter().map(|e| &e.profile));
    }
    let Ok(stext) = site(&mut g, &profiles) else {
        return;
    };
    if print {
        eprintln!("{stext}");
    }
    let loaded = match portolan_model::compile::site_text("fuzz.yaml", &stext, &With(&p)) {
        Ok(l) => l,
        Err(d) => return portolan_fuzz::explain(&d),
    };
    portolan_fuzz::assert_rules_within_profiles(&loaded.value);
    portolan_fuzz::kernel::assert_outputs_load(&loaded.value);
});
