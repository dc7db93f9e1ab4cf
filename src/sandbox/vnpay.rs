//! VNPay's side, in the sandbox: the payment page a signed `vpcpay.html`
//! URL opens, the signed IPN (a GET with `vnp_*` parameters) and return
//! URL, and the `querydr` status query and `refund` of
//! `merchant_webapi/api/transaction`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{
    DecisionForm, Order, Outcome, Refund, RefundRefusal, RefundStatus, Refusal, Sandbox,
    VNPAY_HASH_SECRET, VNPAY_TMN_CODE, decision_form, done_page, is_order_ref, order_table, page,
    see_other, with_query,
};
use crate::domain::Timestamp;
use crate::providers::signing::{hmac_sha512_hex, parse_int, verify_hmac_sha512_hex};
use crate::providers::vnpay::{
    FULL_REFUND, PARTIAL_REFUND, QUERY_ANSWER_SIGNED, REFUND_ANSWER_SIGNED, REFUND_REQUEST_SIGNED,
    VERSION, encode_sorted, parse_vnp_date, refund_type, signed_params, vnp_amount, vnp_date,
};

/// Where the payment page posts the payer's decision.
const DECIDE_PATH: &str = "/sandbox/vnpay/pay";
/// The bank VNPay's sandbox says the payer used.
const BANK_CODE: &str = "NCB";
/// `vnp_ResponseCode` of a payer who cancelled.
const CANCELLED: &str = "24";
/// `vnp_TransactionStatus` of a refund VNPay is processing, and of one it
/// rejected.
const REFUND_PROCESSING: &str = "05";
const REFUND_REJECTED: &str = "09";

/// What VNPay keeps of a payment URL besides the common order fields.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    /// The URL's `vnp_CreateDate`, which a status query names again.
    pub create_date: String,
}

fn secret() -> &'static [u8] {
    VNPAY_HASH_SECRET.as_bytes()
}

/// The payment page of a payment URL lephi signed: the order is kept
/// (once; opening the page again shows it again) and shown with Approve
/// and Decline.
pub fn payment_page(sandbox: &Sandbox, query: &str) -> Result<HttpResponse, Refusal> {
    let order = open(sandbox, query)?;
    let body = match order.outcome {
        Outcome::Pending => decision_form(
            DECIDE_PATH,
            &order.order_ref,
            "Từ chối: VNPay gửi IPN với vnp_ResponseCode=24. / Decline: VNPay sends an IPN with vnp_ResponseCode=24.",
        ),
        _ => "<p>Đơn hàng này đã được xử lý. / This order was already approved or declined.</p>"
            .to_owned(),
    };
    Ok(page(
        StatusCode::OK,
        "VNPay — Cổng thanh toán / Payment gateway",
        &format!(
            "{}{body}",
            order_table(
                &format!("lephi (vnp_TmnCode {VNPAY_TMN_CODE})"),
                &order.order_ref,
                &order.description,
                order.amount
            )
        ),
    ))
}

/// Checks a payment URL's query as VNPay does and keeps its order.
fn open(sandbox: &Sandbox, query: &str) -> Result<Order<Wire>, Refusal> {
    let params = signed_params(query).map_err(|_| Refusal::forged())?;
    let signed = encode_sorted(params.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !verify_hmac_sha512_hex(secret(), signed.as_bytes(), &params.hash) {
        return Err(Refusal::forged());
    }
    let field = |key: &str| {
        params
            .fields
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Refusal::bad_request(format!("{key} is missing")))
    };
    if field("vnp_Version")? != VERSION || field("vnp_Command")? != "pay" {
        return Err(Refusal::bad_request(format!(
            "the sandbox takes vnp_Version={VERSION} and vnp_Command=pay"
        )));
    }
    if field("vnp_TmnCode")? != VNPAY_TMN_CODE {
        return Err(Refusal::bad_request(
            "vnp_TmnCode is not the sandbox's terminal",
        ));
    }
    if field("vnp_CurrCode")? != "VND" {
        return Err(Refusal::bad_request("vnp_CurrCode must be VND"));
    }
    let order_ref = field("vnp_TxnRef")?;
    if !is_order_ref(order_ref) {
        return Err(Refusal::bad_request("vnp_TxnRef is not a valid reference"));
    }
    let amount =
        vnp_amount(field("vnp_Amount")?).map_err(|e| Refusal::bad_request(e.to_string()))?;
    let create_date = field("vnp_CreateDate")?;
    if parse_vnp_date(create_date).is_none() {
        return Err(Refusal::bad_request("vnp_CreateDate is not yyyyMMddHHmmss"));
    }
    if let Some(expire) = params.fields.get("vnp_ExpireDate") {
        let expire = parse_vnp_date(expire)
            .ok_or_else(|| Refusal::bad_request("vnp_ExpireDate is not yyyyMMddHHmmss"))?;
        if expire < Timestamp::now() {
            return Err(Refusal::new(
                StatusCode::GONE,
                "Giao dịch đã quá thời gian chờ thanh toán. / The payment link has expired.",
            ));
        }
    }
    let return_url = field("vnp_ReturnUrl")?;
    if !sandbox.is_own_url(return_url) {
        return Err(Refusal::bad_request(
            "vnp_ReturnUrl must be a page of this lephi",
        ));
    }
    let order = Order {
        order_ref: order_ref.to_owned(),
        amount,
        description: field("vnp_OrderInfo")?.to_owned(),
        return_url: Some(return_url.to_owned()),
        created_at: Timestamp::now(),
        outcome: Outcome::Pending,
        refunds: Vec::new(),
        wire: Wire {
            create_date: create_date.to_owned(),
        },
    };
    match sandbox.vnpay.insert(order.clone()) {
        Ok(order) => Ok(order),
        // The same link opened again.
        Err(kept)
            if kept.amount == order.amount
                && kept.return_url == order.return_url
                && kept.wire.create_date == order.wire.create_date =>
        {
            Ok(*kept)
        }
        Err(_) => Err(Refusal::new(
            StatusCode::CONFLICT,
            "vnp_TxnRef was already used for another payment",
        )),
    }
}

/// The payer approved or declined: VNPay's IPN goes to lephi (twice if
/// asked), then the browser returns with the same signed parameters.
pub async fn decide(sandbox: &Sandbox, body: &[u8]) -> Result<HttpResponse, Refusal> {
    let form = DecisionForm::parse(body)?;
    let order = sandbox
        .vnpay
        .decide(&form.order_ref, form.outcome(sandbox.next_txn()))?;
    let query = ipn_query(&order);
    let url = with_query(&sandbox.callback_url("vnpay"), &query);
    let answers = sandbox
        .deliver(form.times(), || sandbox.http.get(&url))
        .await;
    Ok(match &order.return_url {
        Some(return_url) => see_other(&with_query(return_url, &query)),
        None => done_page(form.decision, &answers),
    })
}

/// The signed IPN (and return URL) query of a decided order.
fn ipn_query(order: &Order<Wire>) -> String {
    let (code, txn, at) = match order.outcome {
        Outcome::Paid { txn, at } => ("00", txn.to_string(), at),
        Outcome::Declined { at, .. } => (CANCELLED, "0".to_owned(), at),
        Outcome::Pending => ("01", "0".to_owned(), Timestamp::now()),
    };
    let status = if code == CANCELLED { "02" } else { code };
    let amount = (order.amount.dong() * 100).to_string();
    let bank_tran_no = format!("VNP{txn}");
    let pay_date = vnp_date(at);
    let mut params = vec![
        ("vnp_Amount", amount.as_str()),
        ("vnp_BankCode", BANK_CODE),
        ("vnp_CardType", "ATM"),
        ("vnp_OrderInfo", order.description.as_str()),
        ("vnp_PayDate", pay_date.as_str()),
        ("vnp_ResponseCode", code),
        ("vnp_TmnCode", VNPAY_TMN_CODE),
        ("vnp_TransactionNo", txn.as_str()),
        ("vnp_TransactionStatus", status),
        ("vnp_TxnRef", order.order_ref.as_str()),
    ];
    if code == "00" {
        params.push(("vnp_BankTranNo", bank_tran_no.as_str()));
    }
    params.sort_by_key(|(k, _)| *k);
    let signed = encode_sorted(params.into_iter());
    let hash = hmac_sha512_hex(secret(), signed.as_bytes());
    format!("{signed}&vnp_SecureHash={hash}")
}

/// The fields a `querydr` request signs, in their order.
const QUERY_SIGNED: [&str; 9] = [
    "vnp_RequestId",
    "vnp_Version",
    "vnp_Command",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_TransactionDate",
    "vnp_CreateDate",
    "vnp_IpAddr",
    "vnp_OrderInfo",
];

/// An unsigned refusal of a request that could not be read or checked.
fn refuse(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "vnp_ResponseCode": code, "vnp_Message": message }))
}

/// `POST merchant_webapi/api/transaction`: VNPay's one JSON API, which
/// tells a refund (`vnp_Command=refund`) from a status query by its
/// command.
pub async fn transaction(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "03",
            "the body is not a JSON object",
        );
    };
    if request.get("vnp_Command").and_then(Value::as_str) == Some("refund") {
        refund(sandbox, &request).await
    } else {
        query(sandbox, &request)
    }
}

/// The values of `keys` then `vnp_SecureHash`, each a string of at most
/// 255 characters, or the answer refusing the request.
fn signed_values<'a>(
    request: &'a Map<String, Value>,
    keys: &[&str],
) -> Result<(Vec<&'a str>, &'a str), String> {
    let mut values = Vec::with_capacity(keys.len());
    for key in keys.iter().chain(&["vnp_SecureHash"]) {
        match request.get(*key) {
            Some(Value::String(v)) if v.len() <= 255 => values.push(v.as_str()),
            _ => {
                return Err(format!(
                    "{key} is missing or not a string of at most 255 characters"
                ));
            }
        }
    }
    let hash = values.pop().unwrap_or_default();
    Ok((values, hash))
}

/// Answers a signed `querydr` from the sandbox's orders, signed as VNPay
/// signs its answers. An order the sandbox does not know is `91`; a
/// refunded order is described by its latest refund, as VNPay does.
fn query(sandbox: &Sandbox, request: &Map<String, Value>) -> HttpResponse {
    let (values, hash) = match signed_values(request, &QUERY_SIGNED) {
        Ok(signed) => signed,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, "03", &message),
    };
    if !verify_hmac_sha512_hex(secret(), values.join("|").as_bytes(), hash) {
        return refuse(StatusCode::UNAUTHORIZED, "97", "Invalid Checksum");
    }
    let text = |key: &str| request.get(key).and_then(Value::as_str).unwrap_or_default();
    if text("vnp_Command") != "querydr" {
        return refuse(
            StatusCode::BAD_REQUEST,
            "03",
            "the sandbox answers vnp_Command=querydr or refund only",
        );
    }
    if text("vnp_TmnCode") != VNPAY_TMN_CODE {
        return refuse(StatusCode::BAD_REQUEST, "02", "Merchant is not valid");
    }
    let order_ref = text("vnp_TxnRef");
    let answer = match sandbox.vnpay.queried(order_ref) {
        Some(order) => query_answer(&order),
        None => {
            let mut answer = Map::new();
            answer.insert("vnp_ResponseCode".into(), json!("91"));
            answer.insert("vnp_Message".into(), json!("Transaction not found"));
            answer.insert("vnp_TxnRef".into(), json!(order_ref));
            answer
        }
    };
    HttpResponse::Ok().json(signed_answer(answer, "querydr", &QUERY_ANSWER_SIGNED))
}

fn query_answer(order: &Order<Wire>) -> Map<String, Value> {
    let (kind, status, txn, amount, pay_date, bank) = match (order.refunds.last(), order.outcome) {
        (Some(refund), _) => (
            refund_type(order.amount, refund.amount),
            match refund.status() {
                RefundStatus::InProgress => REFUND_PROCESSING,
                RefundStatus::Succeeded => "00",
                RefundStatus::Failed => REFUND_REJECTED,
            },
            refund.txn.to_string(),
            refund.amount,
            vnp_date(refund.at),
            BANK_CODE,
        ),
        (None, Outcome::Pending) => ("01", "01", String::new(), order.amount, String::new(), ""),
        (None, Outcome::Paid { txn, at }) => (
            "01",
            "00",
            txn.to_string(),
            order.amount,
            vnp_date(at),
            BANK_CODE,
        ),
        (None, Outcome::Declined { at, .. }) => (
            "01",
            "02",
            String::new(),
            order.amount,
            vnp_date(at),
            BANK_CODE,
        ),
    };
    let mut answer = Map::new();
    for (key, value) in [
        ("vnp_ResponseCode", "00".to_owned()),
        ("vnp_Message", "QueryDR Success".to_owned()),
        ("vnp_TxnRef", order.order_ref.clone()),
        ("vnp_Amount", (amount.dong() * 100).to_string()),
        ("vnp_BankCode", bank.to_owned()),
        ("vnp_PayDate", pay_date),
        ("vnp_TransactionNo", txn),
        ("vnp_TransactionType", kind.to_owned()),
        ("vnp_TransactionStatus", status.to_owned()),
        ("vnp_OrderInfo", order.description.clone()),
    ] {
        answer.insert(key.into(), Value::String(value));
    }
    answer
}

/// A refund's answer: HTTP status, `vnp_ResponseCode`, message, and the
/// refund taken, if it was.
struct RefundReply {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The refund taken, and its `vnp_TransactionType`.
    refund: Option<(Refund, &'static str)>,
}

impl RefundReply {
    fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> RefundReply {
        RefundReply {
            status,
            code,
            message: message.into(),
            refund: None,
        }
    }
}

/// A signed `refund`: taken if VNPay would take it, and answered signed
/// (refusals too) over the fields VNPay signs.
async fn refund(sandbox: &Sandbox, request: &Map<String, Value>) -> HttpResponse {
    let text = |key: &str| request.get(key).and_then(Value::as_str).unwrap_or_default();
    let reply = refund_checked(sandbox, request);
    let mut answer = Map::new();
    let (amount, pay_date, txn, kind, status, order_info) = match &reply.refund {
        Some((refund, kind)) => (
            (refund.amount.dong() * 100).to_string(),
            vnp_date(refund.at),
            refund.txn.to_string(),
            *kind,
            REFUND_PROCESSING,
            refund.description.clone(),
        ),
        None => (
            text("vnp_Amount").to_owned(),
            String::new(),
            String::new(),
            "",
            "",
            text("vnp_OrderInfo").to_owned(),
        ),
    };
    for (key, value) in [
        ("vnp_ResponseCode", reply.code.to_owned()),
        ("vnp_Message", reply.message.clone()),
        ("vnp_TxnRef", text("vnp_TxnRef").to_owned()),
        ("vnp_Amount", amount),
        ("vnp_BankCode", BANK_CODE.to_owned()),
        ("vnp_PayDate", pay_date),
        ("vnp_TransactionNo", txn),
        ("vnp_TransactionType", kind.to_owned()),
        ("vnp_TransactionStatus", status.to_owned()),
        ("vnp_OrderInfo", order_info),
    ] {
        answer.insert(key.into(), Value::String(value));
    }
    if let Some((refund, _)) = &reply.refund {
        sandbox.pace(refund).await;
    }
    HttpResponse::build(reply.status).json(signed_answer(answer, "refund", REFUND_ANSWER_SIGNED))
}

fn refund_checked(sandbox: &Sandbox, request: &Map<String, Value>) -> RefundReply {
    let bad = |message: &str| RefundReply::refused(StatusCode::BAD_REQUEST, "03", message);
    let (values, hash) = match signed_values(request, &REFUND_REQUEST_SIGNED) {
        Ok(signed) => signed,
        Err(message) => return bad(&message),
    };
    if !verify_hmac_sha512_hex(secret(), values.join("|").as_bytes(), hash) {
        return RefundReply::refused(StatusCode::UNAUTHORIZED, "97", "Invalid Checksum");
    }
    let text = |key: &str| request.get(key).and_then(Value::as_str).unwrap_or_default();
    if text("vnp_Version") != VERSION {
        return bad(&format!("the sandbox takes vnp_Version={VERSION}"));
    }
    if text("vnp_TmnCode") != VNPAY_TMN_CODE {
        return RefundReply::refused(StatusCode::BAD_REQUEST, "99", "Merchant is not valid");
    }
    let request_id = text("vnp_RequestId");
    if request_id.len() > 32 || !is_order_ref(request_id) {
        return bad("vnp_RequestId must be 1 to 32 letters, digits, - _ or .");
    }
    let Ok(amount) = vnp_amount(text("vnp_Amount")) else {
        return bad("vnp_Amount must be a positive whole number of đồng × 100");
    };
    let Some(txn) = parse_int(text("vnp_TransactionNo")) else {
        return bad("vnp_TransactionNo must be VNPay's transaction number");
    };
    for key in ["vnp_TransactionDate", "vnp_CreateDate"] {
        if parse_vnp_date(text(key)).is_none() {
            return bad(&format!("{key} is not yyyyMMddHHmmss"));
        }
    }
    for key in ["vnp_CreateBy", "vnp_IpAddr", "vnp_OrderInfo"] {
        if text(key).is_empty() {
            return bad(&format!("{key} is missing"));
        }
    }
    let kind = match text("vnp_TransactionType") {
        FULL_REFUND => FULL_REFUND,
        PARTIAL_REFUND => PARTIAL_REFUND,
        _ => return bad("vnp_TransactionType must be 02 (full) or 03 (partial)"),
    };
    let order_ref = text("vnp_TxnRef");
    if let Some(order) = sandbox.vnpay.get(order_ref) {
        if amount > order.amount {
            return RefundReply::refused(
                StatusCode::OK,
                "93",
                "Số tiền hoàn trả không hợp lệ. / The refund is more than the payment.",
            );
        }
        if kind != refund_type(order.amount, amount) {
            return RefundReply::refused(
                StatusCode::OK,
                "93",
                "vnp_TransactionType 02 refunds the whole payment, 03 a part of it",
            );
        }
        // A refund asked again is answered as such (94), below.
        let asked_before = order.refunds.iter().any(|r| r.id == request_id);
        if kind == FULL_REFUND && !order.refunds.is_empty() && !asked_before {
            return RefundReply::refused(
                StatusCode::OK,
                "04",
                "Không cho phép hoàn toàn phần sau khi hoàn một phần. / A full refund cannot follow a partial one.",
            );
        }
    }
    let refund = Refund::new(
        request_id,
        request_id,
        amount,
        sandbox.next_txn(),
        text("vnp_OrderInfo"),
    );
    match sandbox.vnpay.refund(Some(order_ref), txn, refund) {
        Ok(refund) => RefundReply {
            status: StatusCode::OK,
            code: "00",
            message: "Refund success".into(),
            refund: Some((refund, kind)),
        },
        Err(refusal) => {
            let (code, message) = match refusal {
                RefundRefusal::UnknownPayment => (
                    "91",
                    "Không tìm thấy giao dịch yêu cầu hoàn trả. / No such transaction.".to_owned(),
                ),
                RefundRefusal::NotPaid => (
                    "95",
                    "Giao dịch không thành công bên VNPAY. / The payment did not succeed.".to_owned(),
                ),
                RefundRefusal::Repeated(_) => (
                    "94",
                    "Yêu cầu hoàn tiền này đã được gửi trước đó và đang được xử lý. / This refund was asked before.".to_owned(),
                ),
                RefundRefusal::OverRefundable { left } => (
                    "02",
                    format!(
                        "Tổng số tiền hoàn trả lớn hơn số tiền gốc. / The refunds would exceed the payment: {} is left.",
                        left.dong()
                    ),
                ),
                RefundRefusal::TooMany => (
                    "99",
                    "The sandbox keeps no more refunds of this payment".to_owned(),
                ),
            };
            RefundReply::refused(StatusCode::OK, code, message)
        }
    }
}

/// Adds the answer's id, command and terminal, and its `vnp_SecureHash`
/// over the fields VNPay signs for `command`, joined with `|`.
fn signed_answer(
    mut answer: Map<String, Value>,
    command: &str,
    signed: &[&str],
) -> Map<String, Value> {
    let response_id = crate::providers::signing::order_ref(Timestamp::now(), &mut rand::rng());
    answer.insert("vnp_ResponseId".into(), json!(response_id));
    answer.insert("vnp_Command".into(), json!(command));
    answer.insert("vnp_TmnCode".into(), json!(VNPAY_TMN_CODE));
    let signed = signed
        .iter()
        .map(|key| answer.get(*key).and_then(Value::as_str).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("|");
    answer.insert(
        "vnp_SecureHash".into(),
        json!(hmac_sha512_hex(secret(), signed.as_bytes())),
    );
    answer
}
