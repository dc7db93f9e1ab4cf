//! `/console/invoices`: the invoices issued in the officer's scope, by
//! status, agency, dossier and day, each linking to its page.

use actix_web::{HttpRequest, HttpResponse, web};

use super::labels::Label;
use super::table::{Cell, Filter, List, ListQuery, Table, agency_filter, choices};
use super::{AGENCY, AMOUNT, DOSSIER, Officer, PAYMENT_CODE, STATUS, Section, lang_of, link};
use crate::domain::InvoiceStatus;
use crate::error::ApiError;
use crate::pages::{Text, text};
use crate::startup::AppState;
use crate::store::InvoiceFilter;

pub const INVOICES: Text = text!("Yêu cầu thanh toán", "Invoices");
const STATUSES: [InvoiceStatus; 4] = [
    InvoiceStatus::Open,
    InvoiceStatus::Paid,
    InvoiceStatus::Cancelled,
    InvoiceStatus::Expired,
];

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    super::table::list_page(req, state, page).await
}

async fn page(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    query: &ListQuery,
) -> Result<List<'static>, ApiError> {
    let lang = lang_of(req);
    let filter = InvoiceFilter {
        dossier_code: query.text("dossier")?,
        status: query.choice("status", InvoiceStatus::parse)?,
        agency_code: query.agency()?,
        created_from: query.from()?,
        created_to: query.to()?,
        after_id: query.cursor(),
        limit: query.limit(),
    };
    let listed = state.store.list_invoices(officer.scope(), &filter).await?;
    let now = crate::domain::Timestamp::now();
    Ok(List {
        section: Section::Invoices,
        title: &INVOICES,
        path: "/console/invoices".to_owned(),
        file: "yeu-cau-thanh-toan.csv",
        filters: vec![
            Filter::Choice {
                name: "status",
                label: &STATUS,
                options: choices(STATUSES, InvoiceStatus::as_str, lang),
            },
            agency_filter(state, officer).await?,
            Filter::Text {
                name: "dossier",
                label: &DOSSIER,
            },
            Filter::Days,
        ],
        intro: crate::pages::Html::new(),
        table: Table {
            id: "invoices",
            caption: &INVOICES,
            columns: &[
                &text!("Ngày tạo", "Created"),
                &PAYMENT_CODE,
                &DOSSIER,
                &text!("Thủ tục", "Procedure"),
                &AGENCY,
                &STATUS,
                &AMOUNT,
                &text!("Đã nộp", "Paid"),
            ],
            rows: listed
                .items
                .iter()
                .map(|invoice| {
                    vec![
                        Cell::Time(invoice.created_at),
                        Cell::link(
                            invoice.payment_code.as_str(),
                            link(lang, &format!("/console/invoices/{}", invoice.id), &[]),
                        ),
                        Cell::text(&invoice.dossier_code),
                        Cell::text(&invoice.procedure_name),
                        Cell::text(invoice.agency_code.as_str()),
                        Cell::text(invoice.status_at(now).label(lang)),
                        Cell::Money(invoice.total),
                        Cell::Money(invoice.amount_paid),
                    ]
                })
                .collect(),
        },
        next_cursor: listed.next_cursor,
    })
}
