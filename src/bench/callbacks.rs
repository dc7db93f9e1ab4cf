//! The `callbacks` workload: signed provider callbacks, in each provider's
//! wire format, paying invoices issued and attempts started through the
//! API beforehand. Four in ten are VNPay IPNs, two MoMo IPNs, two ZaloPay
//! callbacks and two SePay transfer notifications; one in ten more is a
//! provider sending a callback again. Every callback is signed before the
//! clock starts, so the load generator only sends.

use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::target::Target;
use crate::domain::Timestamp;
use crate::providers::signing::{hmac_sha256_hex, hmac_sha512_hex, unix_ms, vietnam_time};
use crate::providers::vnpay::{encode_sorted, vnp_date};

/// What every bench invoice owes.
pub const OWED: i64 = 650_000;

/// A callback as a provider sends it.
#[derive(Debug, Clone)]
pub struct Callback {
    pub provider: &'static str,
    /// `GET /callbacks/{provider}?{query}` when there is no body.
    pub query: String,
    pub body: Option<String>,
    pub authorization: Option<String>,
}

/// Callbacks ready to send, and how many distinct transactions they carry.
pub struct Prepared {
    pub callbacks: Vec<Callback>,
    pub transactions: usize,
}

/// An invoice issued for the bench, with what paying it needs.
pub struct Issued {
    pub id: String,
    pub payment_code: String,
    pub agency: usize,
}

/// Issues `count` invoices through the API, `concurrency` at a time,
/// spread over the target's agencies. `run` names them apart from other
/// runs on the same lephi.
pub async fn issue_invoices(
    target: &Target,
    run: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Issued>> {
    let issued: Vec<anyhow::Result<Issued>> = futures_util::stream::iter(0..count)
        .map(|i| async move {
            let (agency, invoice) = issue_invoice(target, run, i)
                .await
                .map_err(anyhow::Error::msg)?;
            Ok(Issued {
                id: text(&invoice, "id")?,
                payment_code: text(&invoice, "payment_code")?,
                agency,
            })
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    issued.into_iter().collect()
}

/// Issues invoice `i` of `run` through the API, with its dossier code as
/// its idempotency key, at the target's `i`-th agency (round the list):
/// the agency's index and the invoice, or why it was not issued.
pub async fn issue_invoice(target: &Target, run: &str, i: usize) -> Result<(usize, Value), String> {
    let agency = i % target.agencies.len();
    let dossier = format!("{run}-{i:07}");
    let response = target
        .http
        .post(format!("{}/v1/invoices", target.base_url))
        .bearer_auth(&target.system_key)
        .header("Idempotency-Key", &dossier)
        .json(&invoice_body(&target.agencies[agency].code, &dossier))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let invoice: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status == 201 && invoice["dossier_code"] == dossier.as_str() {
        Ok((agency, invoice))
    } else {
        Err(format!("invoice: {status} {text}"))
    }
}

/// Starts an attempt to pay invoice `id` on `channel` through the API;
/// its order reference.
pub async fn start_attempt(target: &Target, id: &str, channel: &str) -> anyhow::Result<String> {
    let attempt = target
        .send(
            reqwest::Method::POST,
            &format!("/v1/invoices/{id}/attempts"),
            &target.system_key,
            Some(&json!({ "channel": channel })),
        )
        .await?
        .ok_for("an attempt")?;
    text(&attempt, "order_ref")
}

/// An invoice request for `dossier` at `agency`, of two fee lines.
fn invoice_body(agency: &str, dossier: &str) -> Value {
    json!({
        "dossier_code": dossier,
        "procedure_code": "1.004227",
        "procedure_name": "Cấp giấy phép xây dựng",
        "agency_code": agency,
        "payer": { "name": "Nguyễn Văn A", "phone": "0912345678" },
        "lines": [
            { "kind": "le_phi", "description": "Lệ phí cấp phép", "amount": 150_000 },
            { "kind": "phi", "description": "Phí thẩm định", "amount": 500_000 }
        ]
    })
}

fn text(value: &Value, field: &str) -> anyhow::Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the answer has no {field}: {value}"))
}

/// The channel invoice `i` is paid on.
fn provider_of(i: usize) -> &'static str {
    match i % 10 {
        0..=3 => "vnpay",
        4 | 5 => "momo",
        6 | 7 => "zalopay",
        _ => "sepay",
    }
}

/// Issues `count` invoices, starts an attempt on each gateway invoice, and
/// signs one callback paying each, plus a tenth more sent again, shuffled.
/// `first_txn` keeps transaction numbers apart from other runs.
pub async fn prepare(
    target: &Target,
    run: &str,
    count: usize,
    concurrency: usize,
    first_txn: i64,
) -> anyhow::Result<Prepared> {
    let invoices = issue_invoices(target, run, count, concurrency).await?;
    let signer = Arc::new(Signer::new(target)?);
    let signed: Vec<anyhow::Result<Callback>> =
        futures_util::stream::iter(invoices.into_iter().enumerate())
            .map(|(i, invoice)| {
                let signer = signer.clone();
                async move {
                    let provider = provider_of(i);
                    let txn = first_txn + i as i64;
                    if provider == "sepay" {
                        let account = &target.agencies[invoice.agency].account_number;
                        return Ok(signer.sepay(txn, account, &invoice.payment_code));
                    }
                    let order_ref = start_attempt(target, &invoice.id, provider).await?;
                    Ok(match provider {
                        "vnpay" => signer.vnpay(txn, &order_ref),
                        "momo" => signer.momo(txn, &order_ref),
                        _ => signer.zalopay(txn, &order_ref),
                    })
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut callbacks = signed.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let transactions = callbacks.len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(first_txn as u64);
    let again: Vec<Callback> = (0..transactions / 10)
        .map(|_| callbacks[rng.random_range(0..transactions)].clone())
        .collect();
    callbacks.extend(again);
    callbacks.shuffle(&mut rng);
    Ok(Prepared {
        callbacks,
        transactions,
    })
}

/// Signs callbacks with the credentials lephi checks them with.
struct Signer {
    vnpay: Option<(String, String)>,
    momo: Option<(String, String, String)>,
    zalopay: Option<(String, String)>,
    sepay_key: Option<String>,
    now: Timestamp,
}

impl Signer {
    fn new(target: &Target) -> anyhow::Result<Signer> {
        let p = &target.providers;
        let secret = Target::secret;
        Ok(Signer {
            vnpay: p
                .vnpay
                .as_ref()
                .map(|v| (v.tmn_code.clone(), secret(&v.hash_secret).to_owned())),
            momo: p.momo.as_ref().map(|m| {
                (
                    m.partner_code.clone(),
                    m.access_key.clone(),
                    secret(&m.secret_key).to_owned(),
                )
            }),
            zalopay: p
                .zalopay
                .as_ref()
                .map(|z| (z.app_id.clone(), secret(&z.key2).to_owned())),
            sepay_key: p
                .sepay
                .as_ref()
                .and_then(|s| s.api_key.as_ref())
                .map(|k| secret(k).to_owned()),
            now: Timestamp::now(),
        })
    }

    fn vnpay(&self, txn: i64, order_ref: &str) -> Callback {
        let (tmn, secret) = self.vnpay.as_ref().expect("VNPay is configured");
        let amount = (OWED * 100).to_string();
        let txn_no = txn.to_string();
        let pay_date = vnp_date(self.now);
        let params = [
            ("vnp_Amount", amount.as_str()),
            ("vnp_BankCode", "NCB"),
            ("vnp_BankTranNo", "VNP14422574"),
            ("vnp_CardType", "ATM"),
            ("vnp_OrderInfo", "Thanh toan phi ho so"),
            ("vnp_PayDate", pay_date.as_str()),
            ("vnp_ResponseCode", "00"),
            ("vnp_TmnCode", tmn.as_str()),
            ("vnp_TransactionNo", txn_no.as_str()),
            ("vnp_TransactionStatus", "00"),
            ("vnp_TxnRef", order_ref),
        ];
        let signed = encode_sorted(params.into_iter());
        let hash = hmac_sha512_hex(secret.as_bytes(), signed.as_bytes());
        Callback {
            provider: "vnpay",
            query: format!("{signed}&vnp_SecureHash={hash}"),
            body: None,
            authorization: None,
        }
    }

    fn momo(&self, txn: i64, order_id: &str) -> Callback {
        let (partner, access, secret) = self.momo.as_ref().expect("MoMo is configured");
        let response_time = unix_ms(self.now);
        let request_id = format!("REQ{order_id}");
        let signed = format!(
            "accessKey={access}&amount={OWED}&extraData=&message=Thành công.&orderId={order_id}\
             &orderInfo=Thanh toan le phi&orderType=momo_wallet&partnerCode={partner}&payType=qr\
             &requestId={request_id}&responseTime={response_time}&resultCode=0&transId={txn}"
        );
        let body = json!({
            "partnerCode": partner,
            "orderId": order_id,
            "requestId": request_id,
            "amount": OWED,
            "orderInfo": "Thanh toan le phi",
            "orderType": "momo_wallet",
            "transId": txn,
            "resultCode": 0,
            "message": "Thành công.",
            "payType": "qr",
            "responseTime": response_time,
            "extraData": "",
            "signature": hmac_sha256_hex(secret.as_bytes(), signed.as_bytes()),
        });
        Callback {
            provider: "momo",
            query: String::new(),
            body: Some(body.to_string()),
            authorization: None,
        }
    }

    fn zalopay(&self, txn: i64, app_trans_id: &str) -> Callback {
        let (app_id, key2) = self.zalopay.as_ref().expect("ZaloPay is configured");
        let now_ms = unix_ms(self.now);
        let data = json!({
            "app_id": app_id.parse::<i64>().unwrap_or_default(),
            "app_trans_id": app_trans_id,
            "app_time": now_ms,
            "app_user": "lephi",
            "amount": OWED,
            "embed_data": "{}",
            "item": "[]",
            "zp_trans_id": txn,
            "server_time": now_ms,
            "channel": 38,
            "merchant_user_id": "bench",
            "user_fee_amount": 0,
            "discount_amount": 0,
        })
        .to_string();
        let mac = hmac_sha256_hex(key2.as_bytes(), data.as_bytes());
        Callback {
            provider: "zalopay",
            query: String::new(),
            body: Some(json!({ "data": data, "mac": mac, "type": 1 }).to_string()),
            authorization: None,
        }
    }

    fn sepay(&self, txn: i64, account: &str, payment_code: &str) -> Callback {
        let key = self.sepay_key.as_ref().expect("SePay is configured");
        let paid = vietnam_time(self.now);
        let body = json!({
            "id": txn,
            "gateway": "Vietcombank",
            "transactionDate": format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                paid.year(), u8::from(paid.month()), paid.day(),
                paid.hour(), paid.minute(), paid.second()
            ),
            "accountNumber": account,
            "code": null,
            "content": format!("{payment_code} NOP LE PHI HO SO"),
            "transferType": "in",
            "transferAmount": OWED,
            "accumulated": 0,
            "subAccount": null,
            "referenceCode": format!("FT{txn}"),
            "description": "",
        });
        Callback {
            provider: "sepay",
            query: String::new(),
            body: Some(body.to_string()),
            authorization: Some(format!("Apikey {key}")),
        }
    }
}

/// Sends `callback` and checks that the provider's acknowledgement came
/// back: anything else (a refusal, "try again later", a 5xx) is a failure.
pub async fn send(target: &Target, callback: &Callback) -> Result<(), String> {
    let url = format!("{}/callbacks/{}", target.base_url, callback.provider);
    let request = match &callback.body {
        None => target.http.get(format!("{url}?{}", callback.query)),
        Some(body) => {
            let mut request = target
                .http
                .post(url)
                .header("Content-Type", "application/json")
                .body(body.clone());
            if let Some(auth) = &callback.authorization {
                request = request.header("Authorization", auth);
            }
            request
        }
    };
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let acknowledged = match callback.provider {
        "vnpay" => status == 200 && matches!(json["RspCode"].as_str(), Some("00" | "02")),
        "momo" => status == 204,
        "zalopay" => status == 200 && json["return_code"] == 1,
        _ => status == 200 && json["success"] == true,
    };
    if acknowledged {
        Ok(())
    } else {
        Err(format!("{}: {status} {text}", callback.provider))
    }
}
