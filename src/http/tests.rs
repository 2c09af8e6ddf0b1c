//! Routing without sockets: what each request turns into.

use std::sync::Arc;
use std::time::Duration;

use tiny_http::Method;

use super::handlers::{Asked, Routed, route};
use super::reply::Reply;
use super::*;
use crate::buffer::{Buffer, Row, RowFilter};
use crate::eval::Evaluator;
use crate::prometheus::{Eval, QueryError, QuerySource, Series};
use crate::status::Status;
use crate::tables::queries::Queries;
use crate::tables::schema::{PerTable, TableKind};
use crate::time::{Grid, now_ms};

/// Routing never asks Prometheus; a source that would fail proves it.
struct Unreachable;

impl QuerySource for Unreachable {
    fn query(&self, _: &str, _: Eval, _: &mut dyn FnMut(Series<'_>)) -> Result<usize, QueryError> {
        Err(QueryError::Transport("not in routing tests".into()))
    }
}

fn app() -> App {
    let buffers = PerTable::new(|kind| Arc::new(Buffer::new(kind, 10)));
    buffers
        .nodes
        .push(vec![Row::new(1000, Arc::from("n1,a\n"))]);
    buffers
        .nodes
        .push(vec![Row::new(2000, Arc::from("n1,b\n"))]);
    let queries = Queries::build("exp", Duration::from_secs(60), &Default::default()).unwrap();
    let grid = Grid::every(15_000);
    App {
        buffers,
        status: Arc::new(Status::new(Duration::from_secs(1))),
        evaluator: Arc::new(Evaluator::new(
            Arc::new(Unreachable),
            queries,
            "exp",
            grid,
            60_000,
        )),
        streams: streams::Streams::new(2),
        past: slots::Slots::new(slots::MAX_CONCURRENT),
        buffer_size: 10,
        max_node_watts: 5000.0,
        demand: Arc::default(),
        marks: Arc::new(crate::marks::Marks::in_memory()),
    }
}

fn ask<'a>(method: &'a Method, url: &'a str, websocket: bool) -> Asked<'a> {
    Asked {
        method,
        url,
        websocket,
        accept: "*/*",
        loopback: true,
    }
}

fn get(app: &App, method: &Method, url: &str, websocket: bool) -> Reply {
    match route(app, ask(method, url, websocket)) {
        Routed::Reply(reply) => reply,
        other => panic!("{url} routed to {other:?}"),
    }
}

#[test]
fn downloads() {
    let app = app();
    let r = get(&app, &Method::Get, "/nodes?size=1", false);
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("instance,collection_time"));
    assert!(r.body.ends_with("\nn1,b\n"), "{}", r.body);
    assert_eq!(r.content_type, "text/csv; charset=utf-8");
    assert!(r.headers.contains(&(
        "Content-Disposition",
        "attachment; filename=\"nodes.csv\"".into()
    )));
    let d = get(&app, &Method::Get, "/download", false);
    assert_eq!(d.body.lines().count(), 3);
    let p = get(&app, &Method::Head, "/pods", false);
    assert_eq!(p.status, 200);
    assert!(p.headers.contains(&(
        "Content-Disposition",
        "attachment; filename=\"pods.csv\"".into()
    )));
    assert_eq!(p.body.lines().count(), 1);
    let s = get(&app, &Method::Get, "/nodes?since=1.5", false);
    assert!(s.body.ends_with("\nn1,b\n") && s.body.lines().count() == 2);
}

#[test]
fn history_energy_and_streams_are_handed_on() {
    let app = app();
    let now = now_ms() / 1000;
    let history = format!("/pods?start={}&step=30s", now - 600);
    match route(&app, ask(&Method::Get, &history, false)) {
        Routed::History(TableKind::Pods, asked) => {
            let span = asked.what;
            assert_eq!((span.step, span.steps()), (30_000, 21));
        }
        other => panic!("{other:?}"),
    }
    let energy = format!("/energy?start={}", now - 600);
    assert!(matches!(
        route(&app, ask(&Method::Get, &energy, false)),
        Routed::Energy(TableKind::Nodes, _)
    ));
    assert!(matches!(
        route(&app, ask(&Method::Get, "/metrics/pods?size=1", true)),
        Routed::Stream(
            TableKind::Pods,
            params::Asked {
                what: RowFilter { size: Some(1), .. },
                header: true,
                problems: false,
            }
        )
    ));
    assert!(matches!(
        route(&app, ask(&Method::Get, "/metrics", false)),
        Routed::Stream(TableKind::Nodes, _)
    ));
    assert!(matches!(
        route(&app, ask(&Method::Get, "/quality", false)),
        Routed::Quality(_)
    ));
    assert!(matches!(
        route(&app, ask(&Method::Get, "/nodes?problems=1", false)),
        Routed::Buffer(TableKind::Nodes, _, true)
    ));
}

#[test]
fn marks_are_written_only_from_loopback() {
    let app = app();
    let post = |loopback: bool, url: &str| {
        let asked = Asked {
            loopback,
            ..ask(&Method::Post, url, false)
        };
        match route(&app, asked) {
            Routed::Reply(reply) => reply,
            other => panic!("{url} routed to {other:?}"),
        }
    };
    let refused = post(false, "/marks?run=r&name=idle");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(app.marks.all().is_empty());
    let kept = post(true, "/marks?run=r&name=idle");
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert!(kept.body.starts_with("time,run,name\n") && kept.body.ends_with(",r,idle\n"));
    assert_eq!(app.marks.all().len(), 1);
    for bad in [
        "/marks?run=r",
        "/marks?run=r&name=",
        "/marks?name=x",
        "/marks?run=r&name=a%20b",
    ] {
        assert_eq!(post(true, bad).status, 400, "{bad}");
    }
    assert_eq!(post(true, "/nodes").status, 405);
    let put = get(&app, &Method::Put, "/marks", false);
    assert_eq!(put.status, 405);
    assert!(put.headers.contains(&("Allow", "GET, HEAD, POST".into())));
}

#[test]
fn errors_are_one_line() {
    let app = app();
    for (method, url, ws, status) in [
        (Method::Get, "/nope", false, 404),
        (Method::Get, "/nodes/", false, 404),
        (Method::Post, "/nodes", false, 405),
        (Method::Delete, "/readyz", false, 405),
        (Method::Get, "/nodes?size=11", false, 400),
        (Method::Get, "/pods?since=x", false, 400),
        (Method::Get, "/pods?x=1", false, 400),
        (Method::Get, "/nodes?start=1&size=2", false, 400),
        (Method::Get, "/energy/pods", false, 400),
        (Method::Get, "/metrics?since=1", false, 400),
        (Method::Get, "/nodes", true, 400),
        (Method::Get, "/energy?start=1", true, 400),
        (Method::Get, "/readyz", false, 503),
    ] {
        let r = get(&app, &method, url, ws);
        assert_eq!(r.status, status, "{method} {url}");
        assert_eq!(r.body.lines().count(), 1, "{url}: {:?}", r.body);
    }
    let r = get(&app, &Method::Put, "/nodes", false);
    assert!(r.headers.contains(&("Allow", "GET, HEAD".into())));
    let r = get(&app, &Method::Get, "/nope", false);
    assert!(r.body.contains("/energy/pods"), "{}", r.body);
}

#[test]
fn health_and_index() {
    let app = app();
    assert_eq!(get(&app, &Method::Get, "/livez", false).status, 200);
    let r = get(&app, &Method::Get, "/readyz", false);
    assert!(r.body.contains("no successful cycle yet"));
    app.status
        .cycle_succeeded(Duration::ZERO, &PerTable::default());
    assert_eq!(get(&app, &Method::Get, "/readyz", false).status, 200);
    let index = get(&app, &Method::Get, "/", false);
    assert_eq!(index.body, routes::index());
    // A browser gets the live page, and its library under /page/.
    let browser = Asked {
        accept: "text/html,application/xhtml+xml,*/*;q=0.8",
        ..ask(&Method::Get, "/", false)
    };
    let Routed::Reply(page) = route(&app, browser) else {
        panic!("the page")
    };
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.body.contains("<html"));
    assert_eq!(
        get(&app, &Method::Get, "/page/nothing.js", false).status,
        404
    );
    let m = get(&app, &Method::Get, "/agent/metrics", false);
    assert!(
        m.body
            .contains("prometheus_agent_rows_buffered{table=\"nodes\"} 2")
    );
}
