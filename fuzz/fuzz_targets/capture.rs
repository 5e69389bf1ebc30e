//! A pcap or pcapng capture read frame by frame (the bytes as they are, no sniffing).
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_audit::capture;

fuzz_target!(|data: &[u8]| {
    let mut frames = 0u64;
    let _ = capture::read(std::io::Cursor::new(data.to_vec()), |_f| frames += 1);
});
