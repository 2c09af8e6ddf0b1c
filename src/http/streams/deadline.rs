//! A writer that fails once the current message is past its deadline, so a client whose
//! window opens a few bytes at a time cannot hold a stream thread indefinitely.

use std::io::Write;
use std::time::{Duration, Instant};

/// A message that cannot be written completely within this long marks the client as too slow
/// (a blocked write is retried while it makes progress, each try bounded by the socket's
/// send timeout).
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(10);

pub struct Deadline<W> {
    inner: W,
    until: Instant,
}

impl<W> Deadline<W> {
    pub fn new(inner: W) -> Self {
        Deadline {
            inner,
            until: Instant::now() + MESSAGE_DEADLINE,
        }
    }

    /// Starts the clock for the next message.
    pub fn arm(&mut self) {
        self.until = Instant::now() + MESSAGE_DEADLINE;
    }

    fn check(&self) -> std::io::Result<()> {
        if Instant::now() > self.until {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client accepts no data",
            ));
        }
        Ok(())
    }
}

impl<W: Write> Write for Deadline<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

impl<R: std::io::Read> std::io::Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}
