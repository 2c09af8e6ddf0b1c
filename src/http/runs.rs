//! Marks and phases over HTTP (README, "Runs and phases"): stamping a mark (loopback clients
//! only), listing marks and phases, and turning `run=R[&phase=N]` into the times it stands for.

use log::warn;
use tiny_http::Request;

use super::App;
use super::params::{Asked, MarksQuery, RunRef};
use super::reply::{Reply, respond};
use crate::marks::store::AddError;
use crate::marks::{HEADER, Mark, Phase, phases, recall};
use crate::time::{Millis, Window, now_ms};

/// How far back marks are read from Prometheus when no start is given.
const RECALL_DEFAULT: Millis = 31 * 24 * 3600 * 1000;

/// `POST /marks`: stamps a mark at the agent's clock; only clients on loopback (`kubectl
/// port-forward` arrives on loopback inside the pod) may write.
pub fn stamp(app: &App, asked: Asked<(String, String)>, loopback: bool) -> Reply {
    if !loopback {
        return Reply::text(
            403,
            "marks are written only by clients on loopback (kubectl port-forward, or the pod itself)",
        );
    }
    let (run, name) = &asked.what;
    match app.marks.add(run, name) {
        Ok(mark) => {
            let header = if asked.header { HEADER } else { "" };
            Reply::csv("mark", format!("{header}{}", mark.line()))
        }
        Err(AddError::Bad(reason)) => Reply::text(400, reason),
        Err(AddError::File(reason)) => Reply::text(500, reason),
    }
}

/// The marks this agent keeps and those Prometheus kept of agents of the same namespace in
/// `window`, each once, in time order. Prometheus failing leaves this agent's own marks.
pub fn known_marks(app: &App, window: Window) -> Vec<Mark> {
    let source = app.evaluator.source();
    let recalled = recall::recall(source, app.evaluator.namespace(), window).unwrap_or_else(|e| {
        warn!("reading marks back from Prometheus: {e}");
        Vec::new()
    });
    recall::merge(app.marks.all(), recalled)
}

/// `GET /marks`.
pub fn list(app: &App, request: Request, asked: Asked<MarksQuery>) {
    let now = now_ms();
    let query = &asked.what;
    let window = Window {
        start: query.start.unwrap_or(now - RECALL_DEFAULT),
        end: query.end.unwrap_or(now).min(now),
    };
    let mut csv = if asked.header {
        HEADER.to_string()
    } else {
        String::new()
    };
    for mark in known_marks(app, window) {
        let in_window =
            query.start.is_none_or(|s| mark.time >= s) && query.end.is_none_or(|e| mark.time <= e);
        if in_window && query.run.as_ref().is_none_or(|r| *r == mark.run) {
            csv.push_str(&mark.line());
        }
    }
    respond(request, Reply::csv("marks", csv));
}

/// The phases `run` stands for (one, with a phase); a 400 reply when there are none.
pub fn resolve(app: &App, run: &RunRef) -> Result<Vec<Phase>, Reply> {
    let now = now_ms();
    let window = Window {
        start: now - RECALL_DEFAULT,
        end: now,
    };
    let all = phases::of_run(&known_marks(app, window), &run.run, now);
    if all.is_empty() {
        return Err(Reply::text(
            400,
            format!("run {:?} has no marks: see /marks", run.run),
        ));
    }
    match &run.phase {
        None => Ok(all),
        Some(wanted) => phases::select(&all, wanted)
            .map(|p| vec![p.clone()])
            .map_err(|reason| Reply::text(400, reason)),
    }
}

/// The window a run (or one phase of it) stands for.
pub fn window(app: &App, run: &RunRef) -> Result<Window, Reply> {
    let phases = resolve(app, run)?;
    phases::span(&phases).ok_or_else(|| Reply::text(400, "the run has no phases"))
}

/// `GET /phases`.
pub fn list_phases(app: &App, request: Request, asked: Asked<String>) {
    let run = RunRef {
        run: asked.what.clone(),
        phase: None,
    };
    let reply = match resolve(app, &run) {
        Ok(found) => {
            let mut csv = if asked.header {
                phases::HEADER.to_string()
            } else {
                String::new()
            };
            for line in phases::lines(&found) {
                csv.push_str(&line);
            }
            Reply::csv("phases", csv)
        }
        Err(reply) => reply,
    };
    respond(request, reply);
}

/// Whether a peer is on this host: `kubectl port-forward` connects to the pod's loopback.
pub fn is_loopback(peer: Option<&std::net::SocketAddr>) -> bool {
    peer.is_some_and(|a| a.ip().to_canonical().is_loopback())
}
