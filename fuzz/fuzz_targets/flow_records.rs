//! Flow export records (`flowlog::netflow`): a file of IPFIX / NetFlow v9 / v5 messages framed
//! and decoded with templates kept per observation domain, and the same bytes as one datagram
//! of the live collector. Nothing may panic; a file never yields more messages than it has
//! 16-byte headers, and never more flows than records.
#![no_main]
use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use portolan_audit::dns::Names;
use portolan_audit::flowlog::{netflow, Sink};
use portolan_audit::flows::FlowTable;

fuzz_target!(|data: &[u8]| {
    let mut flows = FlowTable::new();
    let mut names = Names::new();
    let mut sink = Sink {
        flows: &mut flows,
        names: &mut names,
    };
    let (messages, _, notes) = netflow::read(data, &mut sink);
    assert!(messages as usize <= data.len() / 16 + 1);
    assert!(flows.len() as u64 <= notes.records);

    let exporter: SocketAddr = "192.0.2.1:4739".parse().expect("address");
    let mut d = netflow::Decoder::new();
    let _ = d.message(exporter, data);
    // Twice: the second message finds the first one's templates.
    let _ = d.message(exporter, data);
    let records = d.notes.records;
    assert!(d.take_flows().len() as u64 <= records);
});
