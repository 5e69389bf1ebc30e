//! A profile file: parse and validate. Any input is refused with diagnostics or accepted;
//! nothing panics or hangs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = portolan_model::validate::profile_text("fuzz.yaml", text);
});
