//! The built-in sandbox providers: lephi plays VNPay, MoMo, ZaloPay and a
//! bank watched by a SePay-style service itself, under `/sandbox/...`, so
//! that a payment can be tried end to end without any credentials.
//!
//! When the sandbox is on, lephi's own providers are configured with the
//! fixed, public secrets below and pointed at these endpoints, so that the
//! normal provider code (starting a payment, verifying callbacks, status
//! queries) runs unchanged. Each sandbox provider speaks its provider's
//! wire format and signs with lephi's own signing helpers: a payment page
//! with Approve and Decline, the signed callback sent over HTTP to lephi's
//! `/callbacks/...` endpoint, the browser sent back to the return URL, and
//! the status-query API answering from the sandbox's orders.
//!
//! Each gateway's refund API is played too (VNPay's `refund` and
//! `querydr`, MoMo's `refund` and the status query's `refundTrans`,
//! ZaloPay's `refund` and `query_refund`): a refund of a payment the
//! sandbox approved is checked as the provider checks it (its signature,
//! what is left of the payment, a repeated refund id) and answered in the
//! provider's format (VNPay's signed, as VNPay signs its answers). So that
//! the slow paths can be seen, how a refund
//! goes depends on the last digit of its amount in đồng:
//!
//! - `…1` (e.g. 50,001): in progress at the first status query, succeeded
//!   from the second (MoMo and ZaloPay also answer the refund itself with
//!   "in progress");
//! - `…2`: accepted and succeeded, but the refund call is answered only
//!   after `providers.timeout_secs` + 1 seconds, so that lephi gives up
//!   waiting and must ask;
//! - `…3`: the refund fails (VNPay accepts it, then its `querydr` says
//!   rejected, `09`; MoMo and ZaloPay refuse it at once);
//! - any other: VNPay accepts it (`00`) and its first `querydr` says
//!   succeeded; MoMo and ZaloPay answer succeeded at once.
//!
//! The sandbox's orders live in memory, in [`AppState`]: they are fake
//! money that only exists to be approved or declined within minutes, what
//! was paid is recorded by lephi in its database like any payment, and a
//! restart forgetting the sandbox's orders is what a provider's test
//! environment also does (an attempt left pending is then answered as
//! unknown by the status queries). The map is bounded so that nobody can
//! grow it without limit. It is shared by every worker of one process;
//! the sandbox is not meant to run behind several processes.
//!
//! [`AppState`]: crate::startup::AppState

pub mod bank;
pub mod momo;
pub mod vnpay;
pub mod zalopay;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use secrecy::SecretString;

use crate::config::{
    MomoSettings, ProviderSettings, SepaySettings, VnpaySettings, ZalopaySettings,
};
use crate::domain::{Timestamp, Vnd};
use crate::providers::signing::unix_ms;

/// VNPay's terminal code in the sandbox.
pub const VNPAY_TMN_CODE: &str = "SANDBOX1";
/// VNPay's hash secret in the sandbox: public, never a real one.
pub const VNPAY_HASH_SECRET: &str = "SANDBOX-vnpay-hash-secret-public";
pub const MOMO_PARTNER_CODE: &str = "MOMOSANDBOX";
pub const MOMO_ACCESS_KEY: &str = "SANDBOX-momo-access-key";
/// MoMo's secret key in the sandbox: public, never a real one.
pub const MOMO_SECRET_KEY: &str = "SANDBOX-momo-secret-key-public";
pub const ZALOPAY_APP_ID: &str = "9999";
/// ZaloPay's keys in the sandbox: public, never real ones.
pub const ZALOPAY_KEY1: &str = "SANDBOX-zalopay-key1-public";
pub const ZALOPAY_KEY2: &str = "SANDBOX-zalopay-key2-public";
/// The API key the sandbox bank's SePay-style notifications carry.
pub const SEPAY_API_KEY: &str = "SANDBOX-sepay-api-key-public";

/// How many orders each sandbox provider keeps; the oldest is forgotten
/// to make room.
const MAX_ORDERS: usize = 10_000;
/// How many refunds one payment may have (failed ones included).
const MAX_REFUNDS: usize = 100;

/// lephi's providers configured against the sandbox at `public_url`
/// (lephi's own, without a trailing slash).
pub fn provider_settings(public_url: &str, timeout_secs: u64) -> ProviderSettings {
    let secret = |s: &str| SecretString::from(s.to_owned());
    ProviderSettings {
        unattributed_agency: None,
        vnpay: Some(VnpaySettings {
            tmn_code: VNPAY_TMN_CODE.into(),
            hash_secret: secret(VNPAY_HASH_SECRET),
            previous_hash_secret: None,
            payment_url: format!("{public_url}/sandbox/vnpay/paymentv2/vpcpay.html"),
            api_url: format!("{public_url}/sandbox/vnpay/merchant_webapi/api/transaction"),
        }),
        momo: Some(MomoSettings {
            partner_code: MOMO_PARTNER_CODE.into(),
            access_key: MOMO_ACCESS_KEY.into(),
            secret_key: secret(MOMO_SECRET_KEY),
            previous_secret_key: None,
            endpoint: format!("{public_url}/sandbox/momo"),
        }),
        zalopay: Some(ZalopaySettings {
            app_id: ZALOPAY_APP_ID.into(),
            key1: secret(ZALOPAY_KEY1),
            key2: secret(ZALOPAY_KEY2),
            previous_key2: None,
            endpoint: format!("{public_url}/sandbox/zalopay"),
        }),
        sepay: Some(SepaySettings {
            api_key: Some(secret(SEPAY_API_KEY)),
            previous_api_key: None,
            hmac_secret: None,
            previous_hmac_secret: None,
        }),
        casso: None,
        timeout_secs,
    }
}

/// The sandbox providers' state: their orders, and how they reach lephi.
pub struct Sandbox {
    /// lephi's public URL, where the callbacks go and the browser returns.
    public_url: String,
    http: reqwest::Client,
    pub(crate) vnpay: Orders<vnpay::Wire>,
    pub(crate) momo: Orders<momo::Wire>,
    pub(crate) zalopay: Orders<zalopay::Wire>,
    /// The last transaction number given.
    last_txn: Mutex<i64>,
    /// How long a refund whose amount ends in 2 waits before its answer:
    /// longer than lephi's provider timeout.
    late_answer: Duration,
}

impl Sandbox {
    pub fn new(public_url: &str, timeout_secs: u64) -> anyhow::Result<Sandbox> {
        Ok(Sandbox {
            public_url: public_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(timeout_secs))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            vnpay: Orders::default(),
            momo: Orders::default(),
            zalopay: Orders::default(),
            last_txn: Mutex::new(0),
            late_answer: Duration::from_secs(timeout_secs.saturating_add(1)),
        })
    }

    /// Waits, before answering a new refund, as long as its course asks.
    async fn pace(&self, refund: &Refund) {
        if refund.course == Course::AnsweredLate {
            tokio::time::sleep(self.late_answer).await;
        }
    }

    /// Answers a refund request checked by its provider: the answer and,
    /// for a refund newly taken, the refund (paced as its course asks), or
    /// the refusal.
    async fn answer_refund(
        &self,
        checked: Result<(Answer, Option<Refund>), Answer>,
    ) -> HttpResponse {
        if let Ok((_, Some(refund))) = &checked {
            self.pace(refund).await;
        }
        Answer::respond(checked.map(|(answer, _)| answer))
    }

    /// lephi's callback endpoint of `provider`.
    fn callback_url(&self, provider: &str) -> String {
        format!("{}/callbacks/{provider}", self.public_url)
    }

    /// Whether `url` is a page of this lephi: the only place the sandbox
    /// sends a browser back to, so that it is no open redirect.
    fn is_own_url(&self, url: &str) -> bool {
        url.strip_prefix(&self.public_url)
            .is_some_and(|rest| rest.starts_with('/'))
            && !url.chars().any(|c| c.is_control() || c.is_whitespace())
    }

    /// A new transaction number: the time in hundredths of milliseconds,
    /// and always more than the last, so that numbers stay unique across
    /// restarts (lephi records one payment per transaction number).
    fn next_txn(&self) -> i64 {
        let now = unix_ms(Timestamp::now()).saturating_mul(100);
        let mut last = self.last_txn.lock().unwrap_or_else(|e| e.into_inner());
        *last = now.max(last.saturating_add(1));
        *last
    }

    /// Sends a notification `times` times, one after the other, and says
    /// how lephi answered each; a failed delivery is logged, as a provider
    /// would retry it later (or lephi's status queries find the outcome).
    async fn deliver(
        &self,
        times: usize,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Vec<String> {
        let mut answers = Vec::with_capacity(times);
        for _ in 0..times {
            let answer = match request().send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap_or_default();
                    if status >= 300 {
                        tracing::warn!(status, %body, "lephi refused a sandbox notification");
                    }
                    format!(
                        "HTTP {status} {}",
                        body.chars().take(300).collect::<String>()
                    )
                }
                Err(err) => {
                    let err = err.without_url();
                    tracing::warn!(error = %err, "a sandbox notification was not delivered");
                    format!("not delivered: {err}")
                }
            };
            answers.push(answer);
        }
        answers
    }
}

/// What happened to a sandbox order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The payer has not decided yet.
    Pending,
    Paid {
        txn: i64,
        at: Timestamp,
    },
    Declined {
        txn: i64,
        at: Timestamp,
    },
}

impl Outcome {
    /// The provider's transaction number of a decided order.
    fn txn(self) -> Option<i64> {
        match self {
            Outcome::Pending => None,
            Outcome::Paid { txn, .. } | Outcome::Declined { txn, .. } => Some(txn),
        }
    }
}

/// One order at a sandbox provider.
#[derive(Debug, Clone)]
pub(crate) struct Order<W> {
    pub order_ref: String,
    pub amount: Vnd,
    pub description: String,
    /// Where the browser returns, on this lephi.
    pub return_url: Option<String>,
    pub created_at: Timestamp,
    pub outcome: Outcome,
    /// The refunds asked of a paid order, oldest first.
    pub refunds: Vec<Refund>,
    /// What else the provider keeps, in its own words.
    pub wire: W,
}

impl<W> Order<W> {
    /// What is left of a paid order once its refunds that did not fail
    /// are taken off.
    pub fn refundable(&self) -> Vnd {
        let refunded: i64 = self
            .refunds
            .iter()
            .filter(|r| r.status() != RefundStatus::Failed)
            .map(|r| r.amount.dong())
            .sum();
        Vnd::new(self.amount.dong().saturating_sub(refunded))
    }
}

/// How a sandbox refund goes: chosen by the last digit of its amount (see
/// the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Course {
    /// Succeeds (at VNPay, at its first status query).
    Succeeds,
    /// In progress until its second status query, then succeeded.
    SucceedsOnSecondQuery,
    /// Succeeds, but the refund call is answered too late for lephi.
    AnsweredLate,
    Fails,
}

impl Course {
    pub fn of(amount: Vnd) -> Course {
        match amount.dong().rem_euclid(10) {
            1 => Course::SucceedsOnSecondQuery,
            2 => Course::AnsweredLate,
            3 => Course::Fails,
            _ => Course::Succeeds,
        }
    }
}

/// Where a sandbox refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefundStatus {
    InProgress,
    Succeeded,
    Failed,
}

/// A refund a sandbox provider took.
#[derive(Debug, Clone)]
pub(crate) struct Refund {
    /// lephi's id of the refund (VNPay's `vnp_RequestId`, MoMo's refund
    /// `orderId`, ZaloPay's `m_refund_id`).
    pub id: String,
    /// MoMo's `requestId` of the refund; the id again elsewhere.
    pub request_key: String,
    pub amount: Vnd,
    /// The provider's own number of the refund.
    pub txn: i64,
    pub at: Timestamp,
    pub description: String,
    pub course: Course,
    /// How many status queries have seen it.
    pub queries: u32,
}

impl Refund {
    /// A refund of `amount` under `id`, taken now as the provider's
    /// transaction `txn`.
    pub fn new(id: &str, request_key: &str, amount: Vnd, txn: i64, description: &str) -> Refund {
        Refund {
            id: id.to_owned(),
            request_key: request_key.to_owned(),
            amount,
            txn,
            at: Timestamp::now(),
            description: description.to_owned(),
            course: Course::of(amount),
            queries: 0,
        }
    }

    /// Where the refund stands after the status queries that saw it.
    pub fn status(&self) -> RefundStatus {
        match self.course {
            Course::Fails => RefundStatus::Failed,
            Course::SucceedsOnSecondQuery if self.queries < 2 => RefundStatus::InProgress,
            _ => RefundStatus::Succeeded,
        }
    }
}

/// Why a sandbox provider did not take a new refund.
#[derive(Debug, Clone)]
pub(crate) enum RefundRefusal {
    /// No order has this transaction (under this reference).
    UnknownPayment,
    /// The order was not paid.
    NotPaid,
    /// A refund with this id was taken before: itself, with its order.
    Repeated(Box<(Refund, String)>),
    /// More than what is left of the payment.
    OverRefundable { left: Vnd },
    /// The payment has as many refunds as the sandbox keeps.
    TooMany,
}

/// A provider's orders by reference.
pub(crate) struct Orders<W>(Mutex<HashMap<String, Order<W>>>);

impl<W> Default for Orders<W> {
    fn default() -> Self {
        Orders(Mutex::new(HashMap::new()))
    }
}

impl<W: Clone> Orders<W> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Order<W>>> {
        // A panic elsewhere cannot leave a half-written order: every
        // change is one insert or one field set.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, order_ref: &str) -> Option<Order<W>> {
        self.lock().get(order_ref).cloned()
    }

    /// Keeps a new order; `Err` with the order already kept under its
    /// reference, if any.
    pub fn insert(&self, order: Order<W>) -> Result<Order<W>, Box<Order<W>>> {
        let mut orders = self.lock();
        if let Some(existing) = orders.get(&order.order_ref) {
            return Err(Box::new(existing.clone()));
        }
        if orders.len() >= MAX_ORDERS
            && let Some(oldest) = orders
                .values()
                .min_by_key(|o| o.created_at)
                .map(|o| o.order_ref.clone())
        {
            orders.remove(&oldest);
        }
        orders.insert(order.order_ref.clone(), order.clone());
        Ok(order)
    }

    /// The order, with every refund of it seen by one more status query.
    pub fn queried(&self, order_ref: &str) -> Option<Order<W>> {
        let mut orders = self.lock();
        let order = orders.get_mut(order_ref)?;
        for refund in &mut order.refunds {
            refund.queries = refund.queries.saturating_add(1);
        }
        Some(order.clone())
    }

    /// The refund `id`, seen by one more status query.
    pub fn queried_refund(&self, id: &str) -> Option<Refund> {
        let mut orders = self.lock();
        orders.values_mut().find_map(|order| {
            let refund = order.refunds.iter_mut().find(|r| r.id == id)?;
            refund.queries = refund.queries.saturating_add(1);
            Some(refund.clone())
        })
    }

    /// Takes `refund` of the order paid as transaction `txn` (and named
    /// `order_ref`, when the provider's request names it), if it is no
    /// more than what is left of the payment and its id is new.
    pub fn refund(
        &self,
        order_ref: Option<&str>,
        txn: i64,
        refund: Refund,
    ) -> Result<Refund, RefundRefusal> {
        let mut orders = self.lock();
        if let Some(repeated) = orders.values().find_map(|order| {
            let kept = order.refunds.iter().find(|r| r.id == refund.id)?;
            Some((kept.clone(), order.order_ref.clone()))
        }) {
            return Err(RefundRefusal::Repeated(Box::new(repeated)));
        }
        let order = match order_ref {
            Some(order_ref) => orders.get_mut(order_ref),
            None => orders
                .values_mut()
                .find(|order| order.outcome.txn() == Some(txn)),
        }
        .ok_or(RefundRefusal::UnknownPayment)?;
        if !matches!(order.outcome, Outcome::Paid { .. }) {
            return Err(RefundRefusal::NotPaid);
        }
        if order.outcome.txn() != Some(txn) {
            return Err(RefundRefusal::UnknownPayment);
        }
        let left = order.refundable();
        if refund.amount > left {
            return Err(RefundRefusal::OverRefundable { left });
        }
        if order.refunds.len() >= MAX_REFUNDS {
            return Err(RefundRefusal::TooMany);
        }
        order.refunds.push(refund.clone());
        Ok(refund)
    }

    /// Records the payer's decision on a pending order, once.
    pub fn decide(&self, order_ref: &str, outcome: Outcome) -> Result<Order<W>, Refusal> {
        let mut orders = self.lock();
        let order = orders
            .get_mut(order_ref)
            .ok_or_else(Refusal::unknown_order)?;
        if order.outcome != Outcome::Pending {
            return Err(Refusal::new(
                StatusCode::CONFLICT,
                "Đơn hàng này đã được xử lý. / This order was already approved or declined.",
            ));
        }
        order.outcome = outcome;
        Ok(order.clone())
    }
}

/// The payer's choice on a payment page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Approve,
    Decline,
}

/// What a payment page's form sends.
pub(crate) struct DecisionForm {
    pub order_ref: String,
    pub decision: Decision,
    /// Deliver the notification twice, as providers sometimes do.
    pub twice: bool,
}

impl DecisionForm {
    /// What the payer's decision makes of the order, now, as transaction
    /// `txn`.
    pub fn outcome(&self, txn: i64) -> Outcome {
        let at = Timestamp::now();
        match self.decision {
            Decision::Approve => Outcome::Paid { txn, at },
            Decision::Decline => Outcome::Declined { txn, at },
        }
    }

    /// Parses `order=...&decision=approve|decline[&twice=1]`.
    pub fn parse(body: &[u8]) -> Result<DecisionForm, Refusal> {
        let fields = form_fields(body)?;
        let order_ref = required(&fields, "order")?;
        let decision = match required(&fields, "decision")?.as_str() {
            "approve" => Decision::Approve,
            "decline" => Decision::Decline,
            _ => return Err(Refusal::bad_request("decision must be approve or decline")),
        };
        let twice = fields.contains_key("twice");
        Ok(DecisionForm {
            order_ref,
            decision,
            twice,
        })
    }

    pub fn times(&self) -> usize {
        if self.twice { 2 } else { 1 }
    }
}

/// Form or query fields, each at most once and visible text.
pub(crate) fn form_fields(bytes: &[u8]) -> Result<HashMap<String, String>, Refusal> {
    let mut fields = HashMap::new();
    for (key, value) in form_urlencoded::parse(bytes) {
        if value.chars().count() > 2_000 || value.chars().any(|c| c.is_control()) {
            return Err(Refusal::bad_request(format!(
                "{key} must be at most 2000 visible characters"
            )));
        }
        if fields.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(Refusal::bad_request(format!("{key} is given twice")));
        }
    }
    Ok(fields)
}

pub(crate) fn required(fields: &HashMap<String, String>, key: &str) -> Result<String, Refusal> {
    match fields.get(key) {
        Some(value) if !value.is_empty() => Ok(value.clone()),
        _ => Err(Refusal::bad_request(format!("{key} is missing"))),
    }
}

/// An order reference as every gateway takes it: 1 to 64 ASCII letters,
/// digits, `-`, `_` or `.`.
pub(crate) fn is_order_ref(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A provider API's answer: an HTTP status and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl Answer {
    pub fn new(status: StatusCode, body: serde_json::Value) -> Answer {
        Answer { status, body }
    }

    pub fn ok(body: serde_json::Value) -> Answer {
        Answer::new(StatusCode::OK, body)
    }

    /// The answer of a checked request, or of its refusal.
    pub fn respond(result: Result<Answer, Answer>) -> HttpResponse {
        let answer = result.unwrap_or_else(|refused| refused);
        HttpResponse::build(answer.status).json(answer.body)
    }
}

/// Why a sandbox page refused a request, for the payer to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forged() -> Refusal {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "Chữ ký không hợp lệ. / The payment link's signature does not match: it was not made by lephi.",
        )
    }

    pub fn unknown_order() -> Refusal {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "Không tìm thấy đơn hàng. / The sandbox knows no such order.",
        )
    }

    /// The refusal as an HTML page.
    pub fn page(&self) -> HttpResponse {
        page(
            self.status,
            "Không thể thanh toán / Cannot pay",
            &format!("<p class=\"error\">{}</p>", esc(&self.message)),
        )
    }
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A sandbox page: server-rendered, no JavaScript, clearly marked.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>SANDBOX · {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 0 auto; padding: 1rem; color: #222; }}
.banner {{ background: #b00020; color: #fff; padding: .6rem 1rem; font-weight: bold; border-radius: .3rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ text-align: left; padding: .3rem .8rem .3rem 0; vertical-align: top; }}
button {{ font-size: 1rem; padding: .6rem 1.2rem; margin: .5rem .5rem 0 0; }}
.approve {{ background: #1b5e20; color: #fff; }}
.decline {{ background: #eee; }}
.error {{ color: #b00020; font-weight: bold; }}
input[type=text] {{ width: 100%; font-size: 1rem; padding: .3rem; }}
code {{ word-break: break-all; }}
</style>
</head>
<body>
<p class="banner">SANDBOX — Môi trường thử nghiệm, không có tiền thật. / Test environment, no real money moves.</p>
<h1>{title}</h1>
{body}
</body>
</html>
"#,
        title = esc(title),
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(html)
}

/// The order's details, as a payment page shows them.
pub(crate) fn order_table(
    merchant: &str,
    order_ref: &str,
    description: &str,
    amount: Vnd,
) -> String {
    format!(
        "<table>\
<tr><th>Đơn vị nhận tiền / Merchant</th><td>{}</td></tr>\
<tr><th>Mã đơn hàng / Order</th><td><code>{}</code></td></tr>\
<tr><th>Nội dung / Description</th><td>{}</td></tr>\
<tr><th>Số tiền / Amount</th><td><strong>{}</strong></td></tr>\
</table>",
        esc(merchant),
        esc(order_ref),
        esc(description),
        esc(&amount.display_vi()),
    )
}

/// The Approve and Decline buttons, posting to `action`.
pub(crate) fn decision_form(action: &str, order_ref: &str, declined_note: &str) -> String {
    format!(
        r#"<form method="post" action="{}">
<input type="hidden" name="order" value="{}">
<p><label><input type="checkbox" name="twice" value="1"> Gửi thông báo hai lần / deliver the notification twice</label></p>
<button class="approve" type="submit" name="decision" value="approve">Thanh toán / Approve</button>
<button class="decline" type="submit" name="decision" value="decline">Từ chối / Decline</button>
</form>
<p><small>{}</small></p>"#,
        esc(action),
        esc(order_ref),
        esc(declined_note),
    )
}

/// Sends the browser on to `url` after a decision.
pub(crate) fn see_other(url: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, url))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}

/// `url` with `query` appended.
pub(crate) fn with_query(url: &str, query: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

/// A page for a decision with nowhere to return to.
pub(crate) fn done_page(decision: Decision, answers: &[String]) -> HttpResponse {
    let what = match decision {
        Decision::Approve => "Đã thanh toán / Approved",
        Decision::Decline => "Đã từ chối / Declined",
    };
    let answers: String = answers
        .iter()
        .map(|a| format!("<li><code>{}</code></li>", esc(a)))
        .collect();
    page(
        StatusCode::OK,
        what,
        &format!("<p>lephi đã trả lời / lephi answered:</p><ul>{answers}</ul>"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn only_own_urls_are_return_urls() {
        let sandbox = Sandbox::new("http://127.0.0.1:8080/", 1).unwrap();
        assert!(sandbox.is_own_url("http://127.0.0.1:8080/pay/LP2/return/vnpay"));
        assert!(!sandbox.is_own_url("http://127.0.0.1:8080.evil.example/pay"));
        assert!(!sandbox.is_own_url("https://evil.example/http://127.0.0.1:8080/"));
        assert!(!sandbox.is_own_url("http://127.0.0.1:8080/a b"));
    }

    #[test]
    fn transaction_numbers_only_grow() {
        let sandbox = Sandbox::new("http://x", 1).unwrap();
        let a = sandbox.next_txn();
        let b = sandbox.next_txn();
        assert!(b > a && a > 0);
    }

    #[test]
    fn decision_forms_parse_strictly() {
        let form = DecisionForm::parse(b"order=R1&decision=approve&twice=1").unwrap();
        assert_eq!(
            (form.order_ref.as_str(), form.decision, form.times()),
            ("R1", Decision::Approve, 2)
        );
        assert_eq!(
            DecisionForm::parse(b"order=R1&decision=decline")
                .unwrap()
                .times(),
            1
        );
        for bad in [
            &b""[..],
            b"order=R1",
            b"order=R1&decision=maybe",
            b"order=R1&order=R2&decision=approve",
            b"order=R%00&decision=approve",
        ] {
            assert!(DecisionForm::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refunds_take_at_most_what_is_left_and_go_by_their_last_digit() {
        let orders: Orders<()> = Orders::default();
        let at = Timestamp::now();
        for (order_ref, outcome) in [
            ("PAID", Outcome::Paid { txn: 7, at }),
            ("DECLINED", Outcome::Declined { txn: 8, at }),
        ] {
            orders
                .insert(Order {
                    order_ref: order_ref.into(),
                    amount: Vnd::new(100_000),
                    description: String::new(),
                    return_url: None,
                    created_at: at,
                    outcome,
                    refunds: Vec::new(),
                    wire: (),
                })
                .unwrap();
        }
        let refund = |id: &str, amount: i64| Refund::new(id, id, Vnd::new(amount), 1, "");
        assert!(orders.refund(None, 7, refund("R1", 50_001)).is_ok());
        // A failed refund takes nothing off what is left.
        assert!(orders.refund(Some("PAID"), 7, refund("R2", 40_003)).is_ok());
        assert!(matches!(
            orders.refund(None, 7, refund("R3", 50_000)),
            Err(RefundRefusal::OverRefundable { left }) if left == Vnd::new(49_999)
        ));
        assert!(matches!(
            orders.refund(None, 7, refund("R1", 1_000)),
            Err(RefundRefusal::Repeated(kept)) if kept.0.amount == Vnd::new(50_001) && kept.1 == "PAID"
        ));
        assert!(matches!(
            orders.refund(None, 8, refund("R4", 1_000)),
            Err(RefundRefusal::NotPaid)
        ));
        assert!(matches!(
            orders.refund(None, 9, refund("R5", 1_000)),
            Err(RefundRefusal::UnknownPayment)
        ));
        assert!(matches!(
            orders.refund(Some("PAID"), 9, refund("R6", 1_000)),
            Err(RefundRefusal::UnknownPayment)
        ));
        let status = |id: &str| orders.queried_refund(id).map(|r| r.status());
        assert_eq!(status("R1"), Some(RefundStatus::InProgress));
        assert_eq!(status("R1"), Some(RefundStatus::Succeeded));
        assert_eq!(status("R2"), Some(RefundStatus::Failed));
        assert_eq!(status("R9"), None);
        assert!(orders.refund(None, 7, refund("R7", 49_999)).is_ok());
        assert_eq!(orders.get("PAID").unwrap().refundable(), Vnd::new(0));
        for (amount, course) in [
            (50_000, Course::Succeeds),
            (50_001, Course::SucceedsOnSecondQuery),
            (50_002, Course::AnsweredLate),
            (50_003, Course::Fails),
            (50_009, Course::Succeeds),
        ] {
            assert_eq!(Course::of(Vnd::new(amount)), course, "{amount}");
        }
    }

    #[test]
    fn orders_are_decided_once_and_bounded() {
        let orders: Orders<()> = Orders::default();
        let order = |r: &str| Order {
            order_ref: r.into(),
            amount: Vnd::new(1000),
            description: String::new(),
            return_url: None,
            created_at: Timestamp::now(),
            outcome: Outcome::Pending,
            refunds: Vec::new(),
            wire: (),
        };
        orders.insert(order("A")).unwrap();
        assert!(orders.insert(order("A")).is_err());
        let paid = Outcome::Paid {
            txn: 1,
            at: Timestamp::now(),
        };
        assert_eq!(orders.decide("A", paid).unwrap().outcome, paid);
        assert_eq!(
            orders.decide("A", paid).unwrap_err().status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            orders.decide("B", paid).unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }
}
