//! What an evaluation asks: each column's query, and each table's columns combined into one
//! query (docs/design.md, "Cycle"), built once for every evaluation that runs them.

use crate::tables::identity::COLUMN_LABEL;
use crate::tables::queries::{ColumnQuery, Queries, energy_promql};
use crate::tables::schema::{Measure, PerTable, TableKind};
use crate::time::Millis;

/// Longest combined query sent; longer ones go column by column.
const COMBINED_MAX: usize = 8 * 1024;

/// A query to run for one column.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub table: TableKind,
    /// Position among the table's value columns.
    pub column: usize,
    pub name: &'static str,
    /// `None`: disabled, the column stays empty.
    pub promql: Option<String>,
    pub overridden: bool,
}

/// The queries of an evaluation: each column's, and each table's columns combined into one.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub columns: Vec<Planned>,
    /// `None` for a table with fewer than two enabled columns or a combined query too long.
    pub combined: PerTable<Option<String>>,
}

impl Plan {
    pub fn new(columns: Vec<Planned>) -> Plan {
        let combined = PerTable::new(|table| {
            let of_table: Vec<&Planned> = columns.iter().filter(|p| p.table == table).collect();
            combined_query(&of_table)
        });
        Plan { columns, combined }
    }

    /// The planned columns of `table`, in column order.
    pub fn of_table(&self, table: TableKind) -> impl Iterator<Item = &Planned> {
        self.columns.iter().filter(move |p| p.table == table)
    }

    /// The name of a value column, for logs.
    pub fn column_name(&self, table: TableKind, column: usize) -> &'static str {
        self.of_table(table)
            .find(|p| p.column == column)
            .map_or("?", |p| p.name)
    }
}

/// The queries of `tables` for `measure`; energy queries are filled in for a span of
/// `span_ms`.
pub fn plan(queries: &Queries, tables: &[TableKind], measure: Measure, span_ms: Millis) -> Plan {
    let planned = |table: TableKind, (column, q): (usize, &ColumnQuery)| Planned {
        table,
        column,
        name: q.column,
        promql: q.promql.as_ref().map(|text| match measure {
            Measure::Live => text.clone(),
            Measure::Energy => energy_promql(text, span_ms),
        }),
        overridden: q.overridden,
    };
    Plan::new(
        tables
            .iter()
            .flat_map(|table| {
                queries
                    .table(*table, measure)
                    .iter()
                    .enumerate()
                    .map(move |entry| planned(*table, entry))
            })
            .collect(),
    )
}

/// The columns' queries as one, each series tagged with its column; `None` when fewer than
/// two columns are enabled or the result would be too long.
fn combined_query(columns: &[&Planned]) -> Option<String> {
    let parts: Vec<String> = columns
        .iter()
        .filter_map(|p| {
            let promql = p.promql.as_ref()?;
            Some(format!(
                r#"label_replace(({promql}), "{COLUMN_LABEL}", "{}", "", "")"#,
                p.column
            ))
        })
        .collect();
    let promql = parts.join(" or ");
    (parts.len() >= 2 && promql.len() <= COMBINED_MAX).then_some(promql)
}
