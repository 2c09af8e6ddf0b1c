//! A stream as chunked HTTP, for `curl -N`: one chunk per line. The head is written by hand
//! because each line must leave as soon as it is ready, flushed, and tiny_http's responses
//! buffer their body.

use std::io::Write;

use tiny_http::Request;

use super::deadline::Deadline;
use super::feed::{Exit, Feed, write_failure};
use crate::buffer::Ended;

const HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/csv; charset=utf-8\r\n\
                    Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
                    Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

/// Runs a chunked HTTP stream until the client leaves, falls behind, or the agent stops.
pub fn serve(request: Request, feed: Feed<'_>) -> Exit {
    let head_only = request.method() == &tiny_http::Method::Head;
    let mut out = Deadline::new(request.into_writer());
    let mut write = |bytes: &[u8]| -> Result<(), Exit> {
        out.arm();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| write_failure(&e))
    };
    if let Err(exit) = write(HEAD.as_bytes()) {
        return exit;
    }
    if head_only {
        return Exit::Gone;
    }
    let exit = feed.pump(&mut |line| match line {
        Some(line) => write(format!("{:x}\r\n{line}\r\n", line.len()).as_bytes()),
        // HTTP has no ping; an idle stream is only checked by the next row.
        None => Ok(()),
    });
    // After a failed resume the final chunk is withheld: the client sees an incomplete
    // transfer, not a complete file with a gap.
    if exit == Exit::Ended(Ended::Shutdown) {
        // The terminating chunk: curl ends cleanly with the whole CSV written.
        let _ = write(b"0\r\n\r\n");
    }
    exit
}
