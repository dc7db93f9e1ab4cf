//! ZaloPay's side, in the sandbox (API v2): `create` answering with an
//! `order_url` to the sandbox's payment page, the callback
//! `{data, mac, type}` (on success only: ZaloPay sends nothing when a
//! payment fails), the redirect with its `checksum`, the order status
//! query, and `refund` with `query_refund`.

use std::collections::HashMap;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

use super::{
    Answer, DecisionForm, Order, Outcome, Refund, RefundRefusal, RefundStatus, Refusal, Sandbox,
    ZALOPAY_APP_ID, ZALOPAY_KEY1, ZALOPAY_KEY2, decision_form, done_page, form_fields, order_table,
    page, required, see_other, with_query,
};
use crate::domain::{Timestamp, Vnd};
use crate::providers::signing::{hmac_sha256_hex, parse_int, unix_ms, verify_hmac_sha256_hex};

const DECIDE_PATH: &str = "/sandbox/zalopay/pay";
/// `sub_return_code` of a request with invalid data.
const INVALID_REQUEST: i64 = -401;
/// `sub_return_code` of a request whose mac does not match.
const BAD_MAC: i64 = -402;
/// `sub_return_code` of an `app_trans_id` used before.
const DUPLICATE: i64 = -68;
/// `sub_return_code` of an order the payer cancelled, and the redirect's
/// `status` of it.
const CANCELLED: i64 = -49;
/// `sub_return_code` the sandbox gives an order it does not know.
const UNKNOWN_ORDER: i64 = -92;
/// `sub_return_code` the sandbox gives a refund of a transaction it has
/// no successful payment of, or a refund id it does not know.
const UNKNOWN_TRANSACTION: i64 = -101;
/// `sub_return_code` the sandbox gives a refund of more than what is left
/// of the payment.
const REFUND_OVER: i64 = -13;
/// `sub_return_code` the sandbox gives a refund that failed.
const REFUND_FAILED: i64 = -3;

/// What ZaloPay keeps of a `create` request besides the common fields.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub app_user: String,
    pub app_time: i64,
    pub embed_data: String,
    pub item: String,
}

fn answer(status: StatusCode, return_code: i64, sub_code: i64, message: &str) -> Answer {
    Answer::new(
        status,
        json!({
            "return_code": return_code,
            "return_message": message,
            "sub_return_code": sub_code,
            "sub_return_message": message,
        }),
    )
}

fn invalid(message: &str) -> Answer {
    answer(StatusCode::BAD_REQUEST, 2, INVALID_REQUEST, message)
}

/// The form's fields; a body that is not a form is refused.
fn form(body: &[u8]) -> Result<HashMap<String, String>, Answer> {
    form_fields(body).map_err(|refusal| invalid(&refusal.message))
}

fn field(fields: &HashMap<String, String>, key: &str) -> Result<String, Answer> {
    required(fields, key).map_err(|refusal| invalid(&refusal.message))
}

/// Refuses a request for another app, or whose `mac` is not key1's over
/// `signed`.
fn signed_by_lephi(app_id: &str, signed: &str, mac: &str) -> Result<(), Answer> {
    if app_id != ZALOPAY_APP_ID
        || !verify_hmac_sha256_hex(ZALOPAY_KEY1.as_bytes(), signed.as_bytes(), mac)
    {
        return Err(answer(
            StatusCode::UNAUTHORIZED,
            2,
            BAD_MAC,
            "the app_id or mac does not match",
        ));
    }
    Ok(())
}

/// `app_trans_id`: `yymmdd_` then 1 to 33 letters, digits or `_`.
fn is_app_trans_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (8..=40).contains(&bytes.len())
        && bytes[..6].iter().all(u8::is_ascii_digit)
        && bytes[6] == b'_'
        && bytes[7..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// `POST /v2/create`, a form.
pub fn create(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    Answer::respond(create_checked(sandbox, body))
}

fn create_checked(sandbox: &Sandbox, body: &[u8]) -> Result<Answer, Answer> {
    let fields = form(body)?;
    let app_id = field(&fields, "app_id")?;
    let app_trans_id = field(&fields, "app_trans_id")?;
    let app_user = field(&fields, "app_user")?;
    let app_time = field(&fields, "app_time")?;
    let amount = field(&fields, "amount")?;
    let item = field(&fields, "item")?;
    let embed_data = field(&fields, "embed_data")?;
    let description = fields.get("description").cloned().unwrap_or_default();
    let mac = field(&fields, "mac")?;
    let signed =
        format!("{app_id}|{app_trans_id}|{app_user}|{amount}|{app_time}|{embed_data}|{item}");
    signed_by_lephi(&app_id, &signed, &mac)?;
    let amount = parse_int(&amount)
        .and_then(|a| Vnd::positive(a).ok())
        .ok_or_else(|| invalid("amount must be a positive whole number"))?;
    let app_time =
        parse_int(&app_time).ok_or_else(|| invalid("app_time must be unix milliseconds"))?;
    if !is_app_trans_id(&app_trans_id) {
        return Err(invalid(
            "app_trans_id must be yymmdd_ then letters, digits or _",
        ));
    }
    if let Some(callback_url) = fields.get("callback_url")
        && !callback_url.is_empty()
        && *callback_url != sandbox.callback_url("zalopay")
    {
        return Err(invalid(
            "callback_url must be this lephi's /callbacks/zalopay",
        ));
    }
    let Ok(Value::Object(embedded)) = serde_json::from_str::<Value>(&embed_data) else {
        return Err(invalid("embed_data must be a JSON object"));
    };
    let return_url = match embedded.get("redirecturl") {
        None => None,
        Some(Value::String(url)) if sandbox.is_own_url(url) => Some(url.clone()),
        Some(_) => {
            return Err(invalid(
                "embed_data.redirecturl must be a page of this lephi",
            ));
        }
    };
    let order = Order {
        order_ref: app_trans_id.clone(),
        amount,
        description,
        return_url,
        created_at: Timestamp::now(),
        outcome: Outcome::Pending,
        refunds: Vec::new(),
        wire: Wire {
            app_user,
            app_time,
            embed_data,
            item,
        },
    };
    let order = match sandbox.zalopay.insert(order) {
        Ok(order) => order,
        Err(kept) if kept.amount == amount && kept.wire.app_time == app_time => *kept,
        Err(_) => {
            return Err(answer(
                StatusCode::BAD_REQUEST,
                2,
                DUPLICATE,
                "app_trans_id was used before",
            ));
        }
    };
    let order_url = format!(
        "{}/sandbox/zalopay/pay?order={}",
        sandbox.public_url, order.order_ref
    );
    Ok(Answer::ok(json!({
        "return_code": 1,
        "return_message": "Giao dịch thành công",
        "sub_return_code": 1,
        "sub_return_message": "Giao dịch thành công",
        "zp_trans_token": order.order_ref,
        "order_url": order_url,
        "order_token": order.order_ref,
        "qr_code": order_url,
    })))
}

/// `GET /sandbox/zalopay/pay?order=...`: the payment page.
pub fn payment_page(sandbox: &Sandbox, query: &str) -> Result<HttpResponse, Refusal> {
    let fields = form_fields(query.as_bytes())?;
    let order = sandbox
        .zalopay
        .get(&required(&fields, "order")?)
        .ok_or_else(Refusal::unknown_order)?;
    let body = match order.outcome {
        Outcome::Pending => decision_form(
            DECIDE_PATH,
            &order.order_ref,
            "Từ chối: ZaloPay không gửi callback khi thanh toán thất bại. / Decline: ZaloPay sends no callback when a payment fails.",
        ),
        _ => "<p>Đơn hàng này đã được xử lý. / This order was already approved or declined.</p>"
            .to_owned(),
    };
    Ok(page(
        StatusCode::OK,
        "ZaloPay — Ví điện tử / E-wallet",
        &format!(
            "{}{body}",
            order_table(
                &format!("lephi (app_id {ZALOPAY_APP_ID})"),
                &order.order_ref,
                &order.description,
                order.amount
            )
        ),
    ))
}

/// The payer approved or declined: on approval ZaloPay's callback goes to
/// lephi; either way the browser goes to `redirecturl` with ZaloPay's
/// redirect parameters and their checksum.
pub async fn decide(sandbox: &Sandbox, body: &[u8]) -> Result<HttpResponse, Refusal> {
    let form = DecisionForm::parse(body)?;
    let outcome = form.outcome(sandbox.next_txn());
    let order = sandbox.zalopay.decide(&form.order_ref, outcome)?;
    let answers = match outcome {
        Outcome::Paid { txn, at } => {
            let callback = callback(&order, txn, at);
            let url = sandbox.callback_url("zalopay");
            sandbox
                .deliver(form.times(), || sandbox.http.post(&url).json(&callback))
                .await
        }
        _ => vec!["ZaloPay sends no callback for a failed payment".to_owned()],
    };
    Ok(match &order.return_url {
        Some(return_url) => see_other(&with_query(return_url, &redirect_query(&order))),
        None => done_page(form.decision, &answers),
    })
}

/// The callback of a paid order: `data` as a JSON string, and its mac.
fn callback(order: &Order<Wire>, zp_trans_id: i64, at: Timestamp) -> Value {
    let app_id: i64 = ZALOPAY_APP_ID.parse().unwrap_or_default();
    let data = json!({
        "app_id": app_id,
        "app_trans_id": order.order_ref,
        "app_time": order.wire.app_time,
        "app_user": order.wire.app_user,
        "amount": order.amount.dong(),
        "embed_data": order.wire.embed_data,
        "item": order.wire.item,
        "zp_trans_id": zp_trans_id,
        "server_time": unix_ms(at),
        "channel": 38,
        "merchant_user_id": "sandbox-payer",
        "user_fee_amount": 0,
        "discount_amount": 0,
    })
    .to_string();
    let mac = hmac_sha256_hex(ZALOPAY_KEY2.as_bytes(), data.as_bytes());
    json!({ "data": data, "mac": mac, "type": 1 })
}

/// ZaloPay's redirect parameters, with
/// `checksum = HMAC-SHA256(key2, appid|apptransid|pmcid|bankcode|amount|discountamount|status)`.
fn redirect_query(order: &Order<Wire>) -> String {
    let status = match order.outcome {
        Outcome::Paid { .. } => 1,
        _ => CANCELLED,
    };
    let (pmcid, bankcode, discount) = ("38", "", "0");
    let amount = order.amount.dong();
    let signed = format!(
        "{ZALOPAY_APP_ID}|{}|{pmcid}|{bankcode}|{amount}|{discount}|{status}",
        order.order_ref
    );
    form_urlencoded::Serializer::new(String::new())
        .append_pair("amount", &amount.to_string())
        .append_pair("appid", ZALOPAY_APP_ID)
        .append_pair("apptransid", &order.order_ref)
        .append_pair("bankcode", bankcode)
        .append_pair(
            "checksum",
            &hmac_sha256_hex(ZALOPAY_KEY2.as_bytes(), signed.as_bytes()),
        )
        .append_pair("discountamount", discount)
        .append_pair("pmcid", pmcid)
        .append_pair("status", &status.to_string())
        .finish()
}

/// `POST /v2/query`, a form: `return_code` 1 paid, 2 failed, 3 pending.
pub fn query(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    Answer::respond(query_checked(sandbox, body))
}

fn query_checked(sandbox: &Sandbox, body: &[u8]) -> Result<Answer, Answer> {
    let fields = form(body)?;
    let app_id = field(&fields, "app_id")?;
    let app_trans_id = field(&fields, "app_trans_id")?;
    let mac = field(&fields, "mac")?;
    let signed = format!("{app_id}|{app_trans_id}|{ZALOPAY_KEY1}");
    signed_by_lephi(&app_id, &signed, &mac)?;
    let Some(order) = sandbox.zalopay.get(&app_trans_id) else {
        return Ok(answer(
            StatusCode::OK,
            2,
            UNKNOWN_ORDER,
            "app_trans_id không tồn tại / no such order",
        ));
    };
    let (return_code, sub_code, message, zp_trans_id, at) = match order.outcome {
        Outcome::Pending => (
            3,
            1,
            "Giao dịch chưa được thanh toán / not paid yet",
            0,
            None,
        ),
        Outcome::Paid { txn, at } => (1, 1, "Giao dịch thành công", txn, Some(at)),
        Outcome::Declined { at, .. } => (
            2,
            CANCELLED,
            "Người dùng đã huỷ giao dịch / the payer cancelled",
            0,
            Some(at),
        ),
    };
    Ok(Answer::ok(json!({
        "return_code": return_code,
        "return_message": message,
        "sub_return_code": sub_code,
        "sub_return_message": message,
        "is_processing": false,
        "amount": order.amount.dong(),
        "discount_amount": 0,
        "zp_trans_id": zp_trans_id,
        "server_time": unix_ms(at.unwrap_or_else(Timestamp::now)),
    })))
}

/// `m_refund_id`: `yymmdd_appid_` then 1 to 40 letters or digits.
fn is_m_refund_id(id: &str) -> bool {
    let prefix = format!("_{ZALOPAY_APP_ID}_");
    let bytes = id.as_bytes();
    bytes.len() > 6
        && bytes[..6].iter().all(u8::is_ascii_digit)
        && id[6..].strip_prefix(&prefix).is_some_and(|rest| {
            (1..=40).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// The answer about a refund, where it stands now.
fn refund_answer(refund: &Refund) -> Answer {
    let (return_code, sub_code, message) = match refund.status() {
        RefundStatus::Succeeded => (1, 1, "Giao dịch hoàn tiền thành công"),
        RefundStatus::InProgress => (3, 2, "Giao dịch hoàn tiền đang được xử lý"),
        RefundStatus::Failed => (
            2,
            REFUND_FAILED,
            "Hoàn tiền thất bại / the refund failed (sandbox: its amount ends in 3)",
        ),
    };
    Answer::ok(json!({
        "return_code": return_code,
        "return_message": message,
        "sub_return_code": sub_code,
        "sub_return_message": message,
        "refund_id": refund.txn,
    }))
}

/// `POST /v2/refund`, a form: a refund of a payment the sandbox approved,
/// named by its `zp_trans_id`.
pub async fn refund(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    sandbox.answer_refund(refund_checked(sandbox, body)).await
}

/// The answer, and the refund when it is a new one.
fn refund_checked(sandbox: &Sandbox, body: &[u8]) -> Result<(Answer, Option<Refund>), Answer> {
    let fields = form(body)?;
    let app_id = field(&fields, "app_id")?;
    let m_refund_id = field(&fields, "m_refund_id")?;
    let zp_trans_id = field(&fields, "zp_trans_id")?;
    let amount = field(&fields, "amount")?;
    let timestamp = field(&fields, "timestamp")?;
    let description = fields.get("description").cloned().unwrap_or_default();
    let mac = field(&fields, "mac")?;
    let signed = format!("{app_id}|{zp_trans_id}|{amount}|{description}|{timestamp}");
    signed_by_lephi(&app_id, &signed, &mac)?;
    if !is_m_refund_id(&m_refund_id) {
        return Err(invalid(
            "m_refund_id must be yymmdd_appid_ then letters or digits",
        ));
    }
    let amount = parse_int(&amount)
        .and_then(|a| Vnd::positive(a).ok())
        .ok_or_else(|| invalid("amount must be a positive whole number"))?;
    let zp_trans_id =
        parse_int(&zp_trans_id).ok_or_else(|| invalid("zp_trans_id must be a number"))?;
    parse_int(&timestamp).ok_or_else(|| invalid("timestamp must be unix milliseconds"))?;
    let refund = Refund::new(
        &m_refund_id,
        &m_refund_id,
        amount,
        sandbox.next_txn(),
        &description,
    );
    let refused = |sub_code: i64, message: &str| Err(answer(StatusCode::OK, 2, sub_code, message));
    match sandbox.zalopay.refund(None, zp_trans_id, refund) {
        Ok(refund) => Ok((refund_answer(&refund), Some(refund))),
        // The same refund again is answered as it stands now.
        Err(RefundRefusal::Repeated(kept))
            if kept.0.amount == amount
                && sandbox.zalopay.get(&kept.1).and_then(|o| o.outcome.txn())
                    == Some(zp_trans_id) =>
        {
            Ok((refund_answer(&kept.0), None))
        }
        Err(RefundRefusal::Repeated(_)) => {
            refused(DUPLICATE, "m_refund_id was used for another refund")
        }
        Err(RefundRefusal::UnknownPayment | RefundRefusal::NotPaid) => refused(
            UNKNOWN_TRANSACTION,
            "Không tìm thấy giao dịch thanh toán thành công / no successful payment has this zp_trans_id",
        ),
        Err(RefundRefusal::OverRefundable { left }) => refused(
            REFUND_OVER,
            &format!(
                "Số tiền hoàn vượt quá số tiền còn lại / the refund is more than what is left of the payment ({} đồng)",
                left.dong()
            ),
        ),
        Err(RefundRefusal::TooMany) => refused(
            REFUND_FAILED,
            "the sandbox keeps no more refunds of this payment",
        ),
    }
}

/// `POST /v2/query_refund`, a form: where a refund stands, `return_code`
/// 1 succeeded, 2 failed (or unknown), 3 processing.
pub fn query_refund(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    Answer::respond(query_refund_checked(sandbox, body))
}

fn query_refund_checked(sandbox: &Sandbox, body: &[u8]) -> Result<Answer, Answer> {
    let fields = form(body)?;
    let app_id = field(&fields, "app_id")?;
    let m_refund_id = field(&fields, "m_refund_id")?;
    let timestamp = field(&fields, "timestamp")?;
    let mac = field(&fields, "mac")?;
    let signed = format!("{app_id}|{m_refund_id}|{timestamp}");
    signed_by_lephi(&app_id, &signed, &mac)?;
    match sandbox.zalopay.queried_refund(&m_refund_id) {
        Some(refund) => Ok(refund_answer(&refund)),
        None => Ok(answer(
            StatusCode::OK,
            2,
            UNKNOWN_TRANSACTION,
            "m_refund_id không tồn tại / no such refund",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_trans_ids_start_with_a_date() {
        assert!(is_app_trans_id("261128_K7QX2M9PTB4H"));
        for bad in [
            "261128K7QX",
            "26112_ABC",
            "261128_",
            "261128_a b",
            "2611a8_AB",
        ] {
            assert!(!is_app_trans_id(bad), "{bad}");
        }
    }
}
