//! This process's turn at a shared store: its threads line up in arrival order, one at a time
//! at the store, each waiting at most until its own deadline.
//!
//! The store's own lock (`state_dir`'s `flock`, Redis's lease) serves no one in order: under a
//! flood from many threads, a waiter could lose every race until its deadline and be refused.
//! So the threads of a process take their turn here first, and only one of them competes with
//! other processes. A plain mutex would not do: it is not fair either. Must never hold its
//! lock while a turn is used, nor leave a waiter that gave up in the line.

use std::collections::VecDeque;
use std::time::Instant;

use crate::fork::ForkSafe;
use crate::sync::Condvar;

struct Line {
    /// Someone is at the store.
    taken: bool,
    /// Tickets waiting, in arrival order.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

/// A line of threads (the process has one, [`PROCESS`]).
pub(crate) struct TurnLine {
    line: ForkSafe<Line>,
    moved: Condvar,
}

/// The process's line.
static PROCESS: TurnLine = TurnLine::new(Some(reset_in_child));

/// A turn at the store; the next in line gets it on drop (also on a panic).
pub(crate) struct Turn {
    line: &'static TurnLine,
}

/// Waits for this process's turn, in arrival order; `None` when `deadline` came first.
pub(crate) fn take(deadline: Instant) -> Option<Turn> {
    PROCESS.take(deadline)
}

impl TurnLine {
    const fn new(child_reset: Option<fn()>) -> TurnLine {
        TurnLine {
            line: ForkSafe::with_child_reset(
                Line {
                    taken: false,
                    waiting: VecDeque::new(),
                    next_ticket: 0,
                },
                child_reset,
            ),
            moved: Condvar::new(),
        }
    }

    fn take(&'static self, deadline: Instant) -> Option<Turn> {
        let mut line = self.line.lock();
        let ticket = line.next_ticket;
        line.next_ticket += 1;
        line.waiting.push_back(ticket);
        loop {
            if !line.taken && line.waiting.front() == Some(&ticket) {
                line.waiting.pop_front();
                line.taken = true;
                return Some(Turn { line: self });
            }
            if self.moved.wait_until(&mut line, deadline) {
                line.waiting.retain(|t| *t != ticket);
                // The next in line may have been waiting behind this ticket.
                self.moved.notify_all();
                return None;
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.line.line.lock().taken = false;
        self.line.moved.notify_all();
    }
}

/// A forked child has none of its parent's threads: no one is at the store or in line.
fn reset_in_child() {
    let mut line = PROCESS.line.lock();
    line.taken = false;
    line.waiting.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn turns_go_in_arrival_order_and_a_waiter_that_gives_up_leaves_the_line() {
        let line: &'static TurnLine = Box::leak(Box::new(TurnLine::new(None)));
        let take = |deadline| line.take(deadline);
        let first = take(Instant::now() + Duration::from_secs(5)).unwrap();
        // One that gives up while the turn is taken.
        assert!(take(Instant::now() + Duration::from_millis(20)).is_none());
        let order = Arc::new(Mutex::new(Vec::new()));
        let waiters: Vec<_> = (0..4)
            .map(|n| {
                // Line them up one after another.
                while line.line.lock().waiting.len() < n {
                    std::thread::yield_now();
                }
                let order = order.clone();
                let t = std::thread::spawn(move || {
                    let turn = take(Instant::now() + Duration::from_secs(30)).unwrap();
                    order.lock().unwrap().push(n);
                    drop(turn);
                });
                while line.line.lock().waiting.len() < n + 1 {
                    std::thread::yield_now();
                }
                t
            })
            .collect();
        drop(first);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
        assert!(line.line.lock().waiting.is_empty());
    }
}
