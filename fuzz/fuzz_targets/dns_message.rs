//! A DNS message as audit decodes it from a capture (names for the addresses it answers).
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_audit::dns::Names;

fuzz_target!(|data: &[u8]| {
    let mut n = Names::new();
    let _ = n.message(data, 0);
});
