//! A bank in the sandbox, watched by a SePay-style service: the payer
//! sends a transfer of an amount with a note to an agency's account, and
//! the service posts the incoming transfer to lephi's `/callbacks/sepay`
//! with its API key, as SePay does.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

use super::{Refusal, SEPAY_API_KEY, Sandbox, esc, form_fields, page};
use crate::domain::Vnd;
use crate::domain::transfer_note::find_payment_code;
use crate::providers::bank_transfer::TransferInstructions;
use crate::providers::signing::vietnam_time;

const TRANSFER_PATH: &str = "/sandbox/bank/transfer";
/// The longest transfer note a bank keeps.
const NOTE_MAX: usize = 200;

/// The sandbox bank's transfer page, pre-filled from an invoice's
/// transfer instructions: what a checkout page can link to.
pub fn transfer_page_url(public_url: &str, instructions: &TransferInstructions) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("account", &instructions.account_number)
        .append_pair("amount", &instructions.amount.dong().to_string())
        .append_pair("note", &instructions.transfer_note)
        .finish();
    format!(
        "{}{TRANSFER_PATH}?{query}",
        public_url.trim_end_matches('/')
    )
}

/// A transfer the payer asks for, checked.
struct Transfer {
    account: String,
    amount: Option<Vnd>,
    note: String,
    twice: bool,
}

/// Reads the transfer fields; with `complete`, account and amount are
/// required (a post), otherwise all may be empty (pre-filling the page).
fn transfer(bytes: &[u8], complete: bool) -> Result<Transfer, Refusal> {
    let fields = form_fields(bytes)?;
    let text = |key: &str| {
        fields
            .get(key)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let account = text("account");
    if (complete || !account.is_empty())
        && (account.is_empty()
            || account.len() > 19
            || !account.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(Refusal::bad_request(
            "Số tài khoản: 1 đến 19 chữ cái hoặc chữ số. / account must be 1 to 19 letters or digits.",
        ));
    }
    let amount_text = text("amount");
    let amount = if amount_text.is_empty() && !complete {
        None
    } else {
        let amount = Vnd::parse_decimal(&amount_text)
            .or_else(|_| Vnd::parse_vietnamese(&amount_text))
            .ok()
            .filter(|a| (1..=1_000_000_000_000).contains(&a.dong()))
            .ok_or_else(|| {
                Refusal::bad_request(
                    "Số tiền phải là số đồng nguyên dương. / amount must be a positive whole number of đồng.",
                )
            })?;
        Some(amount)
    };
    let note = text("note");
    if note.chars().count() > NOTE_MAX {
        return Err(Refusal::bad_request(format!(
            "Nội dung tối đa {NOTE_MAX} ký tự. / the note takes at most {NOTE_MAX} characters."
        )));
    }
    Ok(Transfer {
        account,
        amount,
        note,
        twice: fields.contains_key("twice"),
    })
}

/// `GET /sandbox/bank/transfer?account=&amount=&note=`: the form.
pub fn transfer_page(query: &str) -> Result<HttpResponse, Refusal> {
    let prefill = transfer(query.as_bytes(), false)?;
    let amount = prefill
        .amount
        .map(|a| a.dong().to_string())
        .unwrap_or_default();
    Ok(page(
        StatusCode::OK,
        "Ngân hàng thử nghiệm — Chuyển khoản / Sandbox bank — Transfer",
        &format!(
            r#"<p>Chuyển tiền vào tài khoản của cơ quan; dịch vụ kiểu SePay sẽ báo cho lephi. / Send money to the agency's account; a SePay-style service tells lephi.</p>
<form method="post" action="{TRANSFER_PATH}">
<p><label>Số tài khoản nhận / Receiving account<br><input type="text" name="account" value="{}" required maxlength="19"></label></p>
<p><label>Số tiền (đồng) / Amount (đồng)<br><input type="text" name="amount" value="{}" required></label></p>
<p><label>Nội dung chuyển khoản / Transfer note<br><input type="text" name="note" value="{}" maxlength="{NOTE_MAX}"></label></p>
<p><label><input type="checkbox" name="twice" value="1"> Gửi thông báo hai lần / deliver the notification twice</label></p>
<button class="approve" type="submit">Chuyển tiền / Send the transfer</button>
</form>"#,
            esc(&prefill.account),
            esc(&amount),
            esc(&prefill.note),
        ),
    ))
}

/// `POST /sandbox/bank/transfer`: the transfer arrives on the account and
/// its SePay-style notification goes to lephi.
pub async fn send(sandbox: &Sandbox, body: &[u8]) -> Result<HttpResponse, Refusal> {
    let transfer = transfer(body, true)?;
    let amount = transfer.amount.unwrap_or(Vnd::ZERO);
    let id = sandbox.next_txn();
    let local = vietnam_time(crate::domain::Timestamp::now());
    let transaction_date = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    );
    let notification = json!({
        "id": id,
        "gateway": "SANDBOX BANK",
        "transactionDate": transaction_date,
        "accountNumber": transfer.account,
        "code": null,
        "content": transfer.note,
        "transferType": "in",
        "transferAmount": amount.dong(),
        "accumulated": amount.dong(),
        "subAccount": null,
        "referenceCode": format!("SANDBOX.{id}"),
        "description": transfer.note,
    });
    let url = sandbox.callback_url("sepay");
    let times = if transfer.twice { 2 } else { 1 };
    let answers = sandbox
        .deliver(times, || {
            sandbox
                .http
                .post(&url)
                .header(
                    reqwest::header::AUTHORIZATION,
                    format!("Apikey {SEPAY_API_KEY}"),
                )
                .json(&notification)
        })
        .await;
    let answers: String = answers
        .iter()
        .map(|a| format!("<li><code>{}</code></li>", esc(a)))
        .collect();
    let checkout = match find_payment_code(&transfer.note) {
        Some(code) => format!(
            "<p><a href=\"{}\">Xem hoá đơn {} / See invoice {}</a></p>",
            esc(&format!("{}/pay/{}", sandbox.public_url, code.as_str())),
            esc(code.as_str()),
            esc(code.as_str()),
        ),
        None => "<p>Nội dung không có mã thanh toán: lephi ghi nhận là ngoại lệ. / The note names no payment code: lephi keeps the money as an exception.</p>".to_owned(),
    };
    Ok(page(
        StatusCode::OK,
        "Đã chuyển tiền / Transfer sent",
        &format!(
            "<p>{} → {} · <code>{}</code></p><p>lephi đã trả lời / lephi answered:</p><ul>{answers}</ul>{checkout}",
            esc(&amount.display_vi()),
            esc(&transfer.account),
            esc(&transfer.note),
        ),
    ))
}
