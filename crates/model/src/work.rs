//! A count of the work a site's compile does, for the test that keeps it linear in the site's
//! devices (`tests/work.rs`; issue #21: a check that scanned every rule of the policy once per
//! device group made compiling 100,000 groups take 854 s, and a timed test on a shared machine
//! would not have caught it reliably).
//!
//! Every place where compiling one device reads something the whole site has grown — the
//! policy's rules, the sink's diagnostics, the site's zones, the claimed addresses — adds the
//! number of items it reads with [`visit`]. A device's own share of the count is then bounded
//! by what its profile and its own entry hold; a check that reads the whole policy per device
//! shows up as a count that grows with the square of the devices. The count is per thread, so
//! tests running side by side do not mix their counts; it costs one add per place visited.

use std::cell::Cell;

thread_local! {
    static VISITS: Cell<u64> = const { Cell::new(0) };
}

/// Adds `n` items read (the emitters count theirs here too: `portolan-emit`'s chains).
#[inline]
pub fn visit(n: usize) {
    VISITS.with(|v| v.set(v.get().saturating_add(n as u64)));
}

/// Items read by compiles on this thread since the last [`reset`].
pub fn visits() -> u64 {
    VISITS.with(Cell::get)
}

/// Sets this thread's count to 0.
pub fn reset() {
    VISITS.with(|v| v.set(0));
}
