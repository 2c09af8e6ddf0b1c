//! Evaluation: the tables' queries become rows (docs/design.md, "Cycle").
//!
//! The `Evaluator` owns what every evaluation shares and runs the steps: `plan` (which queries),
//! `run` (ask Prometheus, combined or column by column), `fold` (series into rows as answers
//! arrive), `mapping` (node addresses to names), `render` (rows to CSV lines). Its users each
//! take one module: the live schedule (`poller`), past spans (`history`) and energy per window
//! (`energy`); `check` uses it too. Only the query source touches the network.

pub mod energy;
pub mod evaluator;
pub mod fold;
pub mod history;
pub mod log;
pub mod mapping;
pub mod plan;
pub mod poller;
pub mod quality;
pub mod render;
pub mod run;
pub mod steps;

pub use evaluator::{Evaluated, Evaluator, Outcome, Purpose, evaluate};
pub use fold::{Duplicate, Fold, RowValues};
pub use plan::{Plan, Planned, plan};
pub use render::Form;
pub use run::{Batching, ColumnOutcome};
pub use steps::Steps;

#[cfg(test)]
mod tests;
