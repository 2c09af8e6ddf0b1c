//! What each request turns into, and answering it: routing by the table in `routes` (cheap,
//! never waits for Prometheus), then the reply, or the history, energy or stream it asks for.
//! Runs on a responder, after the responder limit is checked, so a large download never
//! delays `/readyz` and a refused request costs nothing.

use std::sync::Arc;

use log::error;
use tiny_http::{Method, Request};

use super::export::ExportReader;
use super::page;
use super::params::{self, Asked as Params, Context, MarksQuery, RunRef, TableRequest, When};
use super::reply::{Reply, asks_for_websocket, header, respond, respond_streamed};
use super::routes::{self, Handler};
use super::runs;
use super::streams::{self, StreamRequest};
use super::{App, busy_text};
use crate::buffer::RowFilter;
use crate::eval::energy::{self, EnergyRequest};
use crate::eval::history::Export;
use crate::eval::quality::{self, rows};
use crate::status::metrics;
use crate::tables::schema::TableKind;
use crate::time::{Millis, Span, Window, now_ms};

/// Stack of a stream thread: it only formats frames (and, resuming, folds history).
const STREAM_STACK: usize = 256 * 1024;

/// What a request turns into.
#[derive(Debug)]
pub enum Routed {
    Reply(Reply),
    /// Buffered rows with their data problems (computed from Prometheus when missing).
    Buffer(TableKind, RowFilter, bool),
    /// The data problems found over a window.
    Quality(Params<When>),
    /// Marks, merged with those Prometheus kept.
    Marks(Params<MarksQuery>),
    /// The phases of a run.
    Phases(Params<String>),
    /// History over a run or a phase: the run, its step if given, header, problems.
    RunHistory(TableKind, RunRef, Option<Millis>, bool, bool),
    /// Rows of a table for a past span, computed from Prometheus.
    History(TableKind, Params<Span>),
    /// Joules per node or pod for a window or the phases of a run, computed from Prometheus.
    Energy(TableKind, Params<When>),
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
    /// The client is on this host (`kubectl port-forward`): it may write marks.
    pub loopback: bool,
}

/// Routes one request; cheap, and never waits for Prometheus.
pub fn route(app: &App, asked: Asked<'_>) -> Routed {
    let (path, query) = asked.url.split_once('?').unwrap_or((asked.url, ""));
    let Some(route) = routes::find(path) else {
        return Routed::Reply(Reply::text(404, routes::not_found(path)));
    };
    let writes = route.handler == Handler::Marks && asked.method == &Method::Post;
    if !matches!(asked.method, Method::Get | Method::Head) && !writes {
        let allowed = if route.handler == Handler::Marks {
            "GET, HEAD, POST"
        } else {
            "GET, HEAD"
        };
        let mut reply = Reply::text(
            405,
            format!(
                "method {} not allowed on {path}; use {allowed}",
                asked.method
            ),
        );
        reply.headers.push(("Allow", allowed.into()));
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
    if writes {
        return match params::new_mark(query) {
            Ok(mark) => Routed::Reply(runs::stamp(app, mark, asked.loopback)),
            Err(reason) => Routed::Reply(Reply::text(400, reason)),
        };
    }
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
                TableRequest::RunHistory(run, step) => {
                    Routed::RunHistory(kind, run, step, asked.header, asked.problems)
                }
            }
        }
        Handler::Stream(kind) => Routed::Stream(kind, params::stream(query, context)?),
        Handler::Energy(kind) => Routed::Energy(kind, params::energy(query, context)?),
        Handler::Quality => Routed::Quality(params::quality(query, context)?),
        Handler::Marks => Routed::Marks(params::marks(query, context)?),
        Handler::Phases => Routed::Phases(params::phases(query)?),
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
    refresh_data_problems(app);
    let mut families = app.status.families(&app.buffers);
    families.extend(app.streams.families());
    families.push(app.marks.family(app.evaluator.namespace()));
    Reply {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        headers: Vec::new(),
        body: metrics::render(&families).into(),
    }
}

/// The data problems of the newest cycle, for `/agent/metrics`: computed once per cycle
/// when scraped (and kept with the rows), not with every cycle. Skipped while Prometheus is
/// busy with history, energy or quality requests.
fn refresh_data_problems(app: &App) {
    let newest = app.buffers.map(|_, b| b.newest_cycle());
    let missing = newest
        .iter()
        .any(|(_, rows)| rows.iter().any(|r| r.problems.get().is_none()));
    if missing {
        let Some(_slot) = app.past.try_take() else {
            return;
        };
        let cycle = |at| app.buffers.map(|_, b| b.cycle_at(at));
        for (kind, rows) in newest.iter() {
            if let Err(e) = rows::fill(&app.audit(), kind, rows, cycle) {
                log::warn!("data problems for /agent/metrics: {e}");
                return;
            }
        }
    }
    let fields = newest.map(|_, rows| {
        rows.iter()
            .filter_map(|r| r.problems.get().map(|p| p.to_string()))
            .collect()
    });
    app.status.data_problems(&fields);
}

/// Serves one request on a responder; a stream continues on a thread of its own.
pub fn serve((app, request): (Arc<App>, Request)) {
    let websocket = asks_for_websocket(&request);
    let asked = Asked {
        method: request.method(),
        url: request.url(),
        websocket,
        accept: header(&request, "Accept"),
        loopback: runs::is_loopback(request.remote_addr()),
    };
    match route(&app, asked) {
        Routed::Reply(reply) => respond(request, reply),
        Routed::Buffer(kind, filter, header) => buffer(&app, request, kind, filter, header),
        Routed::Quality(asked) => quality(&app, request, asked),
        Routed::Marks(asked) => runs::list(&app, request, asked),
        Routed::Phases(asked) => runs::list_phases(&app, request, asked),
        Routed::RunHistory(kind, run, step, header, problems) => {
            run_history(&app, request, kind, (run, step), (header, problems))
        }
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

/// History over a run or one phase of it: on the live grid unless a step is given.
fn run_history(
    app: &App,
    request: Request,
    kind: TableKind,
    (run, step): (RunRef, Option<Millis>),
    (header, problems): (bool, bool),
) {
    let window = match runs::window(app, &run) {
        Ok(window) => window,
        Err(reply) => return respond(request, reply),
    };
    let grid = app.evaluator.grid();
    let span = Span {
        start: if step.is_some() {
            window.start
        } else {
            grid.ceil(window.start)
        },
        end: window.end.min(now_ms()),
        step: step.unwrap_or(grid.interval()),
    };
    let what = Params {
        what: span,
        header,
        problems,
    };
    history(app, request, kind, what);
}

/// The window `when` stands for, or the reply refusing it.
fn window_of(app: &App, when: &When) -> Result<Window, Reply> {
    match when {
        When::Given(window) => Ok(*window),
        When::Run(run) => runs::window(app, run),
    }
}

fn energy(app: &App, request: Request, kind: TableKind, asked: Params<When>) {
    let Some(_slot) = app.past.try_take() else {
        return respond(request, Reply::text(503, busy_text()));
    };
    let answer = match &asked.what {
        When::Run(run) if run.phase.is_none() => match runs::resolve(app, run) {
            Ok(phases) => energy::phases_csv(
                &app.audit(),
                kind,
                &phases,
                asked.header,
                app.rows_per_step(),
            ),
            Err(reply) => return respond(request, reply),
        },
        when => match window_of(app, when) {
            Ok(window) => {
                let energy = EnergyRequest {
                    kind,
                    window,
                    with_header: asked.header,
                    rows_per_step: app.rows_per_step(),
                };
                energy::energy_csv(&app.audit(), energy)
            }
            Err(reply) => return respond(request, reply),
        },
    };
    let reply = match answer {
        Ok(csv) => Reply::csv(&format!("energy-{}", kind.name()), csv),
        Err(e) => prometheus_failed(&e),
    };
    respond(request, reply);
}

fn quality(app: &App, request: Request, asked: Params<When>) {
    let Some(_slot) = app.past.try_take() else {
        return respond(request, Reply::text(503, busy_text()));
    };
    let window = match window_of(app, &asked.what) {
        Ok(window) => window,
        Err(reply) => return respond(request, reply),
    };
    let reply = match app.audit().window(window, app.rows_per_step()) {
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
