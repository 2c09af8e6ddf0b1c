//! A bounded pool of responder threads. Starting a thread per request costs more than the
//! rest of a small download on a keep-alive connection; idle responders wait for the next
//! request instead, and exit after a while so that the thread count returns to its baseline.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long an idle responder waits for work before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(5);

/// Responders that call one handler on each job of type `T`.
pub struct Responders<T> {
    max: usize,
    handler: fn(T),
    state: Mutex<State<T>>,
    work: Condvar,
}

struct State<T> {
    /// Jobs handed to idle responders, not yet picked up.
    queue: VecDeque<T>,
    /// Responders waiting for work.
    idle: usize,
    /// Responders alive.
    total: usize,
}

impl<T: Send + 'static> Responders<T> {
    /// At most `max` responders at once, each calling `handler`.
    pub fn new(max: usize, handler: fn(T)) -> Arc<Responders<T>> {
        Arc::new(Responders {
            max,
            handler,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                total: 0,
            }),
            work: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on an idle responder or a new one; gives it back if `max` are busy or no
    /// thread can be started.
    pub fn run(self: &Arc<Self>, job: T) -> Result<(), T> {
        let mut state = self.lock();
        if state.idle > state.queue.len() {
            state.queue.push_back(job);
            self.work.notify_one();
            return Ok(());
        }
        if state.total >= self.max {
            return Err(job);
        }
        state.total += 1;
        drop(state);
        // The job goes back to the caller if the thread cannot start.
        let slot = Arc::new(Mutex::new(Some(job)));
        let first = Arc::clone(&slot);
        let pool = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("http-respond".into())
            .spawn(move || {
                let job = first.lock().ok().and_then(|mut j| j.take());
                pool.work_loop(job);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a responder thread: {e}");
            self.lock().total -= 1;
            let job = slot.lock().ok().and_then(|mut j| j.take());
            return job.map_or(Ok(()), Err);
        }
        Ok(())
    }

    fn work_loop(&self, mut job: Option<T>) {
        loop {
            if let Some(job) = job.take() {
                (self.handler)(job);
            }
            let mut state = self.lock();
            state.idle += 1;
            loop {
                if let Some(next) = state.queue.pop_front() {
                    state.idle -= 1;
                    job = Some(next);
                    break;
                }
                let (guard, wait) = self
                    .work
                    .wait_timeout(state, IDLE_EXIT)
                    .unwrap_or_else(|e| e.into_inner());
                state = guard;
                if wait.timed_out() && state.queue.is_empty() {
                    state.idle -= 1;
                    state.total -= 1;
                    return;
                }
            }
        }
    }

    /// Responders alive (busy or idle).
    pub fn threads(&self) -> usize {
        self.lock().total
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.lock().idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{self, Receiver, Sender};

    /// A job: waits for its release (if any), then reports the thread it ran on.
    type Job = (
        Option<Arc<Mutex<Receiver<()>>>>,
        Sender<std::thread::ThreadId>,
    );

    fn handle((hold, done): Job) {
        if let Some(hold) = hold {
            let _ = hold.lock().map(|h| h.recv());
        }
        let _ = done.send(std::thread::current().id());
    }

    #[test]
    fn reuses_idle_responders_and_refuses_beyond_the_limit() {
        let pool = Responders::new(2, handle);
        let (done, finished) = mpsc::channel();
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        for _ in 0..2 {
            assert!(pool.run((Some(Arc::clone(&hold)), done.clone())).is_ok());
        }
        assert_eq!(pool.threads(), 2);
        assert!(
            pool.run((None, done.clone())).is_err(),
            "a third job while two run"
        );
        release.send(()).unwrap();
        release.send(()).unwrap();
        let first = finished.recv().unwrap();
        let second = finished.recv().unwrap();
        while pool.idle() < 2 {
            std::thread::yield_now();
        }
        // Both responders are idle now: the next jobs run on them, no new thread.
        for _ in 0..10 {
            assert!(pool.run((None, done.clone())).is_ok());
            let ran_on = finished.recv().unwrap();
            assert!(ran_on == first || ran_on == second);
        }
        assert_eq!(pool.threads(), 2);
    }
}
