//! prometheus-agent: polls Prometheus for per-node and per-pod figures of one namespace and
//! serves them as CSV. The folders follow the data (docs/architecture.md):
//!
//! - `config`: the environment, validated once at start;
//! - `prometheus`: the HTTP API client, answers parsed as they arrive;
//! - `tables`: what the tables are: columns, their PromQL, who a series belongs to, how
//!   values print;
//! - `eval`: the `Evaluator` turns queries into rows; the live `poller`, `history` and
//!   `energy` are its users;
//! - `buffer`: the rows kept in memory and the live subscriptions;
//! - `marks`: runs and phases, stamped on the agent's clock;
//! - `http`: routes, parameters, replies, streams and the live page;
//! - `status`: readiness and `/agent/metrics`;
//! - `check`: the troubleshooting subcommand;
//! - `agent`: start-up wiring shared by the service and `check`; `time`: clock, RFC 3339 and
//!   the grid; `cli`: printing.

pub mod agent;
pub mod buffer;
pub mod check;
pub mod cli;
pub mod config;
pub mod eval;
pub mod http;
pub mod marks;
pub mod prometheus;
pub mod status;
pub mod tables;
pub mod time;
