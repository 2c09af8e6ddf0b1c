//! The live page for browsers (README, "The live page"): one HTML file and the vendored chart
//! library, compiled into the binary. The page itself only uses the public API (streams,
//! tables, energy, readiness) through relative URLs, so it works behind any port-forward; a
//! unit test checks every path and column it names against the route table and the schema.

/// A file of the page: what to send for a GET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub body: &'static str,
}

/// The page, at `/` for browsers. Not cached: a new agent version brings a new page.
pub const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    cache_control: "no-cache",
    body: include_str!("page/index.html"),
};

/// Library files carry their version in the path, so browsers may keep them for good.
const LIBRARY: [(&str, Asset); 2] = [
    (
        "/page/uPlot-1.6.32.iife.min.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            cache_control: "public, max-age=31536000, immutable",
            body: include_str!("page/vendor/uPlot.iife.min.js"),
        },
    ),
    (
        "/page/uPlot-1.6.32.min.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            cache_control: "public, max-age=31536000, immutable",
            body: include_str!("page/vendor/uPlot.min.css"),
        },
    ),
];

/// The file served at `path` (without query): the page for `/`, a library file under `/page/`.
pub fn asset(path: &str) -> Option<Asset> {
    if path == "/" {
        return Some(INDEX);
    }
    LIBRARY
        .iter()
        .find(|(at, _)| *at == path)
        .map(|(_, asset)| *asset)
}

/// Whether an `Accept` header asks for HTML explicitly, as browsers do
/// (`text/html,application/xhtml+xml,...`). `*/*` (curl, scripts) keeps the text index.
pub fn wants_html(accept: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim();
        let html = media.eq_ignore_ascii_case("text/html")
            || media.eq_ignore_ascii_case("application/xhtml+xml");
        // `q=0` means "not acceptable".
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        html && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_html_and_tools_do_not() {
        // Chromium's and Firefox's navigation headers.
        assert!(wants_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"
        ));
        assert!(wants_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(wants_html("TEXT/HTML"));
        for accept in [
            "",
            "*/*",
            "text/plain",
            "text/*",
            "text/csv",
            "text/html;q=0",
            "text/htmlx",
        ] {
            assert!(!wants_html(accept), "{accept:?}");
        }
    }

    /// The string literals of the page's script.
    fn literals(page: &str) -> Vec<&str> {
        page.split('"').skip(1).step_by(2).collect()
    }

    #[test]
    fn every_path_the_page_asks_for_is_a_route() {
        let prefixes = [
            "metrics", "energy", "nodes", "pods", "download", "readyz", "livez", "quality",
            "marks", "phases",
        ];
        let paths: Vec<&str> = literals(INDEX.body)
            .into_iter()
            .filter(|l| {
                prefixes.iter().any(|p| {
                    l.strip_prefix(p)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
                })
            })
            .map(|l| l.trim_end_matches('?').trim_end_matches('/'))
            .filter(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '/'))
            .collect();
        for used in [
            "metrics/nodes",
            "readyz",
            "quality",
            "marks",
            "phases",
            "energy",
        ] {
            assert!(paths.contains(&used), "{used} not found in {paths:?}");
        }
        for path in paths {
            let route = crate::http::routes::find(&format!("/{path}"));
            assert!(
                route.is_some(),
                "the page asks for {path:?}, which no route serves"
            );
        }
    }

    #[test]
    fn every_column_the_page_plots_is_in_the_schema() {
        use crate::tables::schema::{Key, Measure, TableKind, key_columns, value_columns};
        let known = |measure| -> Vec<&str> {
            TableKind::ALL
                .iter()
                .flat_map(|kind| {
                    let keys = key_columns(*kind, measure).iter().map(|k: &Key| k.name());
                    keys.chain(value_columns(*kind, measure).iter().copied())
                })
                .collect()
        };
        let live = known(Measure::Live);
        let energy = known(Measure::Energy);
        let page = INDEX.body;
        let between = |marker: &str, end: &str| -> Vec<&str> {
            page.split(marker)
                .skip(1)
                .flat_map(|part| literals(&part[..part.find(end).unwrap_or(part.len())]))
                .collect()
        };
        let mut plotted = between("column: ", ",");
        plotted.extend(between("columns: [", "]"));
        assert!(plotted.len() >= 9, "{plotted:?}");
        for column in plotted {
            assert!(
                live.contains(&column),
                "the page plots {column:?}, not a live column"
            );
        }
        // ENERGY_COLUMNS holds [column, label] pairs.
        let pairs = between("ENERGY_COLUMNS = {", "};");
        assert!(pairs.len() >= 20, "{pairs:?}");
        for column in pairs.into_iter().step_by(2) {
            assert!(
                energy.contains(&column),
                "the page shows {column:?}, not an energy column"
            );
        }
    }

    /// The string literals of the page between `marker` and the next `end`.
    fn literals_after(marker: &str, end: &str) -> Vec<&'static str> {
        let page: &'static str = INDEX.body;
        page.split(marker)
            .skip(1)
            .flat_map(|part| literals(&part[..part.find(end).unwrap_or(part.len())]))
            .collect()
    }

    #[test]
    fn the_page_reads_quality_and_marks_by_their_headers() {
        let header =
            |csv: &'static str| -> Vec<&'static str> { csv.trim_end().split(',').collect() };
        assert_eq!(
            literals_after("QUALITY_COLUMNS = [", "]"),
            header(crate::eval::quality::HEADER)
        );
        assert_eq!(
            literals_after("MARK_COLUMNS = [", "]"),
            header(crate::marks::HEADER)
        );
    }

    #[test]
    fn assets_are_served_by_path() {
        let index = asset("/").expect("index");
        assert!(index.body.starts_with("<!doctype html>"));
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        // Every library file the page refers to (relatively) exists, and nothing else is
        // loaded from anywhere: no absolute or remote URL in the page.
        for (path, asset) in LIBRARY {
            assert!(
                index.body.contains(&format!("\"{}\"", &path[1..])),
                "{path} not used by the page"
            );
            assert!(!asset.body.is_empty());
        }
        for remote in ["http://", "https://", "src=\"/", "href=\"/"] {
            assert!(!index.body.contains(remote), "page refers to {remote}");
        }
        assert!(
            asset("/page/uPlot-1.6.32.min.css")
                .is_some_and(|a| a.content_type.starts_with("text/css"))
        );
        assert_eq!(asset("/page/"), None);
        assert_eq!(asset("/page/../Cargo.toml"), None);
        assert_eq!(asset("/index.html"), None);
    }
}
