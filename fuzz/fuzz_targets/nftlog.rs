//! One flow-log format read line by line into flows and DNS names (`flowlog::nftlog::read`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_audit::flowlog;

fuzz_target!(|data: &[u8]| portolan_fuzz::flow_log(data, |d, s| flowlog::nftlog::read(d, s)));
