//! Which offsets a worker may commit: at-least-once without waiting on the producer.
//!
//! Every window of every partition has a ticket. Each finding or dead letter the window
//! causes is sent under its ticket, and the producer's delivery report settles it. A closed
//! window's offset may be committed once every message of its ticket is delivered **and**
//! every window closed before it is committable too — commits follow the order windows closed
//! in, so an offset is never committed past a window whose findings are still in flight.
//! A delivery that fails leaves its ticket unsettled for good: nothing closed from then on is
//! committed, and the worker stops with an error (its partitions' next owner re-reads).
//!
//! Before this ledger the worker flushed the producer at every window close and waited for the
//! broker's acknowledgement with the consumer idle; that wait was most of a worker's time
//! (`bench/kafka.sh`).

use std::collections::{BTreeMap, HashMap, VecDeque};

/// A window's number, unique in the worker.
pub type Ticket = usize;

/// Messages in flight per ticket, and the closed windows waiting to be committed.
#[derive(Debug, Default)]
pub struct Ledger {
    next: Ticket,
    /// Messages sent and not yet reported, by ticket (absent: none).
    in_flight: HashMap<Ticket, u64>,
    /// Closed windows in the order they closed: ticket, partition, offset to commit.
    closed: VecDeque<(Ticket, i32, i64)>,
    /// Deliveries that failed.
    failed: u64,
    first_failure: Option<String>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// A ticket for a window that opens.
    pub fn open(&mut self) -> Ticket {
        self.next += 1;
        self.next
    }

    /// A message of `t` is handed to the producer.
    pub fn sent(&mut self, t: Ticket) {
        *self.in_flight.entry(t).or_default() += 1;
    }

    /// The producer reports a message of `t`: delivered, or failed with `error`.
    pub fn reported(&mut self, t: Ticket, error: Option<String>) {
        if let Some(e) = error {
            self.failed += 1;
            self.first_failure.get_or_insert(e);
            // The ticket stays unsettled: nothing from its window on is committed.
            return;
        }
        if let Some(n) = self.in_flight.get_mut(&t) {
            *n -= 1;
            if *n == 0 {
                self.in_flight.remove(&t);
            }
        }
    }

    /// Window `t` of `partition` closed; its offset to commit is `offset` (`None`: nothing
    /// read).
    pub fn closed(&mut self, t: Ticket, partition: i32, offset: Option<i64>) {
        if let Some(o) = offset {
            self.closed.push_back((t, partition, o));
        }
    }

    /// Failed deliveries so far, and the first failure's message.
    pub fn failures(&self) -> (u64, Option<&str>) {
        (self.failed, self.first_failure.as_deref())
    }

    /// The offsets that may be committed now, per partition (the latest of each), taken off
    /// the ledger. Empty after any failure.
    pub fn ready(&mut self) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        if self.failed > 0 {
            return out;
        }
        while let Some(&(t, p, o)) = self.closed.front() {
            if self.in_flight.contains_key(&t) {
                break;
            }
            self.closed.pop_front();
            out.insert(p, o);
        }
        out
    }

    /// Closed windows not committable yet.
    pub fn waiting(&self) -> usize {
        self.closed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_committable_only_when_its_messages_and_all_earlier_windows_are_delivered() {
        let mut l = Ledger::new();
        let (a, b) = (l.open(), l.open());
        l.sent(a);
        l.sent(a);
        l.sent(b);
        l.closed(a, 0, Some(100));
        l.closed(b, 1, Some(50));
        // b is delivered first, but a (closed before it) is not: nothing.
        l.reported(b, None);
        assert!(l.ready().is_empty());
        l.reported(a, None);
        assert!(
            l.ready().is_empty(),
            "one of a's two messages is still in flight"
        );
        l.reported(a, None);
        assert_eq!(l.ready(), BTreeMap::from([(0, 100), (1, 50)]));
        assert!(l.ready().is_empty(), "taken off the ledger");
        assert_eq!(l.waiting(), 0);
    }

    #[test]
    fn a_window_without_messages_is_committable_at_once_and_later_offsets_win() {
        let mut l = Ledger::new();
        let (a, b) = (l.open(), l.open());
        l.closed(a, 3, Some(10));
        l.closed(b, 3, Some(20));
        assert_eq!(l.ready(), BTreeMap::from([(3, 20)]));
        // A window that read nothing has no offset to commit.
        let c = l.open();
        l.closed(c, 3, None);
        assert_eq!(l.waiting(), 0);
    }

    #[test]
    fn a_failed_delivery_stops_every_commit_after_it() {
        let mut l = Ledger::new();
        let (a, b) = (l.open(), l.open());
        l.sent(a);
        l.sent(b);
        l.closed(a, 0, Some(5));
        l.closed(b, 1, Some(7));
        l.reported(a, Some("Broker: unknown topic".into()));
        l.reported(b, None);
        assert!(l.ready().is_empty());
        assert_eq!(l.failures(), (1, Some("Broker: unknown topic")));
        assert_eq!(l.waiting(), 2);
    }
}
