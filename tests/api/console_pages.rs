//! The console pages of an officer's whole job, over real HTTP on both
//! backends: invoices, the dossier register's outcomes, imported
//! statements and their lines, payment attempts, webhook deliveries with
//! dead letters and redeliver, and the audit log; each with its filters,
//! next page and CSV file, each scoped to the officer's agency; and every
//! console page read in Vietnamese for an English message or a raw code.

use lephi::domain::Role;
use lephi::domain::officer::OfficerRole;
use serde_json::Value;

use crate::console::{
    Answer, Session, field_value, new_officer, overpaid_transfer, sign_in, sign_in_as,
};
use crate::helpers::{Backend, PaymentsApp, spawn_payments_app_with};
use crate::on_both_backends;
use crate::payments::{rsp_code, vnpay_attempt, vnpay_ipn_paid_at};
use crate::webhooks::{SECRET, hook_url, receiver_answering, set_webhook, wait_for_status};

on_both_backends!(
    the_officers_pages_list_filter_and_download_their_records,
    each_new_page_shows_only_the_officers_agency,
    every_console_page_reads_in_vietnamese,
    the_resolution_form_offers_what_fits_and_the_payments_to_match,
    an_admin_signs_in_with_a_second_factor_and_works_every_new_page_in_a_browser,
);

/// What the pages have to show: an overpaid transfer (with its exception
/// and its events, dead after one failed delivery), a VNPay payment
/// settled by an imported statement, a pending attempt, and a register.
struct Seeded {
    overpaid: Value,
    exception: String,
    pending_order: String,
    statement: String,
    register: String,
    /// How many events died.
    dead: usize,
    receiver: wiremock::MockServer,
}

async fn seeded(backend: Backend) -> (PaymentsApp, Seeded) {
    let app = spawn_payments_app_with(backend, |settings| {
        settings.webhooks.max_attempts = 1;
    })
    .await;
    let receiver = receiver_answering(wiremock::ResponseTemplate::new(500)).await;
    set_webhook(&app.app, "P.D1", &hook_url(&receiver), SECRET).await;
    let (overpaid, exception) = overpaid_transfer(&app, "HS-TRANG-1", 9701).await;
    // Paid by VNPay, then settled by a statement.
    let (_, attempt) = vnpay_attempt(&app, "HS-TRANG-2").await;
    let order_ref = attempt["order_ref"].as_str().unwrap().to_owned();
    let ipn = vnpay_ipn_paid_at(&order_ref, 650_000, "88001", "00", "20261001100000");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    let file = format!(
        "{}\n88001,{order_ref},650000,3300,2026-10-01T10:00:00+07:00,2026-10-02\n",
        crate::settlements::CANONICAL
    );
    let statement = app
        .app
        .import_statement(
            "/v1/settlements?channel=vnpay",
            &app.finance_key,
            file.into_bytes(),
        )
        .await;
    assert_eq!(statement.import_status(), "done", "{}", statement.text);
    let statement = statement.json()["id"].as_str().unwrap().to_owned();
    // An attempt the citizen left half way.
    let (_, pending) = vnpay_attempt(&app, "HS-TRANG-3").await;
    let register = app
        .app
        .import_register(
            &app.finance_key,
            "dossier_code,agency_code,procedure_code,fee_amount,received_at,status\n\
             HS-TRANG-1,P.D1,1.004227,650000,2026-11-28T08:30:00+07:00,received\n\
             HS-TRANG-2,P.D1,1.004227,650000,2026-11-28T08:45:00+07:00,received\n\
             HS-TRANG-9,P.D1,1.004227,650000,2026-11-28T09:00:00+07:00,received\n"
                .as_bytes()
                .to_vec(),
        )
        .await;
    assert_eq!(register.import_status(), "done", "{}", register.text);
    let register = register.json()["id"].as_str().unwrap().to_owned();
    // Every event dies after its one delivery.
    wait_for_status(&app.app, &app.finance_key, "pending", 0).await;
    let dead = app
        .app
        .get("/v1/events?status=dead&limit=100", &app.finance_key)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert!(dead >= 2, "{dead}");
    (
        app,
        Seeded {
            overpaid,
            exception,
            pending_order: pending["order_ref"].as_str().unwrap().to_owned(),
            statement,
            register,
            dead,
            receiver,
        },
    )
}

/// A page that must be there, as an officer gets it.
async fn page(session: &Session, path: &str) -> String {
    let answer = session.get(path).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    answer.text
}

/// A CSV file: its header and rows, each a line.
async fn file(session: &Session, path: &str) -> Vec<String> {
    let answer = session.get(path).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{path}"
    );
    assert!(answer.text.starts_with('\u{feff}'), "{path}");
    answer
        .text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn the_officers_pages_list_filter_and_download_their_records(backend: Backend) {
    let (app, seeded) = seeded(backend).await;
    let code = seeded.overpaid["payment_code"].as_str().unwrap();
    let session = sign_in(&app, &app.finance_key).await;

    // Invoices, by status and dossier, each linking to its page.
    let invoices = page(&session, "/console/invoices").await;
    assert!(
        invoices.contains(code) && invoices.contains("HS-TRANG-3"),
        "{invoices}"
    );
    let paid = page(&session, "/console/invoices?status=paid").await;
    assert!(
        paid.contains(code) && !paid.contains("HS-TRANG-3"),
        "{paid}"
    );
    let id = seeded.overpaid["id"].as_str().unwrap();
    assert!(paid.contains(&format!("/console/invoices/{id}")), "{paid}");
    let one = page(&session, "/console/invoices?dossier=HS-TRANG-3").await;
    assert!(!one.contains(code) && one.contains("HS-TRANG-3"), "{one}");
    let csv = file(&session, "/console/invoices?status=paid&format=csv").await;
    assert!(
        csv[0].starts_with("Ngày tạo,Mã thanh toán,Mã hồ sơ,Thủ tục,Cơ quan,Trạng thái"),
        "{csv:?}"
    );
    assert!(
        csv.iter()
            .any(|l| l.contains(code) && l.contains("Đã thanh toán")),
        "{csv:?}"
    );
    assert!(csv[1].contains("+07:00"), "{csv:?}");
    let english = file(&session, "/console/invoices?status=paid&format=csv&lang=en").await;
    assert!(
        english[0].starts_with("Created,Payment code,"),
        "{english:?}"
    );

    // The register's outcomes.
    let register = page(&session, "/console/register").await;
    assert!(register.contains("HS-TRANG-1") && register.contains("HS-TRANG-9"));
    let unpaid = page(&session, "/console/register?outcome=unpaid").await;
    assert!(
        unpaid.contains("HS-TRANG-9") && !unpaid.contains("HS-TRANG-1<"),
        "{unpaid}"
    );
    assert!(unpaid.contains("Chưa nộp"), "{unpaid}");
    let overpaid = file(&session, "/console/register?outcome=overpaid&format=csv").await;
    assert_eq!(overpaid.len(), 2, "{overpaid:?}");
    assert!(overpaid[1].contains("HS-TRANG-1") && overpaid[1].contains("Nộp thừa"));

    // Statements, and a statement's lines by outcome.
    let statements = page(&session, "/console/statements").await;
    let lines_href = format!("/console/statements/{}", seeded.statement);
    assert!(statements.contains(&lines_href), "{statements}");
    assert!(statements.contains("Đã xong"), "{statements}");
    // Who imported it: the finance key, by its name.
    assert!(statements.contains("Phần mềm kế toán"), "{statements}");
    let job = page(
        &session,
        &format!("/console/uploads/statements/{}", seeded.statement),
    )
    .await;
    assert!(
        job.contains("id=\"imported-by\">Người nhập: Phần mềm kế toán"),
        "{job}"
    );
    let lines = page(&session, &lines_href).await;
    assert!(lines.contains("88001") && lines.contains("Khớp với giao dịch đã ghi nhận"));
    let mismatched = page(&session, &format!("{lines_href}?outcome=amount_mismatch")).await;
    assert!(!mismatched.contains("88001"), "{mismatched}");
    let csv = file(&session, &format!("{lines_href}?format=csv")).await;
    assert!(csv[0].starts_with("Dòng,Mã giao dịch,"), "{csv:?}");
    assert!(csv[1].contains(",650000,3300,"), "{csv:?}");

    // Attempts, by status.
    let attempts = page(&session, "/console/attempts?status=pending").await;
    assert!(attempts.contains(&seeded.pending_order), "{attempts}");
    assert!(attempts.contains("Đang chờ cổng xác nhận"), "{attempts}");
    let succeeded = page(&session, "/console/attempts?status=succeeded").await;
    assert!(!succeeded.contains(&seeded.pending_order), "{succeeded}");

    // Dead letters, redelivered by the officer, and the audit names them.
    let webhooks = page(&session, "/console/webhooks?status=dead").await;
    assert!(
        webhooks.contains(&format!(
            "id=\"dead-letters\"><strong class=\"bad\">{}</strong>",
            seeded.dead
        )),
        "{webhooks}"
    );
    assert!(webhooks.contains("Gửi không được (thư chết)"), "{webhooks}");
    let at = webhooks.find("/redeliver\"").expect("a redeliver button");
    let start = webhooks[..at].rfind("/console/webhooks/").unwrap();
    let action = webhooks[start..at + 10].to_owned();
    let csrf = field_value(&webhooks, "csrf");
    let refused = session.post(&action, &[("csrf", "wrong")]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    // The receiver is fixed; the officer sends the event again.
    seeded.receiver.reset().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&seeded.receiver)
        .await;
    let redelivered = session.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(redelivered.status, 303, "{}", redelivered.text);
    assert_eq!(redelivered.location(), "/console/webhooks?redelivered=1");
    wait_for_status(&app.app, &app.finance_key, "dead", seeded.dead - 1).await;
    let after = page(&session, "/console/webhooks?status=dead").await;
    assert!(
        after.contains(&format!(
            "<strong class=\"bad\">{}</strong>",
            seeded.dead - 1
        )),
        "{after}"
    );
    let audit = page(&session, "/console/audit?action=event.redelivery_requested").await;
    assert!(audit.contains("Yêu cầu gửi lại thông báo"), "{audit}");
    assert!(audit.contains("Nguyễn Thị Hoa"), "{audit}");
    assert!(
        words(&audit).iter().all(|w| !w.starts_with("key:")),
        "{audit}"
    );

    // The audit log by person: the officer's own doing only.
    let actor = {
        let at = audit.find("<option value=\"officer:").unwrap() + 15;
        audit[at..at + audit[at..].find('"').unwrap()].to_owned()
    };
    let theirs = file(
        &session,
        &format!("/console/audit?actor={actor}&format=csv"),
    )
    .await;
    assert!(theirs.len() >= 2, "{theirs:?}");
    assert!(
        theirs[0].starts_with("Thời điểm,Người thực hiện,Thao tác"),
        "{theirs:?}"
    );
    assert!(
        theirs[1].contains("Yêu cầu gửi lại thông báo"),
        "{theirs:?}"
    );
    let everyone = file(&session, "/console/audit?format=csv").await;
    assert!(everyone.len() > 5, "{everyone:?}");
    assert!(
        everyone.iter().any(|l| l.contains("Ghi nhận khoản thu")),
        "{everyone:?}"
    );

    // The dashboard: by channel, by procedure, the online payment rate,
    // and this period against the one before (cash of 1 November).
    let open = page(&session, "/console/invoices?dossier=HS-TRANG-3").await;
    let open_id = {
        let at = open.find("href=\"/console/invoices/").unwrap() + 24;
        open[at..at + open[at..].find('"').unwrap()].to_owned()
    };
    let csrf = session.csrf().await;
    let cash = session
        .post(
            &format!("/console/invoices/{open_id}/cash"),
            &[
                ("amount", "650000"),
                ("receipt_number", "BL-0001"),
                ("received_at", "2026-11-01T09:00"),
                ("idempotency_key", "console-cash-trang"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(cash.status, 303, "{}", cash.text);
    // The cash names who recorded it, on its invoice's page.
    let recorded = page(&session, &format!("/console/invoices/{open_id}")).await;
    assert!(recorded.contains("<td>Nguyễn Thị Hoa"), "{recorded}");
    let dashboard = page(
        &session,
        "/console/dashboard?period=custom&from=2026-11-15&to=2026-12-31",
    )
    .await;
    let shown = |id: &str| -> String {
        let at = dashboard
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {dashboard}"));
        let start = at + dashboard[at..].find('>').unwrap() + 1;
        dashboard[start..start + dashboard[start..].find('<').unwrap()].to_owned()
    };
    // HS-TRANG-2 paid exactly by VNPay; HS-TRANG-1 overpaid; HS-TRANG-9 unpaid.
    assert_eq!(shown("online-rate"), "33,33 %");
    assert_eq!(shown("online-dossiers"), "1 / 3 hồ sơ có phí");
    // Before: VNPay's 650.000 ₫ of 1 October and the cash; now: the transfer.
    assert_eq!(shown("compared-amount"), "+50,00 điểm");
    assert_eq!(shown("compared-online"), "—");
    assert!(
        dashboard.contains("Kỳ trước: 29/09/2026 – 14/11/2026"),
        "{dashboard}"
    );
    let by_channel = &dashboard[dashboard.find("id=\"by-channel\"").unwrap()..];
    let by_channel = &by_channel[..by_channel.find("</table>").unwrap()];
    assert!(
        by_channel.contains("Chuyển khoản ngân hàng (VietQR)"),
        "{by_channel}"
    );
    assert!(!by_channel.contains("VNPay") && !by_channel.contains("Tiền mặt tại quầy"));
    assert!(
        dashboard.contains("1.004227 – Cấp giấy phép xây dựng"),
        "{dashboard}"
    );
    let before = page(
        &session,
        "/console/dashboard?period=custom&from=2026-09-29&to=2026-11-14",
    )
    .await;
    assert!(before.contains("id=\"by-channel\""), "{before}");
    assert!(before.contains("VNPay") && before.contains("Tiền mặt tại quầy"));
    let channels = file(
        &session,
        "/console/dashboard?period=custom&from=2026-11-15&to=2026-12-31&format=csv&group_by=channel",
    )
    .await;
    assert!(channels[0].starts_with("Kênh,"), "{channels:?}");
    assert!(
        channels
            .iter()
            .any(|l| l.starts_with("Chuyển khoản ngân hàng (VietQR),")),
        "{channels:?}"
    );
    assert!(
        channels.last().unwrap().starts_with("Tổng,"),
        "{channels:?}"
    );

    // Pages follow: a page of 50, then the next, none shown twice.
    for n in 0..50 {
        app.invoice(&format!("HS-TRANG-P{n}")).await;
    }
    let first = page(&session, "/console/invoices").await;
    let rows = |page: &str| -> Vec<String> {
        page.split("href=\"/console/invoices/")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
            .collect()
    };
    assert_eq!(rows(&first).len(), 50, "{first}");
    let next = {
        let at = first.find("id=\"next-page\" href=\"").expect("a next page") + 21;
        first[at..at + first[at..].find('"').unwrap()].replace("&amp;", "&")
    };
    let second = page(&session, &next).await;
    let more = rows(&second);
    // Three seeded invoices and the fifty, in all.
    assert_eq!(more.len(), 3, "{second}");
    assert!(more.iter().all(|id| !rows(&first).contains(id)));
    assert!(!second.contains("id=\"next-page\""));
    let exceptions = page(&session, "/console/audit?object_type=exception").await;
    assert!(exceptions.contains(&seeded.exception), "{exceptions}");
    let unknown = session.get("/console/audit?action=no.such_action").await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    assert!(
        unknown.text.contains("Bộ lọc chưa đúng"),
        "{}",
        unknown.text
    );
    let _ = seeded.register;
}

async fn each_new_page_shows_only_the_officers_agency(backend: Backend) {
    let (app, seeded) = seeded(backend).await;
    let code = seeded.overpaid["payment_code"].as_str().unwrap();
    let q_key = app.app.key(Role::Finance, "Q").await;
    let q = sign_in(&app, &q_key).await;
    for path in [
        "/console/invoices",
        "/console/invoices?format=csv",
        "/console/register",
        "/console/register?format=csv",
        "/console/statements",
        "/console/attempts",
        "/console/attempts?format=csv",
        "/console/webhooks",
        "/console/webhooks?format=csv",
        "/console/audit",
        "/console/audit?format=csv",
    ] {
        let shown = q.get(path).await;
        assert_eq!(shown.status, 200, "{path}: {}", shown.text);
        for theirs in [
            code,
            "HS-TRANG",
            &seeded.pending_order,
            &seeded.statement,
            "P.D1",
        ] {
            assert!(
                !shown.text.contains(theirs),
                "{path} shows {theirs}: {}",
                shown.text
            );
        }
    }
    for path in [
        "/console/invoices?agency=P.D1",
        "/console/register?agency=P",
        "/console/attempts?agency=P.D1",
    ] {
        let refused = q.get(path).await;
        assert_eq!(refused.status, 404, "{path}: {}", refused.text);
        assert!(
            refused.text.contains("không thuộc phạm vi của bạn"),
            "{path}"
        );
    }
    let lines = q
        .get(&format!("/console/statements/{}", seeded.statement))
        .await;
    assert_eq!(lines.status, 404, "{}", lines.text);
    // P's dead letter is not Q's to send again.
    let p = sign_in(&app, &app.finance_key).await;
    let webhooks = page(&p, "/console/webhooks?status=dead").await;
    let at = webhooks.find("/redeliver\"").unwrap();
    let start = webhooks[..at].rfind("/console/webhooks/").unwrap();
    let action = webhooks[start..at + 10].to_owned();
    let csrf = field_value(&page(&q, "/console/webhooks").await, "csrf");
    let refused = q.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    let still = page(&p, "/console/webhooks?status=dead").await;
    assert!(
        still.contains(&format!("<strong class=\"bad\">{}</strong>", seeded.dead)),
        "{still}"
    );
}

/// The words of a page a person reads: no markup, style or attributes.
fn words(html: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        text.push_str(&rest[..at]);
        text.push(' ');
        let tag = &rest[at..];
        let skip_to = if tag.starts_with("<style") {
            tag.find("</style>").map(|e| e + 8)
        } else {
            tag.find('>').map(|e| e + 1)
        };
        match skip_to {
            Some(end) => rest = &tag[end..],
            None => {
                rest = "";
            }
        }
    }
    text.push_str(rest);
    let text = text
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    text.split_whitespace()
        .filter(|w| !w.contains('@') && !w.contains("://"))
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')
                .to_owned()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// English words a Vietnamese page has no business showing.
const ENGLISH: &[&str] = &[
    "the",
    "and",
    "was",
    "were",
    "not",
    "must",
    "found",
    "invoice",
    "invoices",
    "payment",
    "payments",
    "refund",
    "refunds",
    "exception",
    "exceptions",
    "status",
    "nothing",
    "download",
    "next",
    "page",
    "error",
    "received",
    "owed",
    "settled",
    "dossier",
    "agency",
    "with",
    "this",
    "could",
    "there",
    "amount",
    "matched",
    "unknown",
    "missing",
    "line",
    "lines",
    "imported",
    "pending",
    "failed",
    "succeeded",
    "delivered",
    "recorded",
    "sign",
    "password",
    "officer",
];

/// What on a Vietnamese page is English or a raw code, if anything.
fn not_vietnamese(html: &str) -> Vec<String> {
    let codes = lephi::console::labels::codes();
    let words = words(html);
    // A file's own column, which a refused line names after "cột".
    let columns: Vec<usize> = (1..words.len()).filter(|i| words[i - 1] == "cột").collect();
    words
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !columns.contains(i))
        .map(|(_, w)| w)
        .filter(|w| {
            let lower = w.to_lowercase();
            // A query parameter written out (`basis=recorded`).
            let parameter = w.contains('=');
            let snake = w.contains('_')
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
            let dotted_code = w.contains('.')
                && w.split('.').count() == 2
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
            codes.contains(&w.as_str())
                || ENGLISH.contains(&lower.as_str())
                || snake
                || parameter
                || dotted_code
                || w.starts_with("key:")
                || w.starts_with("officer:")
                || w.starts_with("system:")
        })
        .collect()
}

async fn every_console_page_reads_in_vietnamese(backend: Backend) {
    let (app, seeded) = seeded(backend).await;
    let email = new_officer(&app.app, OfficerRole::Admin, None).await;
    let (session, _) = sign_in_as(&app.app, &email).await;
    let invoice = seeded.overpaid["id"].as_str().unwrap();
    let code = seeded.overpaid["payment_code"].as_str().unwrap();
    // A refused line and a refused form, as an officer meets them.
    let refused = app
        .app
        .import_statement(
            "/v1/settlements?channel=vnpay",
            &app.finance_key,
            format!(
                "{}\n88002,X,-5,0,2026-10-01T10:00:00+07:00,2026-10-02\n",
                crate::settlements::CANONICAL
            )
            .into_bytes(),
        )
        .await;
    assert_eq!(refused.import_status(), "refused", "{}", refused.text);
    let refused_import = refused.json()["id"].as_str().unwrap().to_owned();
    let csrf = session.csrf().await;
    let cash_refused = session
        .post(
            &format!("/console/invoices/{invoice}/cash"),
            &[
                ("amount", "-1"),
                ("receipt_number", "R-1"),
                ("received_at", "2026-11-01T09:00"),
                ("idempotency_key", "k-vi-1"),
                ("csrf", &csrf),
            ],
        )
        .await;
    let resolve_refused = session
        .post(
            &format!("/console/exceptions/{}/resolve", seeded.exception),
            &[
                ("resolution", "matched_manually"),
                ("note", "x"),
                ("csrf", &csrf),
            ],
        )
        .await;
    // A refund waiting for its approver.
    let twice = app.invoice("HS-TRANG-HAI").await;
    let held = crate::refunds::paid_twice(&app, &twice, 9750).await;
    let asked = crate::refunds::ask(
        &app,
        &app.finance_key,
        held["id"].as_str().unwrap(),
        650_000,
        "vi-refund-1",
    )
    .await;
    assert_eq!(asked.status, 201, "{}", asked.text);
    let refund = asked.json()["id"].as_str().unwrap().to_owned();
    // The pages before the console: signing in, and setting up the second
    // factor.
    let signed_out = reqwest::get(format!("{}/console", app.app.address))
        .await
        .unwrap();
    let sign_in_page = Answer {
        status: signed_out.status().as_u16(),
        headers: signed_out.headers().clone(),
        text: signed_out.text().await.unwrap(),
    };
    let enrolling = new_officer(&app.app, OfficerRole::Approver, Some("P")).await;
    let password_taken =
        crate::console::officer_sign_in_answer(&app.app, &enrolling, crate::console::PASSWORD, "")
            .await;
    let enrolment = Session::of(&app.app, &crate::console::cookie_of(&password_taken))
        .get("/console/second-factor")
        .await;
    let wrong_password =
        crate::console::officer_sign_in_answer(&app.app, &enrolling, "sai mật khẩu rồi", "").await;
    let mut pages: Vec<(String, Answer)> = vec![
        ("cash refused".into(), cash_refused),
        ("resolution refused".into(), resolve_refused),
        ("/console signed out".into(), sign_in_page),
        ("/console/second-factor".into(), enrolment),
        ("a wrong password".into(), wrong_password),
    ];
    for path in [
        "/console/dashboard".to_owned(),
        "/console/dashboard?period=custom&from=2026-10-01&to=2026-12-31".to_owned(),
        "/console/exceptions".to_owned(),
        "/console/exceptions?status=all".to_owned(),
        format!("/console/exceptions/{}", seeded.exception),
        "/console/uploads".to_owned(),
        format!("/console/uploads/statements/{}", seeded.statement),
        format!("/console/uploads/statements/{refused_import}"),
        format!("/console/uploads/registers/{}", seeded.register),
        "/console/payments".to_owned(),
        format!("/console/payments?q={code}"),
        format!("/console/invoices/{invoice}"),
        "/console/invoices".to_owned(),
        "/console/register".to_owned(),
        "/console/statements".to_owned(),
        format!("/console/statements/{}", seeded.statement),
        "/console/attempts".to_owned(),
        "/console/webhooks".to_owned(),
        "/console/audit".to_owned(),
        "/console/refunds".to_owned(),
        "/console/refunds?status=requested".to_owned(),
        format!("/console/refunds/{refund}"),
        "/console/officers".to_owned(),
        "/console/password".to_owned(),
        "/console/invoices/no-such-invoice".to_owned(),
        "/console/invoices?status=nonsense".to_owned(),
    ] {
        pages.push((path.clone(), session.get(&path).await));
    }
    for (path, shown) in &pages {
        assert!(shown.status < 500, "{path}: {}", shown.text);
        // Every page is the page itself, but for the refusals asked for.
        let refusal = path.contains("refused")
            || path.contains("wrong")
            || path.contains("no-such")
            || path.contains("nonsense");
        assert_eq!(refusal, shown.status != 200, "{path}: {}", shown.status);
        assert!(
            shown.text.contains("<html lang=\"vi\">"),
            "{path}: {}",
            shown.text
        );
        let wrong = not_vietnamese(&shown.text);
        assert!(wrong.is_empty(), "{path} shows {wrong:?}: {}", shown.text);
    }
    // CSV files too: their headers and cells.
    for path in [
        "/console/invoices?format=csv",
        "/console/register?format=csv",
        "/console/attempts?format=csv",
        "/console/webhooks?format=csv",
        "/console/audit?format=csv",
        "/console/payments?format=csv",
        "/console/exceptions?format=csv&status=all",
        &format!("/console/statements/{}?format=csv", seeded.statement),
    ] {
        let lines = file(&session, path).await;
        let text = lines.join("\n").replace(',', " ");
        let wrong = not_vietnamese(&text);
        assert!(wrong.is_empty(), "{path} shows {wrong:?}: {lines:?}");
    }
    // The test itself sees an English page for what it is.
    let english = session.get("/console/invoices?lang=en").await;
    assert!(!not_vietnamese(&english.text).is_empty());
}

async fn the_resolution_form_offers_what_fits_and_the_payments_to_match(backend: Backend) {
    let (app, seeded) = seeded(backend).await;
    // A transfer naming no invoice, of what HS-TRANG-1's transfer was.
    let sent = app
        .callback(
            "sepay",
            "",
            crate::payments::sepay_transfer(9790, 700_000, "chuyen tien ho so"),
            &[("Authorization", &crate::payments::sepay_auth())],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let unknown = app
        .app
        .get("/v1/exceptions?kind=unknown_order", &app.finance_key)
        .await
        .json()["items"][0]
        .clone();
    let id = unknown["id"].as_str().unwrap();
    let session = sign_in(&app, &app.finance_key).await;
    let shown = page(&session, &format!("/console/exceptions/{id}")).await;
    let form = &shown[shown.find("id=\"resolve\"").unwrap()..];
    assert!(
        form.contains("value=\"matched_manually\" selected"),
        "{form}"
    );
    assert!(form.contains("value=\"confirmed\""), "{form}");
    assert!(!form.contains("written_off"), "{form}");
    // HS-TRANG-1's transfer of 700.000 ₫ is offered; this one itself is not.
    let offered = app
        .app
        .get(
            &format!(
                "/v1/invoices/{}/payments",
                seeded.overpaid["id"].as_str().unwrap()
            ),
            &app.finance_key,
        )
        .await
        .json()["items"][0]
        .clone();
    let offered_id = offered["id"].as_str().unwrap();
    assert!(form.contains(&format!("value=\"{offered_id}\"")), "{form}");
    assert!(!form.contains(&format!(
        "value=\"{}\"",
        unknown["payment_id"].as_str().unwrap()
    )));
    // What does not fit is refused, by the API as by the console.
    let written_off = app
        .app
        .post(
            &format!("/v1/exceptions/{id}/resolve"),
            &app.finance_key,
            &serde_json::json!({ "resolution": "written_off", "note": "x" }),
        )
        .await;
    assert_eq!(written_off.status, 422, "{}", written_off.text);
    assert!(
        written_off.text.contains("does not fit"),
        "{}",
        written_off.text
    );
    // An overpaid transfer's form has no payment to match to: it starts on
    // "confirmed".
    let overpaid = page(
        &session,
        &format!("/console/exceptions/{}", seeded.exception),
    )
    .await;
    let form = &overpaid[overpaid.find("id=\"resolve\"").unwrap()..];
    assert!(form.contains("value=\"confirmed\" selected"), "{form}");
    // Matched to the offered payment, by the officer, named in the answer.
    let csrf = session.csrf().await;
    let resolved = session
        .post(
            &format!("/console/exceptions/{id}/resolve"),
            &[
                ("resolution", "matched_manually"),
                ("note", "Công dân chuyển nhầm, đã đối chiếu"),
                ("payment_id", offered_id),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(resolved.status, 303, "{}", resolved.text);
    let after = app
        .app
        .get(&format!("/v1/exceptions/{id}"), &app.finance_key)
        .await
        .json();
    assert_eq!(
        after["resolution"]["resolution"], "matched_manually",
        "{after}"
    );
    assert_eq!(after["resolution"]["payment_id"], offered_id, "{after}");
    assert!(
        after["resolution"]["resolved_by_name"]
            .as_str()
            .unwrap()
            .starts_with("Nguyễn Thị Hoa"),
        "{after}"
    );
}

/// The time step now.
fn step_now() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap() / 30
}

/// The code of `secret` (base32) for time step `step`.
fn code_at(secret: &str, step: u64) -> String {
    lephi::domain::officer::TotpSecret::from_base32(secret)
        .unwrap()
        .code_at_step(step)
}

async fn an_admin_signs_in_with_a_second_factor_and_works_every_new_page_in_a_browser(
    backend: Backend,
) {
    use crate::browser::{Browser, screenshot_path};
    let (app, seeded) = seeded(backend).await;
    let base = &app.app.address;
    let email = new_officer(&app.app, OfficerRole::Admin, None).await;
    let mut browser = Browser::start(1280, 900).await;

    // First sign-in: the password, then the second factor set up from the
    // QR code's secret.
    browser.goto(&format!("{base}/console")).await;
    browser.type_into("#email", &email).await;
    browser
        .type_into("#password", crate::console::PASSWORD)
        .await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Xác thực hai lớp").await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with("/console/second-factor")
    );
    browser.find("svg[role=img]").await;
    let secret = browser.element_text("#secret").await;
    let enrolled_at = step_now();
    let used = code_at(&secret, enrolled_at);
    browser.type_into("#code", &used).await;
    browser
        .click("form[action*='second-factor'] button[type=submit]")
        .await;
    browser
        .wait_for_text("Tỷ lệ thu phí không dùng tiền mặt")
        .await;
    browser.click("form[action*='sign-out'] button").await;
    browser.wait_for_text("Đăng nhập").await;

    // Again with password and code: the code already used is refused
    // (whatever the time now), the next step's is taken.
    for (code, signed_in) in [
        (used.clone(), false),
        (code_at(&secret, enrolled_at + 1), true),
    ] {
        browser.goto(&format!("{base}/console")).await;
        browser.type_into("#email", &email).await;
        browser
            .type_into("#password", crate::console::PASSWORD)
            .await;
        browser.type_into("#code", &code).await;
        browser.click("form button[type=submit]").await;
        if signed_in {
            browser
                .wait_for_text("Tỷ lệ thu phí không dùng tiền mặt")
                .await;
        } else {
            let page = browser.wait_for_text("đã được dùng").await;
            assert!(!page.contains("Tỷ lệ thu phí"), "{page}");
        }
    }

    // Every new page, on a desktop and on a tablet, checked for access.
    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let pages = [
        (
            "invoices",
            "/console/invoices".to_owned(),
            "Yêu cầu thanh toán",
        ),
        ("register", "/console/register".to_owned(), "Sổ hồ sơ"),
        (
            "statements",
            "/console/statements".to_owned(),
            "Sao kê đã nhập",
        ),
        (
            "statement-lines",
            format!("/console/statements/{}", seeded.statement),
            "Khớp với giao dịch đã ghi nhận",
        ),
        (
            "attempts",
            "/console/attempts".to_owned(),
            "Giao dịch trực tuyến",
        ),
        ("webhooks", "/console/webhooks".to_owned(), "thư chết"),
        ("audit", "/console/audit".to_owned(), "Nhật ký thao tác"),
        ("officers", "/console/officers".to_owned(), "Cán bộ"),
        (
            "dashboard",
            "/console/dashboard?period=custom&from=2026-11-15&to=2026-12-31".to_owned(),
            "Tỷ lệ hồ sơ nộp trực tuyến",
        ),
        (
            "exception",
            format!("/console/exceptions/{}", seeded.exception),
            "Cách xử lý",
        ),
    ];
    for (width, height, device) in [(1280, 900, "desktop"), (820, 1180, "tablet")] {
        browser.resize(width, height).await;
        for (name, path, words) in &pages {
            browser.goto(&format!("{base}{path}")).await;
            browser.wait_for_text(words).await;
            if device == "desktop" {
                crate::console::check_accessibility(&browser, "vi").await;
            }
            // Nothing is wider than the screen but the tables, which scroll
            // in their card.
            let wide = browser
                .execute("return document.documentElement.scrollWidth > window.innerWidth + 1")
                .await;
            assert_eq!(wide, Value::Bool(false), "{name} on a {device}");
            browser
                .screenshot(&screenshot_path(&format!(
                    "console-{name}-{device}-{backend_name}.png"
                )))
                .await;
        }
    }
    // The dead letter redelivered from the page, by the admin, audited.
    browser.resize(1280, 900).await;
    browser
        .goto(&format!("{base}/console/webhooks?status=dead"))
        .await;
    browser.click("form[action*='/redeliver'] button").await;
    browser.wait_for_text("Đã yêu cầu gửi lại").await;
    browser
        .goto(&format!(
            "{base}/console/audit?action=event.redelivery_requested"
        ))
        .await;
    let audit = browser.wait_for_text("Yêu cầu gửi lại thông báo").await;
    assert!(audit.contains(&email), "{audit}");
    browser.close().await;
}
