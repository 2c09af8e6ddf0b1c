//! Every path the agent serves, in one table: routing, the index page, the 404 hint and the
//! endpoint list of `--help` are all made from it, so they cannot disagree.

use crate::tables::schema::TableKind;

/// What a path does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// The plain-text index (for `curl`), or the live page for a browser.
    Index,
    /// Buffered rows, or history with `start`.
    Table(TableKind),
    /// Live rows over WebSocket or chunked HTTP.
    Stream(TableKind),
    /// Joules per node or pod over a window.
    Energy(TableKind),
    /// The data problems found over a window.
    Quality,
    /// Marks of runs: listed (GET) or stamped (POST).
    Marks,
    /// The phases of a run.
    Phases,
    /// A file of the live page (its chart library), by path.
    PageFile,
    Livez,
    Readyz,
    AgentMetrics,
}

impl Handler {
    /// Buffered rows or history (`/nodes`, `/download`, `/pods`).
    pub fn is_table(&self) -> bool {
        matches!(self, Handler::Table(_))
    }

    /// Live rows (`/metrics`, ...): the only paths that take a WebSocket upgrade.
    pub fn is_stream(&self) -> bool {
        matches!(self, Handler::Stream(_))
    }
}

/// One path and how the index describes it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub path: &'static str,
    pub handler: Handler,
    /// One line for the index: what it gives and its parameters.
    pub usage: &'static str,
}

pub const ROUTES: &[Route] = &[
    Route {
        path: "/nodes",
        handler: Handler::Table(TableKind::Nodes),
        usage: "node rows, buffered (?size=N&since=T) or history (?start=T1&end=T2&step=S)",
    },
    Route {
        path: "/download",
        handler: Handler::Table(TableKind::Nodes),
        usage: "same as /nodes",
    },
    Route {
        path: "/pods",
        handler: Handler::Table(TableKind::Pods),
        usage: "pod rows of the namespace, buffered or history, parameters as /nodes",
    },
    Route {
        path: "/metrics",
        handler: Handler::Stream(TableKind::Nodes),
        usage: "live node rows, WebSocket or chunked HTTP (?size=N&since=T)",
    },
    Route {
        path: "/metrics/nodes",
        handler: Handler::Stream(TableKind::Nodes),
        usage: "same as /metrics",
    },
    Route {
        path: "/metrics/pods",
        handler: Handler::Stream(TableKind::Pods),
        usage: "live pod rows, WebSocket or chunked HTTP (?size=N&since=T)",
    },
    Route {
        path: "/energy",
        handler: Handler::Energy(TableKind::Nodes),
        usage: "joules and CPU seconds per node (?start=T1&end=T2)",
    },
    Route {
        path: "/energy/nodes",
        handler: Handler::Energy(TableKind::Nodes),
        usage: "same as /energy",
    },
    Route {
        path: "/energy/pods",
        handler: Handler::Energy(TableKind::Pods),
        usage: "joules and CPU seconds per pod of the namespace (?start=T1&end=T2)",
    },
    Route {
        path: "/quality",
        handler: Handler::Quality,
        usage: "data problems of the sources, one row per finding (?start=T1&end=T2; default the last 15 minutes)",
    },
    Route {
        path: "/marks",
        handler: Handler::Marks,
        usage: "marks of runs (?run=R&start=T1&end=T2); POST ?run=R&name=N stamps one now (loopback only)",
    },
    Route {
        path: "/phases",
        handler: Handler::Phases,
        usage: "the phases of a run, from mark to mark (?run=R)",
    },
    Route {
        path: "/livez",
        handler: Handler::Livez,
        usage: "200 while the process serves",
    },
    Route {
        path: "/readyz",
        handler: Handler::Readyz,
        usage: "200 if the last cycle succeeded within 3 intervals, else 503 and why",
    },
    Route {
        path: "/agent/metrics",
        handler: Handler::AgentMetrics,
        usage: "the agent's own figures (Prometheus text format)",
    },
    Route {
        path: "/",
        handler: Handler::Index,
        usage: "this index; in a browser, the live page",
    },
    Route {
        path: "/page/",
        handler: Handler::PageFile,
        usage: "the live page's chart library (versioned paths, cached)",
    },
];

/// The route serving `path`: exactly, or by prefix for a route ending in `/` other than `/`.
pub fn find(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path).or_else(|| {
        ROUTES
            .iter()
            .find(|r| r.path.len() > 1 && r.path.ends_with('/') && path.starts_with(r.path))
    })
}

/// The paths whose handler passes `test`, in table order: for messages that name paths.
pub fn paths_of(test: impl Fn(&Handler) -> bool) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|r| test(&r.handler))
        .map(|r| r.path)
        .collect()
}

/// The plain-text index served on `/`.
pub fn index() -> String {
    let mut text = String::from("prometheus-agent: per-node and per-pod measurements as CSV\n\n");
    for route in ROUTES {
        text.push_str(&format!("GET {:<16} {}\n", route.path, route.usage));
    }
    text.push_str(
        "\nT: RFC 3339 (2026-01-31T12:00:05Z) or Unix seconds; since: rows collected and observed after T;\n\
         S: a duration (15s, 1m) or seconds, default UPDATE_INTERVAL (start then moves to the live grid);\n\
         header=0 on any table, history, stream or energy path leaves out the header line (for appending);\n\
         problems=1 on table, history and stream paths ends every row in the data problems of its sources;\n\
         run=R (and phase=N) stands for start and end on history, energy and quality paths.\n",
    );
    text
}

/// The endpoint list of `--help`.
pub fn help() -> String {
    let paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
    format!(
        "\nEndpoints (GET; POST on /marks; see / for parameters):\n  {}\n",
        paths.join(" ")
    )
}

/// The one-line body of a 404.
pub fn not_found(path: &str) -> String {
    let paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
    let shown: String = path.chars().take(100).collect();
    format!("not found: {shown:?}; endpoints: {}", paths.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_feeds_index_help_and_404() {
        let index = index();
        let help = help();
        let missing = not_found("/nope");
        for route in ROUTES {
            assert!(index.contains(&format!("GET {} ", route.path)), "{index}");
            assert!(help.contains(route.path), "{help}");
            assert!(missing.contains(route.path), "{missing}");
            assert_eq!(find(route.path).map(|r| r.path), Some(route.path));
        }
        assert!(find("/nodes/").is_none());
        assert_eq!(
            find("/page/uPlot.js").map(|r| r.handler),
            Some(Handler::PageFile)
        );
        assert!(!missing.contains('\n'));
        assert_eq!(
            find("/energy/pods").map(|r| r.handler),
            Some(Handler::Energy(TableKind::Pods))
        );
        assert_eq!(
            paths_of(Handler::is_stream),
            ["/metrics", "/metrics/nodes", "/metrics/pods"]
        );
        assert_eq!(
            paths_of(Handler::is_table),
            ["/nodes", "/download", "/pods"]
        );
    }
}
