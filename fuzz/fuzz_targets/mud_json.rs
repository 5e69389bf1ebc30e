//! A MUD file (RFC 8520), imported leniently and strictly: refused with problems or
//! imported, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_mud::{import, ImportOptions};

fuzz_target!(|data: &[u8]| {
    for strict in [false, true] {
        let o = ImportOptions {
            strict,
            file: "fuzz.json".into(),
        };
        let _ = import(data, &o);
    }
});
