//! Tables as CSV files that Excel opens right: a UTF-8 byte order mark,
//! CRLF line ends, and any cell a spreadsheet would run as a formula
//! defused, as the cashless report's CSV does.

use crate::domain::rates::defuse_formula;

/// A CSV file of `header` and `rows`.
pub fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let written = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows)
        .try_for_each(|row: Vec<String>| {
            writer.write_record(row.iter().map(|cell| defuse_formula(cell)))
        });
    debug_assert!(written.is_ok(), "{written:?}");
    let body = writer.into_inner().unwrap_or_default();
    format!("\u{feff}{}", String::from_utf8_lossy(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_open_in_excel_and_run_no_formula() {
        let file = csv(
            &["code", "name"],
            [vec!["=1+1".to_owned(), "Xã \"Đông\"".to_owned()]],
        );
        assert_eq!(file, "\u{feff}code,name\r\n'=1+1,\"Xã \"\"Đông\"\"\"\r\n");
    }
}
