//! prometheus-agent: polls Prometheus for per-node and per-pod figures of one namespace and
//! serves them as CSV. Modules follow the data (README, "Architecture"):
//! configuration → Prometheus client → queries → identity → cycle (fold, render) → table →
//! poller / history / energy → server (routes, streams); `main` wires them together.

pub mod check;
pub mod config;
pub mod cycle;
pub mod energy;
pub mod format;
pub mod history;
pub mod identity;
pub mod page;
pub mod params;
pub mod poller;
pub mod prometheus;
pub mod queries;
pub mod responders;
pub mod routes;
pub mod schema;
pub mod server;
pub mod status;
pub mod streams;
pub mod table;
