//! One flow-log format read line by line into flows and DNS names (`flowlog::conntrack::read`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use portolan_audit::dns::Names;
use portolan_audit::flowlog::{self, Sink};
use portolan_audit::flows::FlowTable;

fuzz_target!(|data: &[u8]| {
    let (mut flows, mut names) = (FlowTable::new(), Names::new());
    let mut sink = Sink {
        flows: &mut flows,
        names: &mut names,
    };
    let _ = flowlog::conntrack::read(data, &mut sink);
});
