//! `/console/dashboard`: the cashless rate for a period, by amount and by
//! count, for the officer's agencies: in total, by level, by month and by
//! agency. Every figure comes from the store's cashless report, the very
//! function `GET /v1/reports/cashless` calls (payments as recorded, by the
//! day collected), so the two always agree; every figure links to the
//! payments behind it. `?format=csv&group_by=...` downloads the report's
//! own CSV.

use actix_web::http::StatusCode;

use super::labels::Label;
use actix_web::{HttpRequest, HttpResponse, web};
use time::{Date, Month};

use super::chart::{Column, Series, rate_chart};
use super::{
    AGENCY, DOWNLOAD_CSV, FILTER, LEVEL, NOTHING, Officer, Section, csv_file, lang_field, lang_of,
    link, query_of, session, today, value,
};
use crate::domain::AgencyLevel;
use crate::domain::payment::Channel;
use crate::domain::rates::{
    Basis, CashlessReport, Figures, GroupBy, GroupKey, Period, Rate, ReportQuery,
};
use crate::domain::settlement::format_day;
use crate::error::ApiError;
use crate::pages::{Html, Lang, Text, text};
use crate::startup::AppState;

const RATE_BY_AMOUNT: Text = text!("Tỷ lệ theo số tiền", "Rate by amount");
const RATE_BY_COUNT: Text = text!("Tỷ lệ theo số hồ sơ", "Rate by count");
const CASHLESS_AMOUNT: Text = text!("Không dùng tiền mặt", "Cashless");
const CASH_AMOUNT: Text = text!("Tiền mặt", "Cash");
const TOTAL_AMOUNT: Text = text!("Tổng số tiền", "Total amount");
const TOTAL_REFUNDED: Text = text!("Đã hoàn trả", "Refunded");
const CASHLESS_COUNT: Text = text!("Hồ sơ không dùng tiền mặt", "Paid cashless");
const TOTAL_COUNT: Text = text!("Hồ sơ đã nộp", "Dossiers paid");

const AMOUNT_COLOUR: &str = "#0b5cad";
const COUNT_COLOUR: &str = "#b35c00";

/// The periods the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    ThisMonth,
    LastMonth,
    ThisYear,
    Custom,
}

impl Choice {
    const ALL: [Choice; 4] = [
        Choice::ThisMonth,
        Choice::LastMonth,
        Choice::ThisYear,
        Choice::Custom,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Choice::ThisMonth => "this_month",
            Choice::LastMonth => "last_month",
            Choice::ThisYear => "this_year",
            Choice::Custom => "custom",
        }
    }

    fn name(self) -> &'static Text {
        match self {
            Choice::ThisMonth => &text!("Tháng này", "This month"),
            Choice::LastMonth => &text!("Tháng trước", "Last month"),
            Choice::ThisYear => &text!("Năm nay", "This year"),
            Choice::Custom => &text!("Tùy chọn (từ ngày – đến ngày)", "Custom (from – to)"),
        }
    }
}

fn first_of(year: i32, month: Month) -> Option<Date> {
    Date::from_calendar_date(year, month, 1).ok()
}

/// The first and last days of `month` of `year`.
fn month_days(year: i32, month: Month) -> Option<(Date, Date)> {
    let first = first_of(year, month)?;
    let next = if month == Month::December {
        first_of(year + 1, Month::January)?
    } else {
        first_of(year, month.next())?
    };
    Some((first, next.previous_day()?))
}

/// The period chosen: its days as `YYYY-MM-DD`.
fn days_of(choice: Choice, from: Option<&str>, to: Option<&str>) -> Option<(String, String)> {
    let today = today();
    let (first, last) = match choice {
        Choice::ThisMonth => month_days(today.year(), today.month())?,
        Choice::LastMonth => {
            let (first, _) = month_days(today.year(), today.month())?;
            let last = first.previous_day()?;
            month_days(last.year(), last.month())?
        }
        Choice::ThisYear => (
            first_of(today.year(), Month::January)?,
            Date::from_calendar_date(today.year(), Month::December, 31).ok()?,
        ),
        Choice::Custom => return Some((from?.to_owned(), to?.to_owned())),
    };
    Some((format_day(first), format_day(last)))
}

/// What the page shows: the groupings of one report query, the same
/// report of the period before, and the dossiers' outcomes of both.
struct Reports {
    level: CashlessReport,
    agency: CashlessReport,
    month: CashlessReport,
    channel: CashlessReport,
    procedure: CashlessReport,
    previous: Option<Previous>,
    online: Online,
}

/// The period of as many days before, as the dashboard compares it.
struct Previous {
    period: Period,
    report: CashlessReport,
    online: Online,
}

/// The online payment rate: dossiers with a fee paid in full online, of
/// all the register's dossiers with a fee received in the period.
#[derive(Clone, Copy)]
struct Online {
    paid_online: u64,
    with_fee: u64,
}

impl Online {
    fn rate(self) -> Option<Rate> {
        Rate::of(
            i64::try_from(self.paid_online).ok()?,
            i64::try_from(self.with_fee).ok()?,
        )
    }
}

async fn online(state: &AppState, officer: &Officer, period: Period) -> Result<Online, ApiError> {
    use super::table::day_start;
    let from = day_start(Some(&period.from()), "from", 0)?;
    let to = day_start(Some(&period.to()), "to", 1)?;
    let counts = state
        .store
        .dossier_outcome_counts(officer.scope(), from, to)
        .await?;
    Ok(Online {
        paid_online: counts
            .get(&crate::domain::dossier::DossierOutcome::PaidCashless)
            .copied()
            .unwrap_or(0),
        with_fee: counts.values().sum(),
    })
}

async fn report(
    state: &AppState,
    officer: &Officer,
    period: Period,
    group_by: GroupBy,
) -> Result<CashlessReport, ApiError> {
    let query = ReportQuery::new(period, Basis::Recorded, group_by, None, None)?;
    Ok(state.store.cashless_report(officer.scope(), &query).await?)
}

pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    let lang = lang_of(&req);
    let query = query_of(&req);
    let choice = value(&query, "period")
        .and_then(|p| Choice::ALL.into_iter().find(|c| c.as_str() == p))
        .unwrap_or(Choice::ThisMonth);
    let from = value(&query, "from");
    let to = value(&query, "to");
    let period = days_of(choice, from, to)
        .ok_or_else(|| {
            lang.pick(&text!(
                "Hãy chọn cả ngày bắt đầu và ngày kết thúc.",
                "Choose both the first and the last day."
            ))
            .to_owned()
        })
        .and_then(|(from, to)| Period::parse(&from, &to).map_err(|e| e.to_string()));
    let period = match period {
        Ok(period) => period,
        Err(message) => {
            let body = filters(lang, choice, from, to, Some(&message));
            return respond(&req, &officer, StatusCode::BAD_REQUEST, body);
        }
    };
    if value(&query, "format") == Some("csv") {
        let group_by = value(&query, "group_by")
            .and_then(GroupBy::parse)
            .unwrap_or(GroupBy::Level);
        return match report(&state, &officer, period, group_by).await {
            Ok(report) => csv_file(
                &format!(
                    "cashless-by-{}-recorded-{}-to-{}.csv",
                    group_by.as_str(),
                    period.from(),
                    period.to()
                ),
                report_csv(&report, lang),
            ),
            Err(err) => super::error_page(&req, Some(&officer), &err),
        };
    }
    let reports = async {
        let previous = match period.previous() {
            Some(before) => Some(Previous {
                period: before,
                report: report(&state, &officer, before, GroupBy::Level).await?,
                online: online(&state, &officer, before).await?,
            }),
            None => None,
        };
        Ok::<_, ApiError>(Reports {
            level: report(&state, &officer, period, GroupBy::Level).await?,
            agency: report(&state, &officer, period, GroupBy::Agency).await?,
            month: report(&state, &officer, period, GroupBy::Month).await?,
            channel: report(&state, &officer, period, GroupBy::Channel).await?,
            procedure: report(&state, &officer, period, GroupBy::Procedure).await?,
            previous,
            online: online(&state, &officer, period).await?,
        })
    };
    let reports = match reports.await {
        Ok(reports) => reports,
        Err(err) => return super::error_page(&req, Some(&officer), &err),
    };
    let mut body = filters(lang, choice, from, to, None);
    body.append(render(lang, period, &reports));
    respond(&req, &officer, StatusCode::OK, body)
}

fn respond(req: &HttpRequest, officer: &Officer, status: StatusCode, body: Html) -> HttpResponse {
    super::officer_page(
        req,
        officer,
        status,
        &super::DASHBOARD,
        Section::Dashboard,
        body,
    )
}

/// The heading and the period form.
fn filters(
    lang: Lang,
    choice: Choice,
    from: Option<&str>,
    to: Option<&str>,
    error: Option<&str>,
) -> Html {
    let mut html = Html::new();
    html.raw("<h1>")
        .t(
            lang,
            &text!(
                "Tỷ lệ thu phí không dùng tiền mặt",
                "Share of fees paid without cash"
            ),
        )
        .raw("</h1>");
    if let Some(error) = error {
        html.raw("<p class=\"message error\" role=\"alert\">")
            .text(error)
            .raw("</p>");
    }
    html.raw("<section class=\"card\"><form class=\"filters\" method=\"get\" action=\"/console/dashboard\">");
    lang_field(&mut html, lang);
    html.raw("<div><label for=\"period\">")
        .t(lang, &text!("Kỳ báo cáo", "Period"))
        .raw("</label><select id=\"period\" name=\"period\">");
    for option in Choice::ALL {
        html.raw("<option value=\"").raw(option.as_str()).raw("\"");
        if option == choice {
            html.raw(" selected");
        }
        html.raw(">").t(lang, option.name()).raw("</option>");
    }
    html.raw("</select></div>");
    super::day_fields(&mut html, lang, from, to);
    html.raw("<div><button type=\"submit\">")
        .t(lang, &FILTER)
        .raw("</button></div></form><p class=\"note\">")
        .t(
            lang,
            &text!(
                "Hai ô ngày dùng cho kỳ tùy chọn. Tính các khoản thanh toán đã ghi cho hồ sơ, theo ngày thu (như báo cáo tỷ lệ không dùng tiền mặt của hệ thống, tính theo ngày ghi nhận): số tiền là số đã thu, tỷ lệ theo số tiền tính trên số tiền giữ lại (đã thu trừ đã hoàn trả); khoản đang giữ (nộp thừa, nộp muộn, sai số tiền) không được tính.",
                "The days are for a custom period. Counts payments applied to invoices, by the day collected (as the report API with basis=recorded): amounts are what was collected and the rate by amount is on what was kept (collected less refunded); money held (paid twice, late, of the wrong amount) is not counted."
            ),
        )
        .raw("</p></section>");
    html
}

/// The parameters of the payments list behind a figure of `period`.
fn behind(
    period: Period,
    scope: &[(&'static str, String)],
    cash: Option<bool>,
) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("from", period.from()),
        ("to", period.to()),
        ("counted", "1".to_owned()),
    ];
    params.extend(scope.iter().cloned());
    if let Some(cash) = cash {
        params.push(("cash", if cash { "1" } else { "0" }.to_owned()));
    }
    params
}

fn payments_link(lang: Lang, params: &[(&'static str, String)]) -> String {
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    link(lang, "/console/payments", &params)
}

/// `2026-10-01` as people write it: `01/10/2026`.
fn day_vi(day: &str) -> String {
    match day.split('-').collect::<Vec<_>>()[..] {
        [year, month, day] => format!("{day}/{month}/{year}"),
        _ => day.to_owned(),
    }
}

/// `2026-10` as people write it: `10/2026`.
fn month_vi(month: &str) -> String {
    match month.split_once('-') {
        Some((year, month)) => format!("{month}/{year}"),
        None => month.to_owned(),
    }
}

fn rate_text(rate: Option<Rate>, lang: Lang) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| percent(r, lang))
}

/// A rate as its readers write it: `93,87 %` in Vietnamese, `93.87%` in
/// English.
pub fn percent(rate: Rate, lang: Lang) -> String {
    match lang {
        Lang::Vi => format!("{} %", rate.display().replace('.', ",")),
        Lang::En => format!("{}%", rate.display()),
    }
}

/// The report as a CSV file in the officer's language: the API's file in
/// English; in Vietnamese its headers, levels, channels and the total row
/// named, and its rates written the Vietnamese way.
fn report_csv(report: &CashlessReport, lang: Lang) -> String {
    if lang == Lang::En {
        return report.to_csv();
    }
    let header: Vec<&str> = report
        .header()
        .into_iter()
        .map(super::labels::report_column)
        .collect();
    let columns = report.header();
    let (groups, mut total) = report.rows(|amount| amount.dong().to_string());
    total[0] = "Tổng".to_owned();
    let rows = groups.into_iter().chain([total]).map(|row| {
        row.into_iter()
            .zip(&columns)
            .map(|(cell, column)| match *column {
                "level" => {
                    AgencyLevel::parse("level", &cell).map_or(cell, |l| l.label(lang).to_owned())
                }
                "channel" => Channel::parse(&cell)
                    .map_or(cell, |c| crate::pages::channel_name(c, lang).to_owned()),
                c if c.starts_with("rate_") && !cell.is_empty() => {
                    format!("{} %", cell.replace('.', ","))
                }
                _ => cell,
            })
            .collect()
    });
    super::export::csv(&header, rows)
}

fn linked(html: &mut Html, href: &str, shown: &str, id: Option<&'static str>) {
    html.raw("<a href=\"").text(href).raw("\"");
    if let Some(id) = id {
        html.raw(" id=\"").raw(id).raw("\"");
    }
    html.raw(">").text(shown).raw("</a>");
}

/// The cells of one row of figures, each linked to its payments.
fn figure_cells(
    html: &mut Html,
    lang: Lang,
    period: Period,
    scope: &[(&'static str, String)],
    figures: &Figures,
    ids: Option<[&'static str; 7]>,
) {
    let all = payments_link(lang, &behind(period, scope, None));
    let cashless = payments_link(lang, &behind(period, scope, Some(false)));
    let cash = payments_link(lang, &behind(period, scope, Some(true)));
    let cells = [
        (&all, rate_text(figures.rate_by_amount(), lang)),
        (&all, rate_text(figures.rate_by_count(), lang)),
        (&cashless, figures.cashless_amount().display_vi()),
        (&cash, figures.cash_amount().display_vi()),
        (&all, figures.total_amount().display_vi()),
        (
            &cashless,
            crate::pages::count(figures.cashless_count().unsigned_abs(), lang),
        ),
        (
            &all,
            crate::pages::count(figures.total_count().unsigned_abs(), lang),
        ),
    ];
    for (i, (href, shown)) in cells.iter().enumerate() {
        html.raw("<td class=\"num\">");
        linked(html, href, shown, ids.map(|ids| ids[i]));
        html.raw("</td>");
    }
}

fn figure_header(html: &mut Html, lang: Lang, first: &Text) {
    html.raw("<thead><tr><th scope=\"col\">")
        .t(lang, first)
        .raw("</th>");
    for label in [
        &RATE_BY_AMOUNT,
        &RATE_BY_COUNT,
        &CASHLESS_AMOUNT,
        &CASH_AMOUNT,
        &TOTAL_AMOUNT,
        &CASHLESS_COUNT,
        &TOTAL_COUNT,
    ] {
        html.raw("<th scope=\"col\" class=\"num\">")
            .t(lang, label)
            .raw("</th>");
    }
    html.raw("</tr></thead>");
}

fn render(lang: Lang, period: Period, reports: &Reports) -> Html {
    let mut html = Html::new();
    let total = &reports.level.total;
    let everything: Vec<(&'static str, String)> = Vec::new();
    html.raw("<h2>")
        .text(&format!(
            "{} – {}",
            day_vi(&period.from()),
            day_vi(&period.to())
        ))
        .raw("</h2><div class=\"figures\">");
    let cards: [(&Text, String, Option<bool>, &'static str); 4] = [
        (
            &RATE_BY_AMOUNT,
            rate_text(total.rate_by_amount(), lang),
            None,
            "rate-by-amount",
        ),
        (
            &RATE_BY_COUNT,
            rate_text(total.rate_by_count(), lang),
            None,
            "rate-by-count",
        ),
        (
            &CASHLESS_AMOUNT,
            total.cashless_amount().display_vi(),
            Some(false),
            "cashless-amount",
        ),
        (
            &TOTAL_AMOUNT,
            total.total_amount().display_vi(),
            None,
            "total-amount",
        ),
    ];
    for (label, shown, cash, id) in cards {
        html.raw("<div class=\"figure\"><div class=\"label\">")
            .t(lang, label)
            .raw("</div><div class=\"value\">");
        linked(
            &mut html,
            &payments_link(lang, &behind(period, &everything, cash)),
            &shown,
            Some(id),
        );
        html.raw("</div></div>");
    }
    // What was given back of the money collected: the rates are on the rest.
    html.raw("<div class=\"figure\"><div class=\"label\">")
        .t(lang, &TOTAL_REFUNDED)
        .raw("</div><div class=\"value\">");
    linked(
        &mut html,
        &format!("/console/refunds?lang={}&status=succeeded", lang.code()),
        &total.total_refunded().display_vi(),
        Some("total-refunded"),
    );
    html.raw("</div></div>");
    html.raw("<div class=\"figure\"><div class=\"label\">")
        .t(lang, &ONLINE_RATE)
        .raw("</div><div class=\"value\"><a id=\"online-rate\" href=\"")
        .text(&link(
            lang,
            "/console/register",
            &[
                ("outcome", "paid_cashless"),
                ("from", &period.from()),
                ("to", &period.to()),
            ],
        ))
        .raw("\">")
        .text(&rate_text(reports.online.rate(), lang))
        .raw("</a></div><div class=\"label\" id=\"online-dossiers\">")
        .text(&format!(
            "{} / {} {}",
            crate::pages::count(reports.online.paid_online, lang),
            crate::pages::count(reports.online.with_fee, lang),
            lang.pick(&text!("hồ sơ có phí", "dossiers with a fee"))
        ))
        .raw("</div></div>");
    html.raw("</div>");
    compared(&mut html, lang, reports);

    // By month.
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &text!("Theo tháng", "By month"))
        .raw("</h2>");
    let series = [
        Series {
            name: &RATE_BY_AMOUNT,
            colour: AMOUNT_COLOUR,
        },
        Series {
            name: &RATE_BY_COUNT,
            colour: COUNT_COLOUR,
        },
    ];
    if reports.month.groups.is_empty() {
        html.raw("<p>").t(lang, &NOTHING).raw("</p>");
    } else {
        let columns: Vec<Column> = reports
            .month
            .groups
            .iter()
            .map(|g| Column {
                label: match &g.key {
                    GroupKey::Month { month } => month_vi(month),
                    _ => String::new(),
                },
                rates: vec![g.figures.rate_by_amount(), g.figures.rate_by_count()],
            })
            .collect();
        html.append(rate_chart(
            lang,
            "chart-month",
            lang.pick(&text!(
                "Tỷ lệ không dùng tiền mặt theo tháng",
                "Cashless rate by month"
            )),
            &series,
            &columns,
        ));
        html.raw("<table><caption>")
            .t(lang, &text!("Theo tháng", "By month"))
            .raw("</caption>");
        figure_header(&mut html, lang, &text!("Tháng", "Month"));
        html.raw("<tbody>");
        for group in &reports.month.groups {
            let GroupKey::Month { month } = &group.key else {
                continue;
            };
            // A month's payments: the month's days inside the period.
            let (first, last) = month_bounds(month, period);
            let within = Period::parse(&first, &last).unwrap_or(period);
            html.raw("<tr><th scope=\"row\">")
                .text(&month_vi(month))
                .raw("</th>");
            figure_cells(&mut html, lang, within, &everything, &group.figures, None);
            html.raw("</tr>");
        }
        html.raw("</tbody></table>");
    }
    html.raw("</section>");

    // By level.
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &text!("Theo cấp", "By level"))
        .raw("</h2>");
    if !reports.level.groups.is_empty() {
        let columns: Vec<Column> = reports
            .level
            .groups
            .iter()
            .map(|g| Column {
                label: match &g.key {
                    GroupKey::Level { level } => level.label(lang).to_owned(),
                    _ => String::new(),
                },
                rates: vec![g.figures.rate_by_amount(), g.figures.rate_by_count()],
            })
            .collect();
        html.append(rate_chart(
            lang,
            "chart-level",
            lang.pick(&text!(
                "Tỷ lệ không dùng tiền mặt theo cấp",
                "Cashless rate by level"
            )),
            &series,
            &columns,
        ));
    }
    html.raw("<table id=\"by-level\"><caption>")
        .t(lang, &text!("Theo cấp", "By level"))
        .raw("</caption>");
    figure_header(&mut html, lang, &LEVEL);
    html.raw("<tbody>");
    for group in &reports.level.groups {
        let GroupKey::Level { level } = &group.key else {
            continue;
        };
        html.raw("<tr><th scope=\"row\">")
            .text(level.label(lang))
            .raw("</th>");
        let scope = [("level", level.as_str().to_owned())];
        figure_cells(&mut html, lang, period, &scope, &group.figures, None);
        html.raw("</tr>");
    }
    html.raw("</tbody><tfoot><tr><th scope=\"row\">")
        .t(lang, &text!("Tổng cộng", "Total"))
        .raw("</th>");
    figure_cells(
        &mut html,
        lang,
        period,
        &everything,
        total,
        Some([
            "total-rate-by-amount",
            "total-rate-by-count",
            "total-cashless-amount",
            "total-cash-amount",
            "total-total-amount",
            "total-cashless-count",
            "total-total-count",
        ]),
    );
    html.raw("</tr></tfoot></table>");
    csv_link(&mut html, lang, period, GroupBy::Level);
    html.raw("</section>");

    // By agency, grouped by level.
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &text!("Theo cơ quan", "By agency"))
        .raw("</h2>");
    if reports.agency.groups.is_empty() {
        html.raw("<p>").t(lang, &NOTHING).raw("</p>");
    }
    for level in [
        AgencyLevel::Province,
        AgencyLevel::District,
        AgencyLevel::Commune,
    ] {
        let rows: Vec<_> = reports
            .agency
            .groups
            .iter()
            .filter(|g| matches!(&g.key, GroupKey::Agency { level: l, .. } if *l == level))
            .collect();
        if rows.is_empty() {
            continue;
        }
        html.raw("<h3>")
            .text(level.label(lang))
            .raw("</h3><table><caption>")
            .text(level.label(lang))
            .raw("</caption>");
        figure_header(&mut html, lang, &AGENCY);
        html.raw("<tbody>");
        for group in rows {
            let GroupKey::Agency {
                agency_code,
                agency_name,
                ..
            } = &group.key
            else {
                continue;
            };
            html.raw("<tr><th scope=\"row\">")
                .text(agency_code.as_str())
                .raw(" – ")
                .text(agency_name)
                .raw("</th>");
            let scope = [
                ("agency", agency_code.to_string()),
                ("agency_only", "1".to_owned()),
            ];
            figure_cells(&mut html, lang, period, &scope, &group.figures, None);
            html.raw("</tr>");
        }
        html.raw("</tbody></table>");
    }
    csv_link(&mut html, lang, period, GroupBy::Agency);
    csv_link(&mut html, lang, period, GroupBy::Month);
    html.raw("</section>");
    by_channel(&mut html, lang, period, &reports.channel);
    by_procedure(&mut html, lang, period, &reports.procedure);
    html
}

const ONLINE_RATE: Text = text!("Tỷ lệ hồ sơ nộp trực tuyến", "Online payment rate");

/// `now` against `before` in percentage points: `+3,75 điểm`.
fn change(now: Option<Rate>, before: Option<Rate>, lang: Lang) -> String {
    match (now, before) {
        (Some(now), Some(before)) => {
            let change = now.change_from(before);
            let sign = if change.is_negative() { "" } else { "+" };
            let shown = match lang {
                Lang::Vi => change.display().replace('.', ","),
                Lang::En => change.display(),
            };
            format!("{sign}{shown} {}", lang.pick(&text!("điểm", "points")))
        }
        _ => "—".to_owned(),
    }
}

/// This period against the one before it, of as many days.
fn compared(html: &mut Html, lang: Lang, reports: &Reports) {
    let Some(previous) = &reports.previous else {
        return;
    };
    let before = previous.period;
    let now = &reports.level.total;
    let then = &previous.report.total;
    let previous_online = previous.online.rate();
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &text!("So với kỳ trước", "Against the period before"))
        .raw("</h2><table id=\"compared\"><caption>")
        .text(&format!(
            "{} {} – {}",
            lang.pick(&text!("Kỳ trước:", "Period before:")),
            day_vi(&before.from()),
            day_vi(&before.to())
        ))
        .raw("</caption><thead><tr><th scope=\"col\"></th><th scope=\"col\" class=\"num\">")
        .t(lang, &text!("Kỳ này", "This period"))
        .raw("</th><th scope=\"col\" class=\"num\">")
        .t(lang, &text!("Kỳ trước", "Period before"))
        .raw("</th><th scope=\"col\" class=\"num\">")
        .t(lang, &text!("Thay đổi", "Change"))
        .raw("</th></tr></thead><tbody>");
    let rows: [(&Text, &'static str, Option<Rate>, Option<Rate>); 3] = [
        (
            &RATE_BY_AMOUNT,
            "compared-amount",
            now.rate_by_amount(),
            then.rate_by_amount(),
        ),
        (
            &RATE_BY_COUNT,
            "compared-count",
            now.rate_by_count(),
            then.rate_by_count(),
        ),
        (
            &ONLINE_RATE,
            "compared-online",
            reports.online.rate(),
            previous_online,
        ),
    ];
    for (label, id, now, then) in rows {
        html.raw("<tr><th scope=\"row\">")
            .t(lang, label)
            .raw("</th><td class=\"num\">")
            .text(&rate_text(now, lang))
            .raw("</td><td class=\"num\">")
            .text(&rate_text(then, lang))
            .raw("</td><td class=\"num\" id=\"")
            .raw(id)
            .raw("\">")
            .text(&change(now, then, lang))
            .raw("</td></tr>");
    }
    for (label, now, then) in [
        (
            &CASHLESS_AMOUNT,
            now.cashless_amount(),
            then.cashless_amount(),
        ),
        (&TOTAL_AMOUNT, now.total_amount(), then.total_amount()),
    ] {
        let difference = crate::domain::Vnd::new(now.dong().saturating_sub(then.dong()));
        let sign = if difference.dong() > 0 { "+" } else { "" };
        html.raw("<tr><th scope=\"row\">")
            .t(lang, label)
            .raw("</th><td class=\"num\">")
            .text(&now.display_vi())
            .raw("</td><td class=\"num\">")
            .text(&then.display_vi())
            .raw("</td><td class=\"num\">")
            .text(&format!("{sign}{}", difference.display_vi()))
            .raw("</td></tr>");
    }
    html.raw("</tbody></table></section>");
}

/// What came through each channel, and its share of all collected.
fn by_channel(html: &mut Html, lang: Lang, period: Period, report: &CashlessReport) {
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &text!("Theo kênh thanh toán", "By channel"))
        .raw("</h2>");
    if report.groups.is_empty() {
        html.raw("<p>").t(lang, &NOTHING).raw("</p></section>");
        return;
    }
    html.raw("<table id=\"by-channel\"><caption>")
        .t(lang, &text!("Theo kênh thanh toán", "By channel"))
        .raw("</caption><thead><tr><th scope=\"col\">")
        .t(lang, &super::CHANNEL)
        .raw("</th><th scope=\"col\" class=\"num\">")
        .t(lang, &super::AMOUNT)
        .raw("</th><th scope=\"col\" class=\"num\">")
        .t(lang, &text!("Số khoản", "Payments"))
        .raw("</th><th scope=\"col\" class=\"num\">")
        .t(lang, &text!("Tỷ trọng số tiền", "Share of the amount"))
        .raw("</th></tr></thead><tbody>");
    let whole = report.total.total_amount().dong();
    for group in &report.groups {
        let GroupKey::Channel { channel } = &group.key else {
            continue;
        };
        let f = &group.figures;
        html.raw("<tr><th scope=\"row\">")
            .text(crate::pages::channel_name(*channel, lang))
            .raw("</th><td class=\"num\">")
            .text(&f.total_amount().display_vi())
            .raw("</td><td class=\"num\">")
            .text(&crate::pages::count(f.total_count().unsigned_abs(), lang))
            .raw("</td><td class=\"num\">")
            .text(&rate_text(Rate::of(f.total_amount().dong(), whole), lang))
            .raw("</td></tr>");
    }
    html.raw("</tbody></table>");
    csv_link(html, lang, period, GroupBy::Channel);
    html.raw("</section>");
}

/// The cashless rate of each procedure.
fn by_procedure(html: &mut Html, lang: Lang, period: Period, report: &CashlessReport) {
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &text!("Theo thủ tục", "By procedure"))
        .raw("</h2>");
    if report.groups.is_empty() {
        html.raw("<p>").t(lang, &NOTHING).raw("</p></section>");
        return;
    }
    html.raw("<table id=\"by-procedure\"><caption>")
        .t(lang, &text!("Theo thủ tục", "By procedure"))
        .raw("</caption>");
    figure_header(html, lang, &text!("Thủ tục", "Procedure"));
    html.raw("<tbody>");
    for group in &report.groups {
        let GroupKey::Procedure {
            procedure_code,
            procedure_name,
        } = &group.key
        else {
            continue;
        };
        let f = &group.figures;
        html.raw("<tr><th scope=\"row\">")
            .text(&format!("{procedure_code} – {procedure_name}"))
            .raw("</th>");
        for shown in [
            rate_text(f.rate_by_amount(), lang),
            rate_text(f.rate_by_count(), lang),
            f.cashless_amount().display_vi(),
            f.cash_amount().display_vi(),
            f.total_amount().display_vi(),
            crate::pages::count(f.cashless_count().unsigned_abs(), lang),
            crate::pages::count(f.total_count().unsigned_abs(), lang),
        ] {
            html.raw("<td class=\"num\">").text(&shown).raw("</td>");
        }
        html.raw("</tr>");
    }
    html.raw("</tbody></table>");
    csv_link(html, lang, period, GroupBy::Procedure);
    html.raw("</section>");
}

/// The days of `month` (`YYYY-MM`) that lie in `period`.
fn month_bounds(month: &str, period: Period) -> (String, String) {
    let first = format!("{month}-01");
    let last = month
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u8>().ok()?)))
        .and_then(|(y, m)| month_days(y, Month::try_from(m).ok()?))
        .map(|(_, last)| format_day(last))
        .unwrap_or_else(|| period.to());
    (first.max(period.from()), last.min(period.to()))
}

fn csv_link(html: &mut Html, lang: Lang, period: Period, group_by: GroupBy) {
    let what = match group_by {
        GroupBy::Level => text!("theo cấp", "by level"),
        GroupBy::Agency => text!("theo cơ quan", "by agency"),
        GroupBy::Channel => text!("theo kênh", "by channel"),
        GroupBy::Procedure => text!("theo thủ tục", "by procedure"),
        GroupBy::Month => text!("theo tháng", "by month"),
    };
    let href = link(
        lang,
        "/console/dashboard",
        &[
            ("period", "custom"),
            ("from", &period.from()),
            ("to", &period.to()),
            ("format", "csv"),
            ("group_by", group_by.as_str()),
        ],
    );
    html.raw("<p><a class=\"button secondary\" href=\"")
        .text(&href)
        .raw("\" download>")
        .t(lang, &DOWNLOAD_CSV)
        .raw(" – ")
        .t(lang, &what)
        .raw("</a></p>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_end_on_their_last_day() {
        let (first, last) = month_days(2028, Month::February).unwrap();
        assert_eq!(
            (format_day(first), format_day(last)),
            ("2028-02-01".into(), "2028-02-29".into())
        );
        let (_, last) = month_days(2026, Month::December).unwrap();
        assert_eq!(format_day(last), "2026-12-31");
        let period = Period::parse("2026-10-15", "2026-11-10").unwrap();
        assert_eq!(
            month_bounds("2026-10", period),
            ("2026-10-15".into(), "2026-10-31".into())
        );
        assert_eq!(
            month_bounds("2026-11", period),
            ("2026-11-01".into(), "2026-11-10".into())
        );
    }
}
