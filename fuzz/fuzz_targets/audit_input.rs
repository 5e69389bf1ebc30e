//! Any audit input as `portolan audit` reads it: gzip or not, format sniffed (pcap, pcapng,
//! Zeek, conntrack, nft log), folded into flows and matched against the example site.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_audit::{audit, Collector, Options};

fuzz_target!(|data: &[u8]| {
    let mut c = Collector::new();
    let reader = Box::new(std::io::Cursor::new(data.to_vec()));
    if c.read_from(std::path::Path::new("fuzz"), reader).is_err() {
        return;
    }
    let _ = audit(
        portolan_fuzz::example_policy(),
        c.finish(),
        &Options::default(),
    );
});
