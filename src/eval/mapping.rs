//! Mapping node addresses to node names, asked only for addresses seen for the first time
//! (docs/design.md, "Identity").

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::prometheus::{Eval, QueryError, QuerySource};
use crate::tables::identity::{self, NodeNames};
use crate::time::Millis;

/// Asks for the node names of the addresses among `node_labels` seen for the first time, at
/// time `at`, and caches them. The lock is not held while Prometheus answers.
pub fn map_addresses<'a>(
    source: &dyn QuerySource,
    names: &Mutex<NodeNames>,
    node_labels: impl IntoIterator<Item = &'a str>,
    at: Millis,
) -> Vec<QueryError> {
    let unknown: Vec<IpAddr> = {
        let names = names.lock().unwrap_or_else(|p| p.into_inner());
        names.unknown(node_labels, Instant::now())
    };
    let mut errors = Vec::new();
    for batch in unknown.chunks(identity::LOOKUP_BATCH) {
        let mut found = Vec::new();
        let mut failed = false;
        for query in identity::mapping_queries(batch) {
            let answer = source.query(&query, Eval::At(at), &mut |series| {
                found.extend(identity::mapping_from(series.labels))
            });
            if let Err(e) = answer {
                failed = true;
                errors.push(e);
            }
        }
        // After a failed lookup the addresses are asked for again next time.
        let asked = if failed { &[][..] } else { batch };
        let mut names = names.lock().unwrap_or_else(|p| p.into_inner());
        names.learn(asked, found, Instant::now());
    }
    errors
}
