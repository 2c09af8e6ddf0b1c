//! The documents the code cites: every `README, "Section"` and `docs/….md, "Section"` in a
//! comment names a heading that exists, and every repository path a document names in
//! backquotes exists, so neither drifts from the other unnoticed.

use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (recursively) with one of `extensions`.
fn files(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, extensions, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e))
        {
            out.push(path);
        }
    }
}

/// The headings of a Markdown document, without their `#`s or a leading number (`10. `).
fn headings(document: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(document)).expect(document);
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            let heading = l.trim_start_matches('#').trim();
            let unnumbered = heading.trim_start_matches(|c: char| c.is_ascii_digit());
            match unnumbered.strip_prefix(". ") {
                Some(rest) if unnumbered.len() < heading.len() => rest.to_string(),
                _ => heading.to_string(),
            }
        })
        .collect()
}

#[test]
fn every_cited_section_exists() {
    let mut sources = Vec::new();
    for dir in ["src", "tests", "examples", "bench", "scripts"] {
        files(&repo().join(dir), &["rs", "py", "sh"], &mut sources);
    }
    let mut cited = 0;
    for source in sources.iter().filter(|s| !s.ends_with("tests/docs.rs")) {
        let text = std::fs::read_to_string(source).unwrap_or_default();
        for (document, marker) in [
            ("README.md", "README, \""),
            ("docs/design.md", "docs/design.md, \""),
            ("docs/engines.md", "docs/engines.md, \""),
            ("docs/architecture.md", "docs/architecture.md, \""),
        ] {
            for part in text.split(marker).skip(1) {
                // A citation may wrap onto the next comment line.
                let section: Vec<&str> = part
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter(|w| !w.starts_with("//") && *w != "#")
                    .collect();
                let section = section.join(" ");
                cited += 1;
                assert!(
                    headings(document).contains(&section),
                    "{} cites {document}, \"{section}\", which has no such heading",
                    source.display()
                );
            }
        }
    }
    assert!(cited > 10, "only {cited} citations found");
}

#[test]
fn every_path_a_document_names_exists() {
    for document in [
        "README.md",
        "docs/design.md",
        "docs/architecture.md",
        "bench/README.md",
    ] {
        let text = std::fs::read_to_string(repo().join(document)).expect(document);
        for quoted in text.split('`').skip(1).step_by(2) {
            let looks_like_a_path = ["src/", "tests/", "docs/", "bench/", "scripts/", "deploy/"]
                .iter()
                .any(|p| quoted.starts_with(p))
                && !quoted.contains([' ', '*', '<', '…']);
            if looks_like_a_path {
                let path = quoted.split(['#', ':']).next().unwrap_or(quoted);
                assert!(
                    repo().join(path).exists(),
                    "{document} names `{quoted}`, which does not exist"
                );
            }
        }
    }
}
