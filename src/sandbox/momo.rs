//! MoMo's side, in the sandbox (API v2, `captureWallet`): `create`
//! answering with a `payUrl` to the sandbox's payment page, the signed
//! JSON IPN, the redirect with the same signed fields, `query` (listing
//! the order's refunds in `refundTrans`), and `refund`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{
    Answer, DecisionForm, MOMO_ACCESS_KEY, MOMO_PARTNER_CODE, MOMO_SECRET_KEY, Order, Outcome,
    Refund, RefundRefusal, RefundStatus, Refusal, Sandbox, decision_form, done_page, form_fields,
    order_table, page, required, see_other, with_query,
};
use crate::domain::{Timestamp, Vnd};
use crate::providers::momo::AMOUNT_LIMITS;
use crate::providers::signing::{hmac_sha256_hex, json_int, unix_ms, verify_hmac_sha256_hex};

const DECIDE_PATH: &str = "/sandbox/momo/pay";
const SUCCESS: i64 = 0;
/// Created, waiting for the payer to confirm.
const WAITING: i64 = 1000;
/// The payer declined.
const DECLINED: i64 = 1006;
/// A refund MoMo is processing.
const PROCESSING: i64 = 7000;
/// A refund that failed, or of a payment MoMo does not have.
const REFUND_FAILED: i64 = 1080;
/// A refund of more than what is left of the payment.
const REFUND_OVER: i64 = 1081;
/// An `orderId` used by another request.
const ORDER_ID_USED: i64 = 41;

/// What MoMo keeps of a `create` request besides the common order fields.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub request_id: String,
    pub extra_data: String,
    pub pay_url: String,
}

fn secret() -> &'static [u8] {
    MOMO_SECRET_KEY.as_bytes()
}

fn answer(status: StatusCode, body: Value) -> Answer {
    Answer::new(status, body)
}

fn refusal(status: StatusCode, result_code: i64, message: &str) -> Answer {
    answer(
        status,
        json!({
            "partnerCode": MOMO_PARTNER_CODE,
            "responseTime": unix_ms(Timestamp::now()),
            "resultCode": result_code,
            "message": message,
        }),
    )
}

/// A required string field of a JSON request, as sent.
fn text<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str, Answer> {
    match body.get(key) {
        Some(Value::String(s)) if s.chars().count() <= 1_000 => Ok(s),
        _ => Err(refusal(
            StatusCode::BAD_REQUEST,
            20,
            &format!("{key} is missing or is not a string of at most 1000 characters"),
        )),
    }
}

/// MoMo's `orderId` rule: `^[0-9a-zA-Z]([-_.]*[0-9a-zA-Z]+)*$`, at most
/// 50 characters.
fn is_momo_order_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    !bytes.is_empty()
        && bytes.len() <= 50
        && bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
}

/// Refuses a request for another partner, or whose signature is not
/// lephi's over `signed`.
fn signed_by_lephi(partner_code: &str, signed: &str, signature: &str) -> Result<(), Answer> {
    if partner_code != MOMO_PARTNER_CODE
        || !verify_hmac_sha256_hex(secret(), signed.as_bytes(), signature)
    {
        return Err(refusal(
            StatusCode::UNAUTHORIZED,
            13,
            "Merchant authentication failed: the partner or signature does not match",
        ));
    }
    Ok(())
}

/// Refuses an `orderId` or `requestId` MoMo would not take.
fn momo_ids(order_id: &str, request_id: &str) -> Result<(), Answer> {
    if !is_momo_order_id(order_id) || !is_momo_order_id(request_id) {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            20,
            "orderId or requestId has characters MoMo does not take",
        ));
    }
    Ok(())
}

/// `POST /v2/gateway/api/create`.
pub fn create(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    Answer::respond(create_checked(sandbox, body))
}

fn create_checked(sandbox: &Sandbox, body: &[u8]) -> Result<Answer, Answer> {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            20,
            "the body is not a JSON object",
        ));
    };
    let amount = request
        .get("amount")
        .and_then(json_int)
        .ok_or_else(|| refusal(StatusCode::BAD_REQUEST, 20, "amount is not an integer"))?;
    let (partner_code, access_key) = (text(&request, "partnerCode")?, text(&request, "accessKey")?);
    let (request_id, order_id) = (text(&request, "requestId")?, text(&request, "orderId")?);
    let (order_info, redirect_url) = (text(&request, "orderInfo")?, text(&request, "redirectUrl")?);
    let (ipn_url, extra_data) = (text(&request, "ipnUrl")?, text(&request, "extraData")?);
    let request_type = text(&request, "requestType")?;
    let signature = text(&request, "signature")?;
    let signed = format!(
        "accessKey={access_key}&amount={amount}&extraData={extra_data}&ipnUrl={ipn_url}\
         &orderId={order_id}&orderInfo={order_info}&partnerCode={partner_code}\
         &redirectUrl={redirect_url}&requestId={request_id}&requestType={request_type}"
    );
    if partner_code != MOMO_PARTNER_CODE
        || access_key != MOMO_ACCESS_KEY
        || !verify_hmac_sha256_hex(secret(), signed.as_bytes(), signature)
    {
        return Err(refusal(
            StatusCode::UNAUTHORIZED,
            13,
            "Merchant authentication failed: the partner, access key or signature does not match",
        ));
    }
    if request_type != "captureWallet" {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            20,
            "the sandbox takes requestType captureWallet",
        ));
    }
    let (min, max) = AMOUNT_LIMITS;
    if !(min.dong()..=max.dong()).contains(&amount) {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            22,
            "amount is out of range (1,000 to 50,000,000)",
        ));
    }
    momo_ids(order_id, request_id)?;
    if ipn_url != sandbox.callback_url("momo") {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            20,
            "ipnUrl must be this lephi's /callbacks/momo",
        ));
    }
    if !sandbox.is_own_url(redirect_url) {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            20,
            "redirectUrl must be a page of this lephi",
        ));
    }
    let pay_url = format!("{}/sandbox/momo/pay?t={order_id}", sandbox.public_url);
    let order = Order {
        order_ref: order_id.to_owned(),
        amount: Vnd::new(amount),
        description: order_info.to_owned(),
        return_url: Some(redirect_url.to_owned()),
        created_at: Timestamp::now(),
        outcome: Outcome::Pending,
        refunds: Vec::new(),
        wire: Wire {
            request_id: request_id.to_owned(),
            extra_data: extra_data.to_owned(),
            pay_url,
        },
    };
    let order = match sandbox.momo.insert(order) {
        Ok(order) => order,
        // `requestId` is MoMo's idempotency key: the same request again
        // gets the same answer.
        Err(kept) if kept.wire.request_id == request_id && kept.amount.dong() == amount => *kept,
        Err(_) => {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                41,
                "orderId already exists",
            ));
        }
    };
    Ok(answer(
        StatusCode::OK,
        json!({
            "partnerCode": MOMO_PARTNER_CODE,
            "orderId": order.order_ref,
            "requestId": order.wire.request_id,
            "amount": order.amount.dong(),
            "responseTime": unix_ms(Timestamp::now()),
            "message": "Thành công.",
            "resultCode": SUCCESS,
            "payUrl": order.wire.pay_url,
            "deeplink": order.wire.pay_url,
            "qrCodeUrl": order.wire.pay_url,
        }),
    ))
}

/// `GET /sandbox/momo/pay?t=...`: the payment page of a created order.
pub fn payment_page(sandbox: &Sandbox, query: &str) -> Result<HttpResponse, Refusal> {
    let fields = form_fields(query.as_bytes())?;
    let order = sandbox
        .momo
        .get(&required(&fields, "t")?)
        .ok_or_else(Refusal::unknown_order)?;
    let body = match order.outcome {
        Outcome::Pending => decision_form(
            DECIDE_PATH,
            &order.order_ref,
            "Từ chối: MoMo gửi IPN với resultCode=1006. / Decline: MoMo sends an IPN with resultCode 1006.",
        ),
        _ => "<p>Đơn hàng này đã được xử lý. / This order was already approved or declined.</p>"
            .to_owned(),
    };
    Ok(page(
        StatusCode::OK,
        "MoMo — Ví điện tử / E-wallet",
        &format!(
            "{}{body}",
            order_table(
                &format!("lephi (partnerCode {MOMO_PARTNER_CODE})"),
                &order.order_ref,
                &order.description,
                order.amount
            )
        ),
    ))
}

/// The payer approved or declined: MoMo's IPN goes to lephi, then the
/// browser goes to `redirectUrl` with the same signed fields.
pub async fn decide(sandbox: &Sandbox, body: &[u8]) -> Result<HttpResponse, Refusal> {
    let form = DecisionForm::parse(body)?;
    let order = sandbox
        .momo
        .decide(&form.order_ref, form.outcome(sandbox.next_txn()))?;
    let ipn = ipn(&order);
    let url = sandbox.callback_url("momo");
    let answers = sandbox
        .deliver(form.times(), || sandbox.http.post(&url).json(&ipn))
        .await;
    Ok(match &order.return_url {
        Some(return_url) => {
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(ipn.iter().map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                }))
                .finish();
            see_other(&with_query(return_url, &query))
        }
        None => done_page(form.decision, &answers),
    })
}

/// The outcome's `resultCode`, message and when it happened.
fn result(order: &Order<Wire>) -> (i64, &'static str, i64, Option<Timestamp>) {
    match order.outcome {
        Outcome::Pending => (
            WAITING,
            "Giao dịch đã được khởi tạo, chờ người dùng xác nhận thanh toán.",
            0,
            None,
        ),
        Outcome::Paid { txn, at } => (SUCCESS, "Thành công.", txn, Some(at)),
        Outcome::Declined { txn, at } => (
            DECLINED,
            "Giao dịch bị từ chối bởi người dùng.",
            txn,
            Some(at),
        ),
    }
}

/// The signed IPN of a decided order.
fn ipn(order: &Order<Wire>) -> Map<String, Value> {
    let (result_code, message, trans_id, at) = result(order);
    let response_time = unix_ms(at.unwrap_or_else(Timestamp::now));
    let amount = order.amount.dong();
    let signed = format!(
        "accessKey={MOMO_ACCESS_KEY}&amount={amount}&extraData={}&message={message}\
         &orderId={}&orderInfo={}&orderType=momo_wallet&partnerCode={MOMO_PARTNER_CODE}\
         &payType=qr&requestId={}&responseTime={response_time}&resultCode={result_code}\
         &transId={trans_id}",
        order.wire.extra_data, order.order_ref, order.description, order.wire.request_id,
    );
    let body = json!({
        "partnerCode": MOMO_PARTNER_CODE,
        "orderId": order.order_ref,
        "requestId": order.wire.request_id,
        "amount": amount,
        "orderInfo": order.description,
        "orderType": "momo_wallet",
        "transId": trans_id,
        "resultCode": result_code,
        "message": message,
        "payType": "qr",
        "responseTime": response_time,
        "extraData": order.wire.extra_data,
        "signature": hmac_sha256_hex(secret(), signed.as_bytes()),
    });
    match body {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `POST /v2/gateway/api/query`: where an order stands. An order the
/// sandbox does not know is `resultCode` 42.
pub fn query(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    Answer::respond(query_checked(sandbox, body))
}

fn query_checked(sandbox: &Sandbox, body: &[u8]) -> Result<Answer, Answer> {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            20,
            "the body is not a JSON object",
        ));
    };
    let partner_code = text(&request, "partnerCode")?;
    let request_id = text(&request, "requestId")?;
    let order_id = text(&request, "orderId")?;
    let signature = text(&request, "signature")?;
    let signed = format!(
        "accessKey={MOMO_ACCESS_KEY}&orderId={order_id}&partnerCode={partner_code}&requestId={request_id}"
    );
    signed_by_lephi(partner_code, &signed, signature)?;
    let Some(order) = sandbox.momo.queried(order_id) else {
        return Ok(answer(
            StatusCode::OK,
            json!({
                "partnerCode": MOMO_PARTNER_CODE,
                "orderId": order_id,
                "requestId": request_id,
                "responseTime": unix_ms(Timestamp::now()),
                "resultCode": 42,
                "message": "orderId không tồn tại. / No such orderId.",
            }),
        ));
    };
    let (result_code, message, trans_id, at) = result(&order);
    let refunds: Vec<Value> = order
        .refunds
        .iter()
        .map(|refund| {
            json!({
                "orderId": refund.id,
                "amount": refund.amount.dong(),
                "resultCode": refund_result(refund).0,
                "transId": refund.txn,
                "createdTime": unix_ms(refund.at),
                "description": refund.description,
            })
        })
        .collect();
    Ok(answer(
        StatusCode::OK,
        json!({
            "partnerCode": MOMO_PARTNER_CODE,
            "orderId": order.order_ref,
            "requestId": request_id,
            "extraData": order.wire.extra_data,
            "amount": order.amount.dong(),
            "transId": trans_id,
            "payType": if at.is_some() { "qr" } else { "" },
            "resultCode": result_code,
            "refundTrans": refunds,
            "message": message,
            "responseTime": unix_ms(Timestamp::now()),
            "lastUpdated": unix_ms(at.unwrap_or(order.created_at)),
        }),
    ))
}

/// A refund's `resultCode` and message, where it stands now.
fn refund_result(refund: &Refund) -> (i64, &'static str) {
    match refund.status() {
        RefundStatus::Succeeded => (SUCCESS, "Thành công."),
        RefundStatus::InProgress => (PROCESSING, "Giao dịch đang được xử lý."),
        RefundStatus::Failed => (
            REFUND_FAILED,
            "Hoàn tiền thất bại. / The refund failed (sandbox: its amount ends in 3).",
        ),
    }
}

/// `POST /v2/gateway/api/refund`: a refund of a payment the sandbox
/// approved, named by its `transId`.
pub async fn refund(sandbox: &Sandbox, body: &[u8]) -> HttpResponse {
    sandbox.answer_refund(refund_checked(sandbox, body)).await
}

/// The answer, and the refund when it is a new one.
fn refund_checked(sandbox: &Sandbox, body: &[u8]) -> Result<(Answer, Option<Refund>), Answer> {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            20,
            "the body is not a JSON object",
        ));
    };
    let number = |key: &str| {
        request.get(key).and_then(json_int).ok_or_else(|| {
            refusal(
                StatusCode::BAD_REQUEST,
                20,
                &format!("{key} is not an integer"),
            )
        })
    };
    let (amount, trans_id) = (number("amount")?, number("transId")?);
    let (partner_code, order_id) = (text(&request, "partnerCode")?, text(&request, "orderId")?);
    let (request_id, description) = (text(&request, "requestId")?, text(&request, "description")?);
    let signature = text(&request, "signature")?;
    let signed = format!(
        "accessKey={MOMO_ACCESS_KEY}&amount={amount}&description={description}&orderId={order_id}\
         &partnerCode={partner_code}&requestId={request_id}&transId={trans_id}"
    );
    signed_by_lephi(partner_code, &signed, signature)?;
    momo_ids(order_id, request_id)?;
    let (min, _) = AMOUNT_LIMITS;
    if amount < min.dong() {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            22,
            "a refund is at least 1,000 đồng",
        ));
    }
    // A refund's orderId is an order id like a payment's.
    if sandbox.momo.get(order_id).is_some() {
        return Err(refusal(
            StatusCode::OK,
            ORDER_ID_USED,
            "orderId already exists",
        ));
    }
    let refund = Refund::new(
        order_id,
        request_id,
        Vnd::new(amount),
        sandbox.next_txn(),
        description,
    );
    let refunded = |refund: &Refund| {
        let (code, message) = refund_result(refund);
        answer(
            StatusCode::OK,
            json!({
                "partnerCode": MOMO_PARTNER_CODE,
                "orderId": refund.id,
                "requestId": refund.request_key,
                "amount": refund.amount.dong(),
                "transId": refund.txn,
                "resultCode": code,
                "message": message,
                "responseTime": unix_ms(Timestamp::now()),
            }),
        )
    };
    let refused = |code: i64, message: &str| {
        Err(answer(
            StatusCode::OK,
            json!({
                "partnerCode": MOMO_PARTNER_CODE,
                "orderId": order_id,
                "requestId": request_id,
                "amount": amount,
                "transId": trans_id,
                "resultCode": code,
                "message": message,
                "responseTime": unix_ms(Timestamp::now()),
            }),
        ))
    };
    match sandbox.momo.refund(None, trans_id, refund) {
        Ok(refund) => Ok((refunded(&refund), Some(refund))),
        // `requestId` is MoMo's idempotency key: the same refund again
        // gets its answer again, as it stands now.
        Err(RefundRefusal::Repeated(kept))
            if kept.0.request_key == request_id
                && kept.0.amount.dong() == amount
                && sandbox.momo.get(&kept.1).and_then(|o| o.outcome.txn()) == Some(trans_id) =>
        {
            Ok((refunded(&kept.0), None))
        }
        Err(RefundRefusal::Repeated(_)) => refused(ORDER_ID_USED, "orderId already exists"),
        Err(RefundRefusal::UnknownPayment | RefundRefusal::NotPaid) => refused(
            REFUND_FAILED,
            "Không tìm thấy giao dịch thanh toán thành công với transId này. / No successful payment has this transId.",
        ),
        Err(RefundRefusal::OverRefundable { left }) => refused(
            REFUND_OVER,
            &format!(
                "Số tiền hoàn vượt quá số tiền còn lại của giao dịch. / The refund is more than what is left of the payment ({} đồng).",
                left.dong()
            ),
        ),
        Err(RefundRefusal::TooMany) => refused(
            REFUND_FAILED,
            "The sandbox keeps no more refunds of this payment",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_follow_momos_rule() {
        for good in ["261128K7QX2M9PTB4H", "a-b_c.d", "A", "a--b"] {
            assert!(is_momo_order_id(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a b", "đ", &"a".repeat(51)] {
            assert!(!is_momo_order_id(bad), "{bad}");
        }
    }
}
