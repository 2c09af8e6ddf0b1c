//! The README's commands, run as written against `scripts/demo`: every block marked
//! `<!-- runs against the demo -->` (shell and Python), in order, in one working directory,
//! with the demo's port in place of 8000. Then what they produced is checked: captures that
//! end in whole lines, resumed and completed captures with every cycle exactly once, and joules
//! per phase for every pod. The demo's own printed commands are run too.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::prometheus::{TempDir, free_port};
use support::table::{Table, parse_rfc3339_ms};

/// The demo's update interval (scripts/demo's default).
const INTERVAL_MS: i64 = 2_000;
/// Node and pod rows per cycle of the demo's cluster.
const NODES: usize = 3;
const PODS: usize = 4;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A runnable block of the README: its language and its text.
struct Block {
    language: String,
    code: String,
}

fn marked_blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    readme
        .split("<!-- runs against the demo -->")
        .skip(1)
        .map(|part| {
            let part = part.trim_start();
            let fence = part
                .strip_prefix("```")
                .expect("a code block after the marker");
            let (language, rest) = fence.split_once('\n').expect("a fenced block");
            let code = &rest[..rest.find("\n```").expect("the end of the block")];
            Block {
                language: language.trim().to_string(),
                code: code.to_string(),
            }
        })
        .collect()
}

/// `scripts/demo` on `port`, with the binaries this test run built; stopped when dropped.
struct Demo {
    child: Child,
    printed: String,
}

impl Demo {
    fn start(port: u16) -> Demo {
        let agent = PathBuf::from(env!("CARGO_BIN_EXE_prometheus-agent"));
        let bin_dir = agent.parent().expect("the target directory");
        assert!(
            bin_dir.join("examples/synthetic_exporter").exists(),
            "the demo's exporter is not built: run `cargo build --examples` first (scripts/test does)"
        );
        let mut child = Command::new(repo().join("scripts/demo"))
            .env("PORT", port.to_string())
            .env("DEMO_BIN_DIR", bin_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("cannot start scripts/demo");
        let stdout = child.stdout.take().expect("the demo's output");
        let mut printed = String::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("the demo's output");
            printed.push_str(&line);
            printed.push('\n');
            if line.starts_with("Logs:") || Instant::now() > deadline {
                break;
            }
        }
        assert!(
            printed.contains("Try:"),
            "the demo did not start:\n{printed}"
        );
        Demo { child, printed }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Runs one block in `dir`; a background job the block starts runs on until `linger` has
/// passed, then its process group is stopped.
fn run(block: &Block, port: u16, dir: &Path, linger: Duration) {
    let code = block
        .code
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"));
    let mut command = match block.language.as_str() {
        "sh" | "bash" => {
            let mut c = Command::new("bash");
            c.args(["-euo", "pipefail", "-c", &code]);
            c
        }
        "python" => {
            let mut c = Command::new("python3");
            c.args(["-c", &code]);
            c
        }
        other => panic!("a marked block in {other:?}: only sh and python run"),
    };
    let mut child = command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("cannot run the block");
    let group = format!("-{}", child.id());
    let started = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "block hangs:\n{code}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // While a background capture appends, the files it writes always end in a whole line.
    while started.elapsed() < linger {
        for file in std::fs::read_dir(dir)
            .expect("the working directory")
            .flatten()
        {
            let text = std::fs::read(file.path()).unwrap_or_default();
            assert!(
                text.is_empty() || text.ends_with(b"\n"),
                "{} ends in a half line while {code}",
                file.path().display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Background jobs the block left (a resumed capture) hold its output open: stop them.
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let output = child.wait_with_output().expect("the block's output");
    assert!(
        output.status.success(),
        "README block failed ({}):\n{code}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The captured rows by observation time.
fn cycles(table: &Table) -> BTreeMap<i64, Vec<String>> {
    let at = table.column("observation_time").expect("observation_time");
    let key = table
        .column("name")
        .or(table.column("instance"))
        .expect("a key");
    let mut cycles: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for row in &table.rows {
        let t = parse_rfc3339_ms(&row[at]).expect("an RFC 3339 time");
        cycles.entry(t).or_default().push(row[key].clone());
    }
    cycles
}

/// Every cycle from the first to the last exactly once, each with `per_cycle` rows.
fn assert_every_cycle_once(file: &Path, per_cycle: usize) {
    let text = std::fs::read_to_string(file).expect("the capture");
    assert!(
        text.ends_with('\n'),
        "{} ends in a half line",
        file.display()
    );
    let table = Table::parse(&text).expect("CSV with one header");
    let cycles = cycles(&table);
    let times: Vec<i64> = cycles.keys().copied().collect();
    assert!(times.len() >= 5, "{}: {times:?}", file.display());
    for pair in times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            INTERVAL_MS,
            "{}: a gap or a repeat in {times:?}",
            file.display()
        );
    }
    for (t, rows) in &cycles {
        assert_eq!(
            rows.len(),
            per_cycle,
            "{}: cycle {t}: {rows:?}",
            file.display()
        );
    }
}

#[test]
fn readme_commands_run_as_written_against_the_demo() {
    let port = free_port();
    let demo = Demo::start(port);
    let dir = TempDir::new("readme");
    let blocks = marked_blocks();
    assert!(blocks.len() >= 5, "{} marked blocks", blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        // The resume command runs in the background: let it catch up and follow a while.
        let linger = if block.code.contains("since=") {
            Duration::from_secs(8)
        } else {
            Duration::ZERO
        };
        run(block, port, dir.path(), linger);
        if i == 0 {
            // The first capture stopped; a few cycles pass before it is resumed.
            std::thread::sleep(Duration::from_secs(5));
        }
    }
    assert_every_cycle_once(&dir.path().join("pods-run.csv"), PODS);
    assert_every_cycle_once(&dir.path().join("nodes-run.csv"), NODES);
    // Joules per phase of the marked run: every pod in every phase, phases in order.
    let energy = std::fs::read_to_string(dir.path().join("energy-pods.csv")).expect("energy");
    let energy = Table::parse(&energy).expect("energy CSV");
    assert_eq!(energy.header[..2], ["run", "phase"], "{:?}", energy.header);
    assert_eq!(energy.rows.len(), 3 * PODS, "{:?}", energy.rows);
    let phases: Vec<&str> = energy.rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(phases[0], "baseline");
    assert_eq!(phases[PODS], "load");
    assert_eq!(phases[2 * PODS], "cool-down");
    let listed = std::fs::read_to_string(dir.path().join("phases.csv")).expect("phases");
    assert_eq!(
        Table::parse(&listed).expect("phases CSV").rows.len(),
        3,
        "{listed}"
    );
    demo_commands_run(&demo, dir.path());
    drop(demo);
}

/// The commands the demo printed, those that end by themselves: each answers, and history
/// rows fall on the live schedule.
fn demo_commands_run(demo: &Demo, dir: &Path) {
    let mut ran = 0;
    for line in demo.printed.lines().map(str::trim) {
        if !line.starts_with("curl -s ") {
            continue;
        }
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", line])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("bash");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !text.is_empty(),
            "{line}: {output:?}"
        );
        if line.contains("/nodes?start=") && !line.contains("/energy/") {
            let table = Table::parse(&text).expect("history CSV");
            let times: Vec<i64> = cycles(&table).keys().copied().collect();
            assert!(times.len() >= 10, "{line}: {times:?}");
            assert!(
                times.iter().all(|t| t % INTERVAL_MS == 0),
                "{line}: off the schedule: {times:?}"
            );
        }
        ran += 1;
    }
    assert!(ran >= 7, "{ran} commands:\n{}", demo.printed);
}
