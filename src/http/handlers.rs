//! What each request turns into, and answering it: routing by the table in `routes` (cheap,
//! never waits for Prometheus), then the reply, or the history, energy or stream it asks for.
//! Runs on a responder, after the responder limit is checked, so a large download never
//! delays `/readyz` and a refused request costs nothing.

use std::sync::Arc;

use log::error;
use tiny_http::{Method, Request};

use super::export::ExportReader;
use super::page;
use super::params::{self, Asked as Params, Context, TableRequest};
use super::reply::{Reply, asks_for_websocket, header, respond, respond_streamed};
use super::routes::{self, Handler};
use super::streams::{self, StreamRequest};
use super::{App, busy_text};
use crate::buffer::RowFilter;
use crate::eval::energy::{self, EnergyRequest};
use crate::eval::history::Export;
use crate::eval::quality::{self, rows};
use crate::status::metrics;
use crate::tables::schema::TableKind;
use crate::time::{Span, Window, now_ms};

/// Stack of a stream thread: it only formats frames (and, resuming, folds history).
const STREAM_STACK: usize = 256 * 1024;

/// What a request turns into.
#[derive(Debug)]
pub enum Routed {
    Reply(Reply),
    /// Buffered rows with their data problems (computed from Prometheus when missing).
    Buffer(TableKind, RowFilter, bool),
    /// The data problems found over a window.
    Quality(Params<Window>),
    /// Rows of a table for a past span, computed from Prometheus.
    History(TableKind, Params<Span>),
    /// Joules per node or pod for a window, computed from Prometheus.
    Energy(TableKind, Params<Window>),
    /// A live stream of a table's rows passing a filter.
    Stream(TableKind, Params<RowFilter>),
}

/// The parts of a request routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub method: &'a Method,
    pub url: &'a str,
    pub websocket: bool,
    /// The `Accept` header: a browser gets the live page at `/`, `curl` the text index.
    pub accept: &'a str,
}

/// Routes one request; cheap, and never waits for Prometheus.
pub fn route(app: &App, asked: Asked<'_>) -> Routed {
    let (path, query) = asked.url.split_once('?').unwrap_or((asked.url, ""));
    let Some(route) = routes::find(path) else {
        return Routed::Reply(Reply::text(404, routes::not_found(path)));
    };
    if !matches!(asked.method, Method::Get | Method::Head) {
        let mut reply = Reply::text(
            405,
            format!("method {} not allowed on {path}; use GET", asked.method),
        );
        reply.headers.push(("Allow", "GET, HEAD".into()));
        return Routed::Reply(reply);
    }
    if asked.websocket && !route.handler.is_stream() {
        return Routed::Reply(Reply::text(
            400,
            format!(
                "{path} does not accept WebSocket upgrades; streams are {}",
                routes::paths_of(Handler::is_stream).join(", ")
            ),
        ));
    }
    let context = Context {
        buffer_size: app.buffer_size,
        grid: app.evaluator.grid(),
        now: now_ms(),
    };
    match handle(app, route.handler, path, query, asked.accept, context) {
        Ok(routed) => routed,
        Err(reason) => Routed::Reply(Reply::text(400, reason)),
    }
}

/// The answer of one route; `Err` is a bad request's one-line reason.
fn handle(
    app: &App,
    handler: Handler,
    path: &str,
    query: &str,
    accept: &str,
    context: Context,
) -> Result<Routed, String> {
    Ok(match handler {
        Handler::Table(kind) => {
            let asked = params::table(query, context)?;
            match asked.what {
                TableRequest::Buffer(filter) if asked.problems => {
                    Routed::Buffer(kind, filter, asked.header)
                }
                TableRequest::Buffer(filter) => {
                    let csv = app.buffers.get(kind).csv(&filter, asked.header);
                    Routed::Reply(Reply::csv(kind.name(), csv))
                }
                TableRequest::History(what) => Routed::History(
                    kind,
                    Params {
                        what,
                        header: asked.header,
                        problems: asked.problems,
                    },
                ),
            }
        }
        Handler::Stream(kind) => Routed::Stream(kind, params::stream(query, context)?),
        Handler::Energy(kind) => Routed::Energy(kind, params::energy(query, context)?),
        Handler::Quality => Routed::Quality(params::quality(query, context)?),
        Handler::Index if page::wants_html(accept) => Routed::Reply(Reply::asset(page::INDEX)),
        Handler::Index => Routed::Reply(Reply::text(200, routes::index())),
        Handler::PageFile => Routed::Reply(match page::asset(path) {
            Some(asset) => Reply::asset(asset),
            None => Reply::text(404, routes::not_found(path)),
        }),
        Handler::Livez => Routed::Reply(Reply::text(200, "ok")),
        Handler::Readyz => Routed::Reply(match app.status.readiness() {
            Ok(()) => Reply::text(200, "ok"),
            Err(reason) => Reply::text(503, format!("not ready: {reason}")),
        }),
        Handler::AgentMetrics => Routed::Reply(agent_metrics(app)),
    })
}

fn agent_metrics(app: &App) -> Reply {
    // A scraper of the agent's figures wants the current data problems too.
    app.demand.ask();
    let mut families = app.status.families(&app.buffers);
    families.extend(app.streams.families());
    Reply {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        headers: Vec::new(),
        body: metrics::render(&families).into(),
    }
}

/// Serves one request on a responder; a stream continues on a thread of its own.
pub fn serve((app, request): (Arc<App>, Request)) {
    let websocket = asks_for_websocket(&request);
    let asked = Asked {
        method: request.method(),
        url: request.url(),
        websocket,
        accept: header(&request, "Accept"),
    };
    match route(&app, asked) {
        Routed::Reply(reply) => respond(request, reply),
        Routed::Buffer(kind, filter, header) => buffer(&app, request, kind, filter, header),
        Routed::Quality(asked) => quality(&app, request, asked),
        Routed::History(kind, asked) => history(&app, request, kind, asked),
        Routed::Energy(kind, asked) => energy(&app, request, kind, asked),
        Routed::Stream(kind, asked) => stream(app, request, kind, asked, websocket),
    }
}

fn prometheus_failed(e: &dyn std::fmt::Display) -> Reply {
    Reply::text(502, format!("cannot compute this from Prometheus: {e}"))
}

fn history(app: &App, request: Request, kind: TableKind, asked: Params<Span>) {
    let Some(slot) = app.past.try_take() else {
        return respond(request, Reply::text(503, busy_text()));
    };
    let rows_per_step = app.buffers.get(kind).newest_cycle_len();
    let mut export = Export::new(&app.evaluator, kind, asked.what, rows_per_step);
    if asked.problems {
        app.demand.ask();
        export = match export.with_problems(app.audit(), asked.what) {
            Ok(export) => export,
            Err(e) => return respond(request, prometheus_failed(&e)),
        };
    }
    match ExportReader::start(export, asked.header, asked.problems, slot) {
        Ok(reader) => respond_streamed(request, kind.name(), reader),
        Err(e) => respond(request, prometheus_failed(&e)),
    }
}

/// Buffered rows with `problems=1`: rows from before anyone asked get theirs now.
fn buffer(app: &App, request: Request, kind: TableKind, filter: RowFilter, header: bool) {
    app.demand.ask();
    let buffer = app.buffers.get(kind);
    let rows = buffer.snapshot(&filter);
    if rows.iter().any(|r| r.problems.get().is_none()) {
        let Some(_slot) = app.past.try_take() else {
            return respond(request, Reply::text(503, busy_text()));
        };
        let cycle = |at| app.buffers.map(|_, b| b.cycle_at(at));
        if let Err(e) = rows::fill(&app.audit(), kind, &rows, cycle) {
            return respond(request, prometheus_failed(&e));
        }
    }
    respond(
        request,
        Reply::csv(kind.name(), buffer.csv_of(&rows, header, true)),
    );
}

fn energy(app: &App, request: Request, kind: TableKind, asked: Params<Window>) {
    let Some(_slot) = app.past.try_take() else {
        return respond(request, Reply::text(503, busy_text()));
    };
    let energy = EnergyRequest {
        kind,
        window: asked.what,
        with_header: asked.header,
        rows_per_step: app.rows_per_step(),
    };
    let reply = match energy::energy_csv(&app.audit(), energy) {
        Ok(csv) => Reply::csv(&format!("energy-{}", kind.name()), csv),
        Err(e) => prometheus_failed(&e),
    };
    respond(request, reply);
}

fn quality(app: &App, request: Request, asked: Params<Window>) {
    let Some(_slot) = app.past.try_take() else {
        return respond(request, Reply::text(503, busy_text()));
    };
    let reply = match app.audit().window(asked.what, app.rows_per_step()) {
        Ok(findings) => {
            let mut csv = if asked.header {
                quality::HEADER.to_string()
            } else {
                String::new()
            };
            for line in quality::lines(&findings) {
                csv.push_str(&line);
            }
            Reply::csv("quality", csv)
        }
        Err(e) => prometheus_failed(&e),
    };
    respond(request, reply);
}

fn stream(
    app: Arc<App>,
    request: Request,
    kind: TableKind,
    asked: Params<RowFilter>,
    websocket: bool,
) {
    let Some(slot) = app.streams.slots.try_take() else {
        return respond(
            request,
            Reply::text(503, "too many streams open (MAX_STREAMS); retry later"),
        );
    };
    if asked.problems {
        app.demand.ask();
    }
    let stream = StreamRequest {
        buffer: Arc::clone(app.buffers.get(kind)),
        filter: asked.what,
        header: asked.header,
        problems: asked.problems,
        websocket,
    };
    let spawned = std::thread::Builder::new()
        .name("stream".into())
        .stack_size(STREAM_STACK)
        .spawn(move || streams::run(&app, request, stream, slot));
    if let Err(e) = spawned {
        error!("cannot start a stream thread: {e}");
    }
}
