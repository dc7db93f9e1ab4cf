//! Rows and lists bound as one JSON value: one placeholder whatever their
//! number, so a statement's text (and the plan the database prepared for
//! it) is the same for every batch, and no batch meets the databases'
//! limits on placeholders.

use std::collections::HashSet;

use super::{Backend, StoreError};

/// The values, each once, in their first order.
pub(super) fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

/// A membership test against a list of text values bound as one JSON
/// array: `column {json_in(..)}`. One placeholder whatever the list's
/// length, so a query's text, and the statement the database prepared for
/// it, is the same for every chunk. On PostgreSQL the list is an array
/// the index condition takes whole (`= ANY`): as a subquery joined to the
/// table, the planner, with no statistics yet on rows an import has just
/// written, would read every row of the index's first column instead.
pub(super) fn json_in(backend: Backend, placeholder: &str) -> String {
    match backend {
        Backend::Sqlite => format!("IN (SELECT e.value FROM json_each({placeholder}) AS e)"),
        Backend::Postgres => {
            format!("= ANY(ARRAY(SELECT json_array_elements_text({placeholder}::json)))")
        }
    }
}

/// Rows bound as one JSON array of arrays, read as `e.value->>0`, ….
/// Both parse the text once into their binary form, which each field is
/// then read from without parsing its row again.
pub(super) fn json_rows(backend: Backend, placeholder: &str) -> String {
    match backend {
        Backend::Sqlite => format!("jsonb_each({placeholder}) AS e"),
        Backend::Postgres => format!("jsonb_array_elements({placeholder}::jsonb) AS e(value)"),
    }
}

/// The rows of a query as one JSON array of arrays of `columns`: one row
/// to hand over instead of one per candidate, each decoded on its own.
pub(super) fn json_agg(backend: Backend, columns: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_group_array(json_array({columns}))"),
        // As text: the Any driver decodes no json.
        Backend::Postgres => format!("json_agg(json_build_array({columns}))::text"),
    }
}

pub(super) fn json_list(values: &[&str]) -> Result<String, StoreError> {
    serde_json::to_string(values).map_err(StoreError::corrupt)
}
