//! A history export as an HTTP body: the CSV header (unless `header=0`), then each chunk as it
//! is answered. A failure after the first chunk is a read error, so the response ends
//! without its final chunk and the client sees an incomplete transfer rather than a short
//! file (docs/design.md, "History").

use std::io::Read;

use log::warn;

use super::slots::Slot;
use crate::eval::history::Export;
use crate::prometheus::QueryError;
use crate::tables::schema::{Measure, header_with};

pub struct ExportReader<'a> {
    export: Export<'a>,
    buffer: Vec<u8>,
    at: usize,
    /// Keeps the export's place among the concurrent requests.
    _slot: Slot,
}

impl<'a> ExportReader<'a> {
    /// Starts with the header and the first chunk already in hand, so that a Prometheus that
    /// cannot answer at all is reported as an error status before anything is sent.
    pub fn start(
        mut export: Export<'a>,
        with_header: bool,
        with_problems: bool,
        slot: Slot,
    ) -> Result<Self, QueryError> {
        let mut buffer = Vec::new();
        if with_header {
            let header = header_with(export.kind(), Measure::Live, with_problems);
            buffer.extend_from_slice(header.as_bytes());
        }
        if let Some(first) = export.next_chunk() {
            for line in first? {
                buffer.extend_from_slice(line.as_bytes());
            }
        }
        Ok(ExportReader {
            export,
            buffer,
            at: 0,
            _slot: slot,
        })
    }
}

impl Read for ExportReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buffer.len() {
            self.buffer.clear();
            self.at = 0;
            match self.export.next_chunk() {
                None => return Ok(0),
                Some(Ok(lines)) => {
                    for line in lines {
                        self.buffer.extend_from_slice(line.as_bytes());
                    }
                }
                Some(Err(e)) => {
                    warn!(
                        "history export of {} ended early: {e}",
                        self.export.kind().name()
                    );
                    return Err(std::io::Error::other(e.to_string()));
                }
            }
        }
        let n = out.len().min(self.buffer.len() - self.at);
        out[..n].copy_from_slice(&self.buffer[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
