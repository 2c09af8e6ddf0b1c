//! The live page for browsers (README, "The live page"): one HTML file and the vendored chart library,
//! compiled into the binary. The page itself only uses the public API (streams, tables,
//! energy, readiness) through relative URLs, so it works behind any port-forward.

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
