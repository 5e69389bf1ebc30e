//! A DNS message as audit decodes it from a capture (names for the addresses it answers),
//! and the plain reading held to hickory-proto's: whatever it reads, hickory reads the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_audit::dns::{plain_agrees_with_hickory, Names};

fuzz_target!(|data: &[u8]| {
    let mut n = Names::new();
    let _ = n.message(data, 0);
    if let Err(e) = plain_agrees_with_hickory(data) {
        panic!("{e}");
    }
});
