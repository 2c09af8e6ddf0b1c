//! What the tables are: their columns (`schema`), the PromQL that fills each column
//! (`queries`), which row a series belongs to (`identity`), and how values print (`format`).

pub mod format;
pub mod identity;
pub mod queries;
pub mod schema;
