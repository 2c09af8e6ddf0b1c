//! prometheus-agent: polls Prometheus for per-node and per-pod figures of one namespace and
//! serves them as CSV. Modules follow the data: configuration → Prometheus client → queries
//! → identity → table → poller → server; `main` wires them together.

pub mod check;
pub mod config;
pub mod identity;
pub mod params;
pub mod poller;
pub mod prometheus;
pub mod queries;
pub mod responders;
pub mod server;
pub mod status;
pub mod streams;
pub mod table;
