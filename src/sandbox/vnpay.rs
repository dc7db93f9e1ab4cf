//! VNPay's side, in the sandbox: the payment page a signed `vpcpay.html`
//! URL opens, the signed IPN (a GET with `vnp_*` parameters) and return
//! URL, and the `querydr` status query of `merchant_webapi/api/transaction`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{
    DecisionForm, Order, Outcome, Refusal, Sandbox, VNPAY_HASH_SECRET, VNPAY_TMN_CODE,
    decision_form, done_page, is_order_ref, order_table, page, see_other, with_query,
};
use crate::domain::Timestamp;
use crate::providers::signing::{hmac_sha512_hex, verify_hmac_sha512_hex};
use crate::providers::vnpay::{
    QUERY_ANSWER_SIGNED, VERSION, encode_sorted, parse_vnp_date, signed_params, vnp_amount,
    vnp_date,
};

/// Where the payment page posts the payer's decision.
const DECIDE_PATH: &str = "/sandbox/vnpay/pay";
/// The bank VNPay's sandbox says the payer used.
const BANK_CODE: &str = "NCB";
/// `vnp_ResponseCode` of a payer who cancelled.
const CANCELLED: &str = "24";

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

/// `POST merchant_webapi/api/transaction`: answers a signed `querydr`
/// from the sandbox's orders, signed as VNPay signs its answers. An
/// order the sandbox does not know is `91`.
pub fn query(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    let refuse = |status: StatusCode, code: &str, message: &str| {
        HttpResponse::build(status)
            .json(json!({ "vnp_ResponseCode": code, "vnp_Message": message }))
    };
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "03",
            "the body is not a JSON object",
        );
    };
    let mut values = Vec::with_capacity(QUERY_SIGNED.len());
    for key in QUERY_SIGNED.iter().chain(&["vnp_SecureHash"]) {
        match request.get(*key) {
            Some(Value::String(v)) if v.len() <= 255 => values.push(v.as_str()),
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "03",
                    &format!("{key} is missing or not a string of at most 255 characters"),
                );
            }
        }
    }
    let hash = values.pop().unwrap_or_default();
    if !verify_hmac_sha512_hex(secret(), values.join("|").as_bytes(), hash) {
        return refuse(StatusCode::UNAUTHORIZED, "97", "Invalid Checksum");
    }
    let text = |key: &str| request.get(key).and_then(Value::as_str).unwrap_or_default();
    if text("vnp_Command") != "querydr" {
        return refuse(
            StatusCode::BAD_REQUEST,
            "03",
            "the sandbox answers vnp_Command=querydr only",
        );
    }
    if text("vnp_TmnCode") != VNPAY_TMN_CODE {
        return refuse(StatusCode::BAD_REQUEST, "02", "Merchant is not valid");
    }
    let order_ref = text("vnp_TxnRef");
    let answer = match sandbox.vnpay.get(order_ref) {
        Some(order) => query_answer(&order),
        None => {
            let mut answer = Map::new();
            answer.insert("vnp_ResponseCode".into(), json!("91"));
            answer.insert("vnp_Message".into(), json!("Transaction not found"));
            answer.insert("vnp_TxnRef".into(), json!(order_ref));
            answer
        }
    };
    HttpResponse::Ok().json(signed_answer(answer))
}

fn query_answer(order: &Order<Wire>) -> Map<String, Value> {
    let (status, txn, pay_date, bank) = match order.outcome {
        Outcome::Pending => ("01", String::new(), String::new(), ""),
        Outcome::Paid { txn, at } => ("00", txn.to_string(), vnp_date(at), BANK_CODE),
        Outcome::Declined { at, .. } => ("02", String::new(), vnp_date(at), BANK_CODE),
    };
    let mut answer = Map::new();
    for (key, value) in [
        ("vnp_ResponseCode", "00".to_owned()),
        ("vnp_Message", "QueryDR Success".to_owned()),
        ("vnp_TxnRef", order.order_ref.clone()),
        ("vnp_Amount", (order.amount.dong() * 100).to_string()),
        ("vnp_BankCode", bank.to_owned()),
        ("vnp_PayDate", pay_date),
        ("vnp_TransactionNo", txn),
        ("vnp_TransactionType", "01".to_owned()),
        ("vnp_TransactionStatus", status.to_owned()),
        ("vnp_OrderInfo", order.description.clone()),
    ] {
        answer.insert(key.into(), Value::String(value));
    }
    answer
}

/// Adds the answer's id, command and terminal, and its `vnp_SecureHash`
/// over the fields VNPay signs, joined with `|`.
fn signed_answer(mut answer: Map<String, Value>) -> Map<String, Value> {
    let response_id = crate::providers::signing::order_ref(Timestamp::now(), &mut rand::rng());
    answer.insert("vnp_ResponseId".into(), json!(response_id));
    answer.insert("vnp_Command".into(), json!("querydr"));
    answer.insert("vnp_TmnCode".into(), json!(VNPAY_TMN_CODE));
    let signed = QUERY_ANSWER_SIGNED
        .map(|key| answer.get(key).and_then(Value::as_str).unwrap_or_default())
        .join("|");
    answer.insert(
        "vnp_SecureHash".into(),
        json!(hmac_sha512_hex(secret(), signed.as_bytes())),
    );
    answer
}
