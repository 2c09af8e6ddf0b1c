//! A bound on work of one kind running at once: stream clients (`MAX_STREAMS`), and history,
//! energy and quality requests, which make Prometheus work (`MAX_CONCURRENT`). Beyond the
//! bound a request gets 503 rather than a queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// History, energy and quality requests served at once; more get 503.
pub const MAX_CONCURRENT: usize = 2;

/// At most `max` holders at once.
pub struct Slots {
    max: usize,
    held: AtomicUsize,
    taken_total: AtomicU64,
}

/// One place, held until dropped.
pub struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            held: AtomicUsize::new(0),
            taken_total: AtomicU64::new(0),
        })
    }

    /// A place, or `None` when all `max` are held.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| {
            self.taken_total.fetch_add(1, Ordering::SeqCst);
            Slot(Arc::clone(self))
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Places held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Places ever taken.
    pub fn taken_total(&self) -> u64 {
        self.taken_total.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_returned() {
        let slots = Slots::new(2);
        let a = slots.try_take().unwrap();
        let _b = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        assert_eq!(slots.held(), 2);
        drop(a);
        assert_eq!(slots.held(), 1);
        assert!(slots.try_take().is_some());
        assert_eq!(slots.taken_total(), 3);
        assert!(Slots::new(0).try_take().is_none());
    }
}
