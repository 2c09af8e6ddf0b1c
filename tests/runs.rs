//! Runs and phases against real processes (README, "Runs and phases"): marks stamped with
//! the agent's clock by clients that send no time, joules per phase equal to `/energy` over
//! each phase and to the synthetic cluster's truth, marks that survive a restart (same file)
//! and a replacement (an empty file, read back from a Prometheus or VictoriaMetrics that
//! scraped the first agent), every refusal, and concurrent marks all kept in order.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::cluster::{Cell, Convention, Exporter, NAMESPACE, Scenario, now_ms};
use support::energy::expected_pod_energy;
use support::engine::Engine;
use support::prometheus::{Agent, AgentConfig, TempDir, curl_status, free_port, wait_for};
use support::stack::Stack;
use support::table::{Table, parse_rfc3339_ms};

/// `POST` with curl, sending nothing but the path: the agent's clock stamps the mark.
fn post(agent: &Agent, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-X", "POST", "-w", "\n%{http_code}"])
        .arg(format!("{}{path}", agent.url()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// A mark stamped now: (run, name, time), checked to lie between the request's start and end.
fn mark(agent: &Agent, run: &str, name: &str) -> i64 {
    let before = now_ms();
    let (status, body) = post(agent, &format!("/marks?run={run}&name={name}"));
    let after = now_ms();
    assert_eq!(status, 200, "{body}");
    let table = Table::parse(&body).expect("the mark as CSV");
    assert_eq!(table.header, ["time", "run", "name"]);
    let row = &table.rows[0];
    assert_eq!((row[1].as_str(), row[2].as_str()), (run, name));
    let time = parse_rfc3339_ms(&row[0]).expect("an RFC 3339 time");
    assert!(
        (before..=after).contains(&time),
        "{before} <= {time} <= {after}"
    );
    time
}

fn get(agent: &Agent, path: &str) -> Table {
    let text = agent.get(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Table::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}\n{text}"))
}

fn marks_of(agent: &Agent, query: &str) -> Vec<(i64, String, String)> {
    get(agent, &format!("/marks?{query}"))
        .rows
        .iter()
        .map(|r| {
            (
                parse_rfc3339_ms(&r[0]).expect("time"),
                r[1].clone(),
                r[2].clone(),
            )
        })
        .collect()
}

#[test]
fn joules_per_phase_on_prometheus() {
    joules_per_phase(Engine::Prometheus);
}

#[test]
fn joules_per_phase_on_victoria_metrics() {
    joules_per_phase(Engine::VictoriaMetrics);
}

fn joules_per_phase(engine: Engine) {
    let stack = Stack::on(engine, Convention::B);
    let dir = TempDir::new("runs");
    let file = dir.path().join("marks.csv");
    let agent = stack.agent("1s", &[("MARKS_FILE", file.to_str().expect("path"))]);
    // Rates over the whole window once the exporter has been scraped for a while.
    let first = *stack.exporter.scrape_times().first().expect("scraped");
    wait_for(Duration::from_secs(60), || {
        (now_ms() > first + 14_000).then_some(())
    });
    let times = [
        mark(&agent, "r1", "baseline"),
        {
            std::thread::sleep(Duration::from_secs(5));
            mark(&agent, "r1", "load")
        },
        {
            std::thread::sleep(Duration::from_secs(5));
            mark(&agent, "r1", "end")
        },
    ];
    std::thread::sleep(Duration::from_secs(3));
    let phases = get(&agent, "/phases?run=r1");
    assert_eq!(phases.header, ["run", "phase", "start", "end", "seconds"]);
    let spans: Vec<(String, i64, i64)> = phases
        .rows
        .iter()
        .map(|r| {
            (
                r[1].clone(),
                parse_rfc3339_ms(&r[2]).unwrap_or(0),
                parse_rfc3339_ms(&r[3]).unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            ("baseline".into(), times[0], times[1]),
            ("load".into(), times[1], times[2])
        ]
    );
    let per_phase = get(&agent, "/energy/pods?run=r1");
    assert_eq!(per_phase.header[..2], ["run", "phase"]);
    let pods = stack.scenario.expected_pods(NAMESPACE).len();
    assert_eq!(per_phase.rows.len(), 2 * pods, "{:?}", per_phase.rows);
    for (i, (phase, start, end)) in spans.iter().enumerate() {
        // Each phase's rows are /energy with the phase's start and end, field for field.
        let query = format!(
            "/energy/pods?start={}&end={}",
            seconds(*start),
            seconds(*end)
        );
        let explicit = get(&agent, &query);
        let rows = &per_phase.rows[i * pods..(i + 1) * pods];
        assert!(
            rows.iter().all(|r| r[0] == "r1" && r[1] == *phase),
            "{rows:?}"
        );
        let stripped: Vec<Vec<String>> = rows.iter().map(|r| r[2..].to_vec()).collect();
        assert_eq!(stripped, explicit.rows, "{phase}");
        // And the cluster's truth, within 1 %.
        let truth = expected_pod_energy(&stack.scenario, NAMESPACE, (end - start) as f64 / 1000.0);
        check_truth(&explicit, &truth);
        // `phase=N` stands for the same start and end.
        let numbered = get(&agent, &format!("/energy/pods?run=r1&phase={}", i + 1));
        assert_eq!(numbered.rows, explicit.rows);
    }
    // History over a phase: the rows of the live grid within it.
    let history = get(&agent, "/nodes?run=r1&phase=load");
    let observed = history
        .column("observation_time")
        .expect("observation_time");
    assert!(!history.rows.is_empty());
    for row in &history.rows {
        let t = parse_rfc3339_ms(&row[observed]).expect("time");
        assert!(t >= times[1] && t <= times[2] && t % 1000 == 0, "{row:?}");
    }
    // The file holds the marks, one line each.
    let kept = std::fs::read_to_string(&file).expect("MARKS_FILE");
    assert_eq!(kept.lines().count(), 3, "{kept}");
}

/// Unix seconds with milliseconds, as a query parameter.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn check_truth(table: &Table, truth: &[support::cluster::Row]) {
    let name = table.column("name").expect("name");
    for want in truth {
        let row = table
            .rows
            .iter()
            .find(|r| r[name] == want.text("name"))
            .unwrap_or_else(|| panic!("no row {}", want.text("name")));
        for (column, cell) in &want.cells {
            let Cell::Num(Some(expected)) = cell else {
                continue;
            };
            let got: f64 = row[table.column(column).expect("column")]
                .parse()
                .unwrap_or(f64::NAN);
            assert!(
                (got - expected).abs() <= 0.01 * expected.abs() + 1e-9,
                "{} {column}: {got}, truth {expected}",
                want.text("name")
            );
        }
    }
}

#[test]
fn marks_outlive_the_agent_on_prometheus() {
    marks_outlive_the_agent(Engine::Prometheus);
}

#[test]
fn marks_outlive_the_agent_on_victoria_metrics() {
    marks_outlive_the_agent(Engine::VictoriaMetrics);
}

/// Marks survive a restart with the same file, and a replacement with an empty file through
/// the engine that scraped the first agent; another namespace's marks never mix in.
fn marks_outlive_the_agent(engine: Engine) {
    let exporter = Exporter::start("127.0.0.1:0", Scenario::new(Convention::A)).expect("exporter");
    let (first_port, other_port) = (free_port(), free_port());
    let agents: Vec<SocketAddr> = [first_port, other_port]
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    let server = engine.start_scraping_agents(&[exporter.addr()], &agents);
    let config = |namespace| AgentConfig {
        prometheus_url: server.url(),
        namespace,
        update_interval: "1s",
        window: "10s",
    };
    let dir = TempDir::new("marks");
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let first_file = file("first.csv");
    let mut first = Agent::start_on(
        &config(NAMESPACE),
        &[("MARKS_FILE", &first_file)],
        first_port,
    );
    let other_file = file("other.csv");
    let other = Agent::start_on(
        &config("other-team"),
        &[("MARKS_FILE", &other_file)],
        other_port,
    );
    let stamped: Vec<(i64, String, String)> = ["idle", "load", "end"]
        .iter()
        .map(|name| (mark(&first, "r1", name), "r1".to_string(), name.to_string()))
        .collect();
    mark(&other, "r1", "elsewhere");
    // A restart with the same file keeps them.
    let (status, _) = first.signal_and_wait("TERM");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    first = Agent::start_on(
        &config(NAMESPACE),
        &[("MARKS_FILE", &first_file)],
        first_port,
    );
    assert_eq!(marks_of(&first, "run=r1"), stamped);
    // The engine has scraped them, then the agent is replaced by one with an empty file.
    let query =
        r#"count(prometheus_agent_mark_timestamp_seconds{observed_namespace="energy-lab"})"#;
    wait_for(Duration::from_secs(30), || {
        let found = server
            .query_with(query, now_ms(), support::engine::NOCACHE)
            .ok()?;
        (found.first()?["value"][1] == "3").then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{} never scraped the agent's marks:\n{}",
            engine.name(),
            server.log()
        )
    });
    drop(first);
    let replaced = Agent::start_with(&config(NAMESPACE), &[("MARKS_FILE", &file("replaced.csv"))]);
    assert_eq!(
        marks_of(&replaced, ""),
        stamped,
        "marks read back from {}",
        engine.name()
    );
    assert_eq!(get(&replaced, "/phases?run=r1").rows.len(), 2);
    assert!(Path::new(&file("replaced.csv")).exists());
    drop(other);
}

#[test]
fn bad_marks_are_refused_and_concurrent_marks_all_kept_in_order() {
    let dir = TempDir::new("marks");
    let file = dir.path().join("marks.csv");
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let config = AgentConfig {
        prometheus_url: &unreachable,
        namespace: NAMESPACE,
        update_interval: "1s",
        window: "10s",
    };
    let agent = Agent::start_with(&config, &[("MARKS_FILE", file.to_str().expect("path"))]);
    for (path, needle) in [
        ("/marks?run=r1", "name is required"),
        ("/marks?run=r1&name=", "name is required"),
        ("/marks?name=x", "run is required"),
        (
            &format!("/marks?run=r1&name={}", "a".repeat(65)),
            "longer than 64",
        ),
        ("/marks?run=r1&name=a%20b", "may hold only"),
        ("/marks?run=r1&name=%22%7D", "may hold only"),
        ("/marks?run=r1&name=x&time=5", "unknown parameter"),
    ] {
        let (status, body) = post(&agent, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body.contains(needle) && body.trim_end().lines().count() == 1,
            "{path}: {body}"
        );
    }
    let (status, _) = post(&agent, "/nodes");
    assert_eq!(status, 405);
    let (status, body) = curl_status(&format!("{}/energy/pods?phase=1", agent.url()));
    assert!(status == 400 && body.contains("phase needs run"), "{body}");
    let (status, body) = curl_status(&format!("{}/phases?run=nothing", agent.url()));
    assert!(status == 400 && body.contains("no marks"), "{body}");
    // Eight clients at once, 25 marks each: every mark kept once, in time order, on disk too.
    std::thread::scope(|scope| {
        for client in 0..8 {
            let agent = &agent;
            scope.spawn(move || {
                for i in 0..25 {
                    let (status, body) = post(agent, &format!("/marks?run=c{client}&name=m{i}"));
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    });
    let listed = marks_of(&agent, "");
    assert_eq!(listed.len(), 200);
    assert!(
        listed.windows(2).all(|w| w[0].0 < w[1].0),
        "not in time order"
    );
    for client in 0..8 {
        let names: Vec<&str> = listed
            .iter()
            .filter(|m| m.1 == format!("c{client}"))
            .map(|m| m.2.as_str())
            .collect();
        let expected: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
        assert_eq!(names, expected, "client {client}'s marks in its order");
    }
    let kept = std::fs::read_to_string(&file).expect("MARKS_FILE");
    assert_eq!(kept.lines().count(), 200);
    refused_from_the_network(&config);
}

/// A client on another address than loopback (Prometheus scraping the agent, say) gets 403
/// when it tries to write a mark. Needs a non-loopback address on this host.
fn refused_from_the_network(config: &AgentConfig) {
    let Some(address) = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and(s.local_addr()))
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
    else {
        eprintln!("no non-loopback address here: the 403 is checked by src/http/tests.rs only");
        return;
    };
    let port = free_port();
    let agent = Agent::start_on(config, &[("LISTEN_ADDR", &format!("0.0.0.0:{port}"))], port);
    let output = Command::new("curl")
        .args(["-s", "-X", "POST", "-w", "\n%{http_code}"])
        .arg(format!("http://{address}:{port}/marks?run=r&name=x"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.ends_with("\n403"), "from {address}: {text}");
    assert!(marks_of(&agent, "").is_empty());
}

#[test]
fn ten_thousand_marks_are_the_most() {
    let dir = TempDir::new("marks");
    let file = dir.path().join("marks.csv");
    let lines: String = (0..10_000)
        .map(|i| {
            format!(
                "2026-01-31T12:00:{:02}.{:03}Z,full,m{i}\n",
                i / 1000,
                i % 1000
            )
        })
        .collect();
    std::fs::write(&file, lines).expect("a full file");
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let config = AgentConfig {
        prometheus_url: &unreachable,
        namespace: NAMESPACE,
        update_interval: "1s",
        window: "10s",
    };
    let agent = Agent::start_with(&config, &[("MARKS_FILE", file.to_str().expect("path"))]);
    let (status, body) = post(&agent, "/marks?run=r&name=one-more");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("10000 marks"), "{body}");
    assert_eq!(marks_of(&agent, "run=full").len(), 10_000);
}
