//! A refund is sent to the provider once, whatever stands in the way: the
//! real `lephi serve` approving it is killed with SIGKILL after MoMo has
//! taken the refund and before lephi could commit its answer; two other
//! processes on the same database then run their janitors at once. MoMo
//! (a fake that speaks its wire format) sees one refund request, and the
//! refund ends succeeded under that request's id, through MoMo's status
//! query alone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::callbacks::{gateways_accept_on, momo_ipn, now_ms};
use crate::helpers::{Backend, creds, database_url, hmac_sha256_hex};
use crate::on_both_backends;
use crate::process::{AGENCY, Api, Served, port_outside_ephemeral_range, try_serve_with};

on_both_backends!(a_refund_is_sent_once_across_a_crash_and_two_processes);

/// How long the fake MoMo takes to answer a refund: long enough to kill
/// lephi after MoMo has taken it and before lephi hears the answer.
const REFUND_ANSWER_DELAY: Duration = Duration::from_secs(4);

/// The refunds MoMo has taken: the JSON bodies sent to it.
type Taken = Arc<Mutex<Vec<Value>>>;

/// MoMo's create, refund and status-query APIs on `server`.
async fn momo_takes_refunds(server: &wiremock::MockServer) -> Taken {
    gateways_accept_on(server).await;
    let taken: Taken = Arc::default();
    let refunds = taken.clone();
    Mock::given(method("POST"))
        .and(path("/v2/gateway/api/refund"))
        .respond_with(move |request: &Request| {
            let sent: Value = request.body_json().unwrap_or_default();
            refunds.lock().unwrap().push(sent.clone());
            ResponseTemplate::new(200)
                .set_delay(REFUND_ANSWER_DELAY)
                .set_body_json(json!({
                    "partnerCode": sent["partnerCode"], "orderId": sent["orderId"],
                    "requestId": sent["requestId"], "amount": sent["amount"],
                    "transId": 4_100_000_001i64, "resultCode": 0, "message": "Thành công.",
                    "responseTime": now_ms(),
                }))
        })
        .mount(server)
        .await;
    let listed = taken.clone();
    Mock::given(method("POST"))
        .and(path("/v2/gateway/api/query"))
        .respond_with(move |request: &Request| {
            let sent: Value = request.body_json().unwrap_or_default();
            let refund_trans: Vec<Value> = listed
                .lock()
                .unwrap()
                .iter()
                .map(|r| json!({ "orderId": r["orderId"], "amount": r["amount"], "resultCode": 0, "transId": 4_100_000_001i64 }))
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({
                "partnerCode": sent["partnerCode"], "orderId": sent["orderId"],
                "requestId": sent["requestId"], "extraData": "", "amount": 650000,
                "transId": 3_000_000_002i64, "payType": "qr", "resultCode": 0,
                "refundTrans": refund_trans, "message": "Thành công.", "responseTime": now_ms(),
            }))
        })
        .mount(server)
        .await;
    taken
}

async fn serve(url: &str, provider_api: &str, log: &std::path::Path, janitor: bool) -> Served {
    let bind = format!("127.0.0.1:{}", port_outside_ephemeral_range());
    // A sent refund is first asked about a second later.
    let extra: &[(&str, &str)] = if janitor {
        &[
            ("JANITOR__ENABLED", "true"),
            ("JANITOR__INTERVAL_SECS", "1"),
            ("REFUNDS__CHECK_AFTER_SECS", "1"),
        ]
    } else {
        &[("REFUNDS__CHECK_AFTER_SECS", "1")]
    };
    try_serve_with(url, &bind, provider_api, log, extra)
        .await
        .unwrap_or_else(|why| panic!("{why}"))
}

async fn a_refund_is_sent_once_across_a_crash_and_two_processes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let log = dir.path().join("serve.log");
    let momo = wiremock::MockServer::start().await;
    let taken = momo_takes_refunds(&momo).await;

    let first = serve(&url, &momo.uri(), &log, false).await;
    let admin = first
        .admin_key
        .clone()
        .expect("the first start prints the admin key");
    let api = Api::new(&first.address);
    for (code, level, parent) in [("P", "province", None), (AGENCY, "district", Some("P"))] {
        let body = json!({ "code": code, "name": format!("Agency {code}"), "level": level, "parent_code": parent });
        let (status, answer) = api
            .call(Method::POST, "/v1/agencies", &admin, &body, None)
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let key = |role: &'static str, agency: &'static str| {
        let (api, admin) = (&api, &admin);
        async move {
            let body = json!({ "role": role, "agency_code": agency, "name": role });
            let (status, answer) = api.call(Method::POST, "/v1/keys", admin, &body, None).await;
            assert_eq!(status, 201, "{answer}");
            answer["key"].as_str().unwrap().to_owned()
        }
    };
    let system = key("agency_system", AGENCY).await;
    let asker = key("finance", "P").await;
    let approver = key("finance", "P").await;

    // One invoice, paid twice through MoMo: the second payment is held.
    let invoice = crate::helpers::invoice_body(AGENCY, "HS-CRASH");
    let (status, invoice) = api
        .call(
            Method::POST,
            "/v1/invoices",
            &system,
            &invoice,
            Some("HS-CRASH"),
        )
        .await;
    assert_eq!(status, 201, "{invoice}");
    let id = invoice["id"].as_str().unwrap();
    let mut orders = Vec::new();
    for _ in 0..2 {
        let (status, attempt) = api
            .call(
                Method::POST,
                &format!("/v1/invoices/{id}/attempts"),
                &system,
                &json!({ "channel": "momo" }),
                None,
            )
            .await;
        assert_eq!(status, 201, "{attempt}");
        orders.push(attempt["order_ref"].as_str().unwrap().to_owned());
    }
    for (order_ref, trans_id) in orders.iter().zip([3_000_000_001i64, 3_000_000_002]) {
        let (mut body, signed) = momo_ipn(order_ref, trans_id);
        body["signature"] = json!(hmac_sha256_hex(creds::MOMO_SECRET, &signed));
        let answer = api
            .client
            .post(format!("{}/callbacks/momo", first.address))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204, "{}", answer.text().await.unwrap());
    }
    let (_, now) = api
        .call(
            Method::GET,
            &format!("/v1/invoices/{id}"),
            &system,
            &json!(null),
            None,
        )
        .await;
    let held = now["held_payments"][0]["payment_id"]
        .as_str()
        .expect("one payment held")
        .to_owned();

    let (status, refund) = api
        .call(
            Method::POST,
            &format!("/v1/payments/{held}/refunds"),
            &asker,
            &json!({ "amount": 650000, "reason": "Nộp hai lần" }),
            Some("refund-crash"),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    let refund_id = refund["id"].as_str().unwrap().to_owned();

    // The approval sends the refund; MoMo takes it, and lephi dies before
    // it hears the answer.
    let approving = {
        let (client, address, approver, refund_id) = (
            api.client.clone(),
            first.address.clone(),
            approver.clone(),
            refund_id.clone(),
        );
        tokio::spawn(async move {
            client
                .post(format!("{address}/v1/refunds/{refund_id}/approve"))
                .bearer_auth(approver)
                .json(&json!({}))
                .send()
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while taken.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "MoMo never got the refund");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().await;
    assert!(
        approving.await.unwrap().is_err(),
        "the approval was cut off"
    );
    let sent = taken.lock().unwrap()[0].clone();

    // Two processes on the same database, both running the janitor.
    let momo_api = momo.uri();
    let (second, third) = tokio::join!(
        serve(&url, &momo_api, &log, true),
        serve(&url, &momo_api, &log, true),
    );
    let api = Api::new(&second.address);
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (status, refund) = api
            .call(
                Method::GET,
                &format!("/v1/refunds/{refund_id}"),
                &asker,
                &json!(null),
                None,
            )
            .await;
        assert_eq!(status, 200, "{refund}");
        if refund["status"] == "succeeded" {
            break refund;
        }
        assert_eq!(refund["status"], "submitted", "{refund}");
        assert!(
            Instant::now() < deadline,
            "the refund was never settled: {refund}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Approving it again, on either process, changes nothing.
    for address in [&second.address, &third.address] {
        let (status, answer) = Api::new(address)
            .call(
                Method::POST,
                &format!("/v1/refunds/{refund_id}/approve"),
                &approver,
                &json!({}),
                None,
            )
            .await;
        assert_eq!(status, 409, "{answer}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let taken = taken.lock().unwrap().clone();
    assert_eq!(taken.len(), 1, "MoMo was sent the refund once: {taken:?}");
    assert_eq!(done["request_id"], sent["orderId"], "{done}");
    assert_eq!(done["provider_refund_id"], "4100000001", "{done}");
    let (_, events) = api
        .call(
            Method::GET,
            "/v1/events?type=refund.succeeded",
            &admin,
            &json!(null),
            None,
        )
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    second.kill().await;
    third.kill().await;
}
