//! Integration tests of `portolan-audit`: every capture is written by the test itself with the
//! crate's deterministic writer, then read back, folded into flows and judged against a
//! compiled site.

mod captures;
mod exporters;
mod jobs;
mod lab;
mod lab_passed;
mod learn;
mod logs;
mod matching;
mod proxy;
mod records;
mod scenario;
mod windows;
