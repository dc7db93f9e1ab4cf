//! The console's lists: a filter form, a table, the next page and the
//! same rows as a CSV file. A list's columns are declared once, and the
//! page and the file are both made from them, so that a CSV file has the
//! page's headers in the officer's language, names rather than codes, and
//! times in Vietnam time (`+07:00`).

use std::collections::HashMap;

use super::{DOWNLOAD_CSV, FILTER, NEXT_PAGE, NOTHING, export, lang_field, link, value};
use crate::domain::{AgencyCode, Timestamp, Vnd};
use crate::error::{ApiError, ErrorCode};
use crate::pages::{Html, Lang, Text, vietnam_minute};

/// One cell of a row.
pub enum Cell {
    Text(String),
    /// Text that links to `href` on the page, and is the text in a file.
    Link {
        text: String,
        href: String,
    },
    Money(Vnd),
    Count(i64),
    Time(Timestamp),
    /// A button that posts to `action` on the page; nothing in a file.
    Button {
        action: String,
        label: &'static Text,
        csrf: String,
    },
    Empty,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell::Text(text.into())
    }

    pub fn link(text: impl Into<String>, href: String) -> Cell {
        Cell::Link {
            text: text.into(),
            href,
        }
    }

    pub fn maybe(text: Option<impl Into<String>>) -> Cell {
        text.map_or(Cell::Empty, |t| Cell::Text(t.into()))
    }

    fn numeric(&self) -> bool {
        matches!(self, Cell::Money(_) | Cell::Count(_))
    }

    fn html(&self, html: &mut Html, lang: Lang) {
        match self {
            Cell::Text(text) => {
                html.text(text);
            }
            Cell::Link { text, href } => {
                html.raw("<a href=\"")
                    .text(href)
                    .raw("\">")
                    .text(text)
                    .raw("</a>");
            }
            Cell::Money(amount) => {
                html.text(&amount.display_vi());
            }
            Cell::Count(n) => {
                html.text(&crate::pages::count(n.unsigned_abs(), lang));
            }
            Cell::Time(at) => {
                html.text(&vietnam_minute(*at));
            }
            Cell::Button {
                action,
                label,
                csrf,
            } => {
                html.raw("<form method=\"post\" action=\"")
                    .text(action)
                    .raw("\"><input type=\"hidden\" name=\"csrf\" value=\"")
                    .text(csrf)
                    .raw("\"><button type=\"submit\" class=\"secondary\">")
                    .t(lang, label)
                    .raw("</button></form>");
            }
            Cell::Empty => {
                html.raw("—");
            }
        }
    }

    /// The cell in a file: amounts and counts as plain numbers a
    /// spreadsheet adds up, times in Vietnam time with their offset.
    fn csv(&self) -> String {
        match self {
            Cell::Text(text) | Cell::Link { text, .. } => text.clone(),
            Cell::Money(amount) => amount.dong().to_string(),
            Cell::Count(n) => n.to_string(),
            Cell::Time(at) => vietnam_time(*at),
            Cell::Button { .. } | Cell::Empty => String::new(),
        }
    }
}

/// `2026-07-01 08:30:00+07:00`: a time as a CSV file holds it.
pub fn vietnam_time(at: Timestamp) -> String {
    let local = at.in_vietnam();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+07:00",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

/// A table: its id on the page, caption, column headers and rows.
pub struct Table<'a> {
    pub id: &'static str,
    pub caption: &'a Text,
    pub columns: &'a [&'a Text],
    pub rows: Vec<Vec<Cell>>,
}

impl Table<'_> {
    /// The table on a page, or that there is nothing to show.
    pub fn html(&self, html: &mut Html, lang: Lang) {
        if self.rows.is_empty() {
            html.raw("<p>").t(lang, &NOTHING).raw("</p>");
            return;
        }
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .any(|row| row.get(i).is_some_and(Cell::numeric))
            })
            .collect();
        html.raw("<table id=\"")
            .raw(self.id)
            .raw("\"><caption>")
            .t(lang, self.caption)
            .raw("</caption><thead><tr>");
        for (column, numeric) in self.columns.iter().zip(&numeric) {
            html.raw(if *numeric {
                "<th scope=\"col\" class=\"num\">"
            } else {
                "<th scope=\"col\">"
            })
            .t(lang, column)
            .raw("</th>");
        }
        html.raw("</tr></thead><tbody>");
        for row in &self.rows {
            html.raw("<tr>");
            for cell in row {
                html.raw(if cell.numeric() {
                    "<td class=\"num\">"
                } else {
                    "<td>"
                });
                cell.html(html, lang);
                html.raw("</td>");
            }
            html.raw("</tr>");
        }
        html.raw("</tbody></table>");
    }

    /// The same rows as a CSV file, headed in `lang`.
    pub fn csv(&self, lang: Lang) -> String {
        let header: Vec<&str> = self.columns.iter().map(|c| lang.pick(c)).collect();
        export::csv(
            &header,
            self.rows
                .iter()
                .map(|row| row.iter().map(Cell::csv).collect()),
        )
    }
}

/// A field of a list's filter form.
pub enum Filter<'a> {
    /// A choice among `options` (value, name), "all" first.
    Choice {
        name: &'static str,
        label: &'a Text,
        options: Vec<(String, String)>,
    },
    /// Free text, at most 200 characters.
    Text { name: &'static str, label: &'a Text },
    /// The first and last day.
    Days,
}

/// The filter form of the list at `path`, filled in as `query` asks.
pub fn filters(
    html: &mut Html,
    lang: Lang,
    path: &str,
    query: &HashMap<String, String>,
    fields: &[Filter<'_>],
) {
    html.raw("<section class=\"card\"><form class=\"filters\" method=\"get\" action=\"")
        .text(path)
        .raw("\">");
    lang_field(html, lang);
    for field in fields {
        match field {
            Filter::Choice {
                name,
                label,
                options,
            } => {
                let chosen = value(query, name).unwrap_or_default();
                html.raw("<div><label for=\"")
                    .raw(name)
                    .raw("\">")
                    .t(lang, label)
                    .raw("</label><select id=\"")
                    .raw(name)
                    .raw("\" name=\"")
                    .raw(name)
                    .raw("\"><option value=\"\">")
                    .t(lang, &super::ALL)
                    .raw("</option>");
                for (v, shown) in options {
                    html.raw("<option value=\"").text(v).raw("\"");
                    if chosen == v {
                        html.raw(" selected");
                    }
                    html.raw(">").text(shown).raw("</option>");
                }
                html.raw("</select></div>");
            }
            Filter::Text { name, label } => {
                html.raw("<div><label for=\"")
                    .raw(name)
                    .raw("\">")
                    .t(lang, label)
                    .raw("</label><input id=\"")
                    .raw(name)
                    .raw("\" name=\"")
                    .raw(name)
                    .raw("\" maxlength=\"200\" value=\"")
                    .text(value(query, name).unwrap_or_default())
                    .raw("\"></div>");
            }
            Filter::Days => {
                super::day_fields(html, lang, value(query, "from"), value(query, "to"));
            }
        }
    }
    html.raw("<div><button type=\"submit\">")
        .t(lang, &FILTER)
        .raw("</button></div></form></section>");
}

/// The links under a list: its next page, if any, and its CSV file, both
/// with the list's filters.
pub fn list_links(
    html: &mut Html,
    lang: Lang,
    path: &str,
    query: &HashMap<String, String>,
    next_cursor: Option<&str>,
) {
    let kept = |skip: &[&str]| -> Vec<(String, String)> {
        let mut kept: Vec<(String, String)> = query
            .iter()
            .filter(|(k, v)| !skip.contains(&k.as_str()) && !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        kept.sort();
        kept
    };
    fn pairs(kept: &[(String, String)]) -> Vec<(&str, &str)> {
        kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
    html.raw("<p>");
    if let Some(cursor) = next_cursor {
        let mut next = kept(&["cursor", "lang", "format"]);
        next.push(("cursor".to_owned(), cursor.to_owned()));
        html.raw("<a id=\"next-page\" href=\"")
            .text(&link(lang, path, &pairs(&next)))
            .raw("\">")
            .t(lang, &NEXT_PAGE)
            .raw("</a> · ");
    }
    let mut csv = kept(&["cursor", "lang", "format"]);
    csv.push(("format".to_owned(), "csv".to_owned()));
    html.raw("<a class=\"button secondary\" href=\"")
        .text(&link(lang, path, &pairs(&csv)))
        .raw("\">")
        .t(lang, &DOWNLOAD_CSV)
        .raw("</a></p>");
}

/// A list's query: its filters, read as the API reads them.
pub struct ListQuery(pub HashMap<String, String>);

fn invalid(message: String) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidQuery, message)
}

impl ListQuery {
    pub fn of(req: &actix_web::HttpRequest) -> ListQuery {
        ListQuery(super::query_of(req))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        value(&self.0, name)
    }

    /// Free text of at most 200 characters.
    pub fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            Some(text) if text.chars().count() > 200 || text.chars().any(char::is_control) => {
                Err(invalid(format!("{name} must be at most 200 characters")))
            }
            found => Ok(found.map(str::to_owned)),
        }
    }

    /// One of a code's values, parsed by `parse`.
    pub fn choice<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| parse(v).ok_or_else(|| invalid(format!("{name}: unknown value"))))
            .transpose()
    }

    pub fn agency(&self) -> Result<Option<AgencyCode>, ApiError> {
        Ok(self
            .get("agency")
            .map(|code| AgencyCode::parse("agency", code))
            .transpose()?)
    }

    /// The start of the first day asked for, in Vietnam.
    pub fn from(&self) -> Result<Option<Timestamp>, ApiError> {
        day_start(self.get("from"), "from", 0)
    }

    /// The end of the last day asked for: the next day's start.
    pub fn to(&self) -> Result<Option<Timestamp>, ApiError> {
        day_start(self.get("to"), "to", 1)
    }

    pub fn cursor(&self) -> Option<String> {
        self.get("cursor")
            .filter(|c| c.len() <= 300)
            .map(str::to_owned)
    }

    /// How many rows to read: a page, or every row up to `CSV_ROWS` for a file.
    pub fn limit(&self) -> i64 {
        if wants_csv(&self.0) {
            CSV_ROWS
        } else {
            PAGE_ROWS
        }
    }
}

/// Rows on a page, and at most in a file.
pub const PAGE_ROWS: i64 = 50;
pub const CSV_ROWS: i64 = 10_000;

/// The start of day `text` (`YYYY-MM-DD`) in Vietnam, plus `days`.
pub fn day_start(
    text: Option<&str>,
    field: &str,
    days: i64,
) -> Result<Option<Timestamp>, ApiError> {
    text.map(|d| {
        crate::domain::rates::Period::parse(d, d)
            .ok()
            .and_then(|_| Timestamp::parse_rfc3339(&format!("{d}T00:00:00+07:00")))
            .and_then(|t| t.plus(time::Duration::days(days)))
            .ok_or_else(|| invalid(format!("{field} must be a day as YYYY-MM-DD")))
    })
    .transpose()
}

/// Whether the request asks for the list as a file.
pub fn wants_csv(query: &HashMap<String, String>) -> bool {
    value(query, "format") == Some("csv")
}

impl List<'_> {
    pub fn answer(
        self,
        req: &actix_web::HttpRequest,
        officer: &super::Officer,
        query: &ListQuery,
    ) -> actix_web::HttpResponse {
        let lang = super::lang_of(req);
        if wants_csv(&query.0) {
            return super::csv_file(self.file, self.table.csv(lang));
        }
        let mut body = Html::new();
        body.raw("<h1>").t(lang, self.title).raw("</h1>");
        filters(&mut body, lang, &self.path, &query.0, &self.filters);
        body.append(self.intro);
        body.raw("<section class=\"card\">");
        self.table.html(&mut body, lang);
        list_links(
            &mut body,
            lang,
            &self.path,
            &query.0,
            self.next_cursor.as_deref(),
        );
        body.raw("</section>");
        super::officer_page(
            req,
            officer,
            actix_web::http::StatusCode::OK,
            self.title,
            self.section,
            body,
        )
    }
}

/// A list page's handler: the signed-in officer's list as `build` makes
/// it from the query, as a page or a CSV file, or the page that says why
/// not.
pub async fn list_page(
    req: actix_web::HttpRequest,
    state: actix_web::web::Data<crate::startup::AppState>,
    build: impl AsyncFnOnce(
        &actix_web::HttpRequest,
        &crate::startup::AppState,
        &super::Officer,
        &ListQuery,
    ) -> Result<List<'static>, ApiError>,
) -> actix_web::HttpResponse {
    let officer = match super::session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    let query = ListQuery::of(&req);
    match build(&req, &state, &officer, &query).await {
        Ok(list) => list.answer(&req, &officer, &query),
        Err(err) => super::error_page(&req, Some(&officer), &err),
    }
}

/// The agencies in the officer's scope, as a filter's choices.
pub async fn agency_filter<'a>(
    state: &crate::startup::AppState,
    officer: &super::Officer,
) -> Result<Filter<'a>, ApiError> {
    let agencies = state.store.list_agencies(officer.scope()).await?;
    Ok(Filter::Choice {
        name: "agency",
        label: &super::AGENCY,
        options: agencies
            .into_iter()
            .map(|a| (a.code.to_string(), format!("{} · {}", a.code, a.name)))
            .collect(),
    })
}

/// The cashless channels, as a filter's choices.
pub fn cashless_channels(lang: Lang) -> Vec<(String, String)> {
    crate::domain::payment::Channel::ALL
        .into_iter()
        .filter(|c| c.is_cashless())
        .map(|c| {
            (
                c.as_str().to_owned(),
                crate::pages::channel_name(c, lang).to_owned(),
            )
        })
        .collect()
}

/// The choices of a code's values, each by its name.
pub fn choices<T: super::labels::Label>(
    values: impl IntoIterator<Item = T>,
    code: impl Fn(T) -> &'static str,
    lang: Lang,
) -> Vec<(String, String)> {
    values
        .into_iter()
        .map(|v| (code(v).to_owned(), v.label(lang).to_owned()))
        .collect()
}

/// A list as the officer asked for it: the CSV file `file`, or the page
/// at `path` of `section` with its filters, `intro`, the table and links.
pub struct List<'a> {
    pub section: super::Section,
    pub title: &'a Text,
    pub path: String,
    pub file: &'a str,
    pub filters: Vec<Filter<'a>>,
    pub intro: Html,
    pub table: Table<'a>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_headed_in_the_officers_language_with_vietnam_times() {
        let at = Timestamp::parse_rfc3339("2026-07-01T23:30:00Z").unwrap();
        let table = Table {
            id: "t",
            caption: &crate::pages::text!("Bảng", "Table"),
            columns: &[
                &crate::pages::text!("Thời điểm", "Time"),
                &crate::pages::text!("Số tiền", "Amount"),
            ],
            rows: vec![vec![Cell::Time(at), Cell::Money(Vnd::new(1_500_000))]],
        };
        assert_eq!(
            table.csv(Lang::Vi),
            "\u{feff}Thời điểm,Số tiền\r\n2026-07-02 06:30:00+07:00,1500000\r\n"
        );
        assert!(table.csv(Lang::En).starts_with("\u{feff}Time,Amount\r\n"));
        let mut html = Html::new();
        table.html(&mut html, Lang::Vi);
        let html = html.into_string();
        assert!(html.contains("02/07/2026 06:30"), "{html}");
        assert!(html.contains("1.500.000 ₫"), "{html}");
    }
}
