//! What the command line prints. Output to a reader that went away (`check | head -1`) ends
//! quietly instead of panicking, in every subcommand.

use std::io::Write;

/// Writes `text` to standard output; false when the reader has gone (the rest is dropped).
pub fn print(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprintln!("prometheus-agent: cannot write the output: {e}");
            false
        }
    }
}
