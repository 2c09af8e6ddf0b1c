//! A bounded pool of responder threads. Starting a thread per request costs more than the
//! rest of a small download on a keep-alive connection; idle responders wait for the next
//! request instead. Work goes to the responder that became idle last, so under a light,
//! steady load one responder does it all and the others exit after `IDLE_EXIT`: the thread
//! count returns to its baseline.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long an idle responder waits for work before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(5);

/// Responders that call one handler on each job of type `T`.
pub struct Responders<T> {
    max: usize,
    idle_exit: Duration,
    handler: fn(T),
    state: Mutex<State<T>>,
}

struct State<T> {
    /// Idle responders, the most recently idle last: (id, where to send it a job).
    idle: Vec<(u64, Sender<T>)>,
    /// Responders alive.
    total: usize,
    next_id: u64,
}

impl<T: Send + 'static> Responders<T> {
    /// At most `max` responders at once, each calling `handler`.
    pub fn new(max: usize, handler: fn(T)) -> Arc<Responders<T>> {
        Self::with_idle_exit(max, IDLE_EXIT, handler)
    }

    fn with_idle_exit(max: usize, idle_exit: Duration, handler: fn(T)) -> Arc<Responders<T>> {
        Arc::new(Responders {
            max,
            idle_exit,
            handler,
            state: Mutex::new(State {
                idle: Vec::new(),
                total: 0,
                next_id: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on an idle responder or a new one; gives it back if `max` are busy or no
    /// thread can be started.
    pub fn run(self: &Arc<Self>, job: T) -> Result<(), T> {
        let mut state = self.lock();
        // Sent under the lock: a responder that finds itself taken off `idle` has its job.
        let job = match state.idle.pop() {
            Some((_, responder)) => match responder.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        if state.total >= self.max {
            return Err(job);
        }
        state.total += 1;
        let id = state.next_id;
        state.next_id += 1;
        drop(state);
        // The job goes back to the caller if the thread cannot start.
        let slot = Arc::new(Mutex::new(Some(job)));
        let first = Arc::clone(&slot);
        let pool = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("http-respond".into())
            .spawn(move || {
                let job = first.lock().ok().and_then(|mut j| j.take());
                pool.work_loop(id, job);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a responder thread: {e}");
            self.lock().total -= 1;
            let job = slot.lock().ok().and_then(|mut j| j.take());
            return job.map_or(Ok(()), Err);
        }
        Ok(())
    }

    fn work_loop(&self, id: u64, mut job: Option<T>) {
        let (sender, jobs) = mpsc::channel();
        loop {
            if let Some(job) = job.take() {
                (self.handler)(job);
            }
            self.lock().idle.push((id, sender.clone()));
            job = match jobs.recv_timeout(self.idle_exit) {
                Ok(next) => Some(next),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let mut state = self.lock();
                    match state.idle.iter().position(|(i, _)| *i == id) {
                        Some(at) => {
                            state.idle.remove(at);
                            state.total -= 1;
                            return;
                        }
                        // Taken off `idle` just now: the job was sent under the lock.
                        None => jobs.try_recv().ok(),
                    }
                }
            };
        }
    }

    /// Responders alive (busy or idle).
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.lock().total
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.lock().idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::Receiver;
    use std::time::Instant;

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
        // Once both are idle, the next jobs run on them, no new thread.
        for _ in 0..10 {
            while pool.idle() < 2 {
                std::thread::yield_now();
            }
            assert!(pool.run((None, done.clone())).is_ok());
            let ran_on = finished.recv().unwrap();
            assert!(ran_on == first || ran_on == second);
        }
        assert_eq!(pool.threads(), 2);
    }

    #[test]
    fn a_trickle_of_jobs_keeps_one_responder() {
        let pool = Responders::with_idle_exit(8, Duration::from_millis(200), handle);
        let (done, finished) = mpsc::channel();
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        for _ in 0..8 {
            assert!(pool.run((Some(Arc::clone(&hold)), done.clone())).is_ok());
        }
        for _ in 0..8 {
            release.send(()).unwrap();
        }
        for _ in 0..8 {
            finished.recv().unwrap();
        }
        // A job every 20 ms, ten times more often than the idle exit.
        let deadline = Instant::now() + Duration::from_secs(3);
        while pool.threads() > 1 {
            assert!(Instant::now() < deadline, "{} responders", pool.threads());
            if pool.run((None, done.clone())).is_ok() {
                finished.recv().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
