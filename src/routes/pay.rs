//! `/pay/{code}`: the citizens' pages. A dossier system hands the payer
//! the checkout link (`checkout_url`); from it the payer starts a payment
//! on a gateway or by bank transfer, comes back to the return page, and
//! prints the receipt. Every answer is an HTML page, errors included.
//!
//! The payment code in the URL is the only credential: whoever has the
//! link may see the invoice (the payer's id number masked) and pay it.
//! That is safe enough because the code cannot be guessed at any useful
//! rate. [`PaymentCode`] draws ten symbols from a 32-symbol alphabet: 50
//! random bits, about 1.1 × 10^15 codes (the check symbol only catches
//! typos and adds no secrecy). Even with a million open invoices, a guess
//! finds one with a chance of about one in a billion, and at the default
//! limit of 60 requests a minute one address would need some 35 years of
//! guessing, on average, to find a single invoice. Hence the per-address
//! [`RateLimiter`](super::RateLimiter) on every page here
//! (`checkout.requests_per_minute`, answered 429 with `Retry-After`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use tracing_actix_web::RequestId;

use super::attempts::{StartedAttempt, Starter, start_attempt};
use crate::domain::audit::Actor;
use crate::domain::payment::{AttemptStatus, Channel};
use crate::domain::{InvoiceStatus, PaymentCode, Scope, Timestamp};
use crate::error::ErrorCode;
use crate::pages::checkout::CheckoutPage;
use crate::pages::receipt::ReceiptPage;
use crate::pages::returned::{Outcome, ReturnPage};
use crate::pages::transfer::TransferPage;
use crate::pages::under_way::UnderWayPage;
use crate::pages::{self, Lang, notice};
use crate::providers::{CallbackEvent, PaymentTarget, ReceivedPayment, zalopay};
use crate::startup::AppState;
use crate::store::CheckoutInvoice;

/// The channels a citizen may pick, in the order the page offers them.
const CHANNELS: [Channel; 4] = [
    Channel::Vnpay,
    Channel::Momo,
    Channel::Zalopay,
    Channel::BankTransfer,
];

pub async fn checkout(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> HttpResponse {
    let lang = lang_of(&req);
    let found = match admit(&req, &state, lang, &code).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let channels = channels_for(&state, &found);
    html(
        StatusCode::OK,
        pages::checkout::render(&CheckoutPage {
            lang,
            invoice: &found.invoice,
            agency_name: &found.agency_name,
            channels: &channels,
            held: &found.held,
        }),
    )
}

/// How long a pending attempt on another channel makes starting a new one
/// ask first: a gateway's payment window, about.
const UNDER_WAY_FOR: time::Duration = time::Duration::minutes(20);

/// How soon after a start on one gateway another start on it goes back to
/// the same order (which the gateway keeps open for a day, or until the
/// invoice expires) instead of making a second one.
const REUSE_FOR: time::Duration = time::Duration::minutes(10);

pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Bytes,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (code, channel) = path.into_inner();
    let found = match admit(&req, &state, lang, &code).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let checkout = format!("/pay/{}{}", found.invoice.payment_code, lang.query());
    let Some(channel) = Channel::parse(&channel).filter(|c| CHANNELS.contains(c)) else {
        return not_found(lang, &req);
    };
    // Only the checkout page starts a payment: another site's form would
    // otherwise make gateway orders (and pending attempts) at will.
    if !crate::origin::same_origin(&req, &state) {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        tracing::warn!(
            origin = %header("origin"),
            sec_fetch_site = %header("sec-fetch-site"),
            "a payment start from another site was refused"
        );
        return notice_page(
            StatusCode::FORBIDDEN,
            lang,
            &req,
            &notice::ELSEWHERE,
            Some(&checkout),
        );
    }
    if found.invoice.status != InvoiceStatus::Open {
        // The checkout page says why it cannot be paid.
        return see_other(&checkout);
    }
    let since = Timestamp::now()
        .plus(-UNDER_WAY_FOR)
        .unwrap_or_else(Timestamp::now);
    let pending = match state.store.pending_attempts(&found.invoice, since).await {
        Ok(pending) => pending,
        Err(err) => return problem(lang, &req, &crate::error::error_chain(&err)),
    };
    // The same gateway again, soon after: its order is still open at the
    // gateway, so the citizen goes back to it instead of a second order.
    let fresh = Timestamp::now()
        .plus(-REUSE_FOR)
        .unwrap_or_else(Timestamp::now);
    if let Some(pay_url) = pending
        .iter()
        .filter(|a| a.channel == channel && a.channel != Channel::BankTransfer)
        .find(|a| a.created_at >= fresh)
        .and_then(|a| a.pay_url.as_deref())
    {
        return see_other(pay_url);
    }
    let confirmed =
        form_urlencoded::parse(&form).any(|(key, value)| key == "confirm" && value == "1");
    if !confirmed && let Some(pending) = pending.iter().find(|a| a.channel != channel) {
        return html(
            StatusCode::OK,
            pages::under_way::render(&UnderWayPage {
                lang,
                invoice: &found.invoice,
                pending,
                channel,
                toggle_href: &toggle_href(&req, lang),
            }),
        );
    }
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let starter = Starter {
        actor: Actor {
            request_id,
            ..Actor::system("checkout")
        }
        .from_addr(crate::client_addr::of(&req)),
        // The payment code stands for the invoice whatever its agency.
        scope: &Scope::All,
        client_ip: crate::client_addr::of(&req)
            .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string()),
        locale: match lang {
            Lang::Vi => "vn",
            Lang::En => "en",
        },
    };
    match start_attempt(&state, &starter, &found.invoice.id, channel).await {
        // Post, redirect, get: the transfer page can be reloaded, and
        // found again on coming back from the banking app.
        Ok(StartedAttempt {
            bank_transfer: Some(_),
            ..
        }) => see_other(&format!(
            "/pay/{}/transfer{}",
            found.invoice.payment_code,
            lang.query()
        )),
        Ok(StartedAttempt { attempt, .. }) => match attempt.pay_url {
            Some(pay_url) => see_other(&pay_url),
            None => problem(lang, &req, &"a started gateway attempt has no pay URL"),
        },
        Err(err) => match err.code {
            ErrorCode::InvalidState => see_other(&checkout),
            ErrorCode::ChannelUnavailable => notice_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                lang,
                &req,
                &notice::CHANNEL_UNAVAILABLE,
                Some(&checkout),
            ),
            ErrorCode::ProviderError => notice_page(
                StatusCode::BAD_GATEWAY,
                lang,
                &req,
                &notice::PROVIDER_FAILED,
                Some(&checkout),
            ),
            ErrorCode::NotFound => not_found(lang, &req),
            // The cause was logged where the error was made.
            _ => notice_page(err.status, lang, &req, &notice::PROBLEM, Some(&checkout)),
        },
    }
}

/// The bank-transfer page: the agency's account and a VietQR code for
/// what the invoice still owes (the remainder, after a transfer short of
/// it). Only reads; an invoice no longer open goes back to its checkout.
pub async fn transfer(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> HttpResponse {
    let lang = lang_of(&req);
    let found = match admit(&req, &state, lang, &code).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let invoice = &found.invoice;
    let checkout = format!("/pay/{}{}", invoice.payment_code, lang.query());
    let owed = invoice.total.checked_sub(invoice.amount_paid);
    let (InvoiceStatus::Open, Some(owed)) = (invoice.status, owed) else {
        return see_other(&checkout);
    };
    let account = match state
        .store
        .bank_account(&Scope::All, invoice.agency_code.as_str())
        .await
    {
        Ok(Some(account)) => account,
        Ok(None) => return see_other(&checkout),
        Err(err) => return problem(lang, &req, &crate::error::error_chain(&err)),
    };
    let instructions = crate::providers::bank_transfer::instructions(
        &account.bank_bin,
        &account.account_number,
        &account.account_name,
        owed,
        invoice.payment_code.as_str(),
    );
    html(
        StatusCode::OK,
        pages::transfer::render(&TransferPage {
            lang,
            invoice,
            agency_name: &found.agency_name,
            instructions: &instructions,
            sandbox_bank: state
                .sandbox
                .as_ref()
                .map(|_| crate::sandbox::bank::transfer_page_url(&state.public_url, &instructions)),
        }),
    )
}

pub async fn returned(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (code, channel) = path.into_inner();
    let found = match admit(&req, &state, lang, &code).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Some(channel) = Channel::parse(&channel).filter(|c| CHANNELS.contains(c)) else {
        return not_found(lang, &req);
    };
    let invoice = &found.invoice;
    // What the gateway says, when it signs what it says (VNPay and
    // ZaloPay do): it decides nothing here but whether to say "failed"
    // before the callback comes.
    let verified = match signed_return(&state, channel, req.query_string()) {
        SignedReturn::Absent => None,
        SignedReturn::Unverified => return unverified(lang, &req, &found, channel),
        SignedReturn::Verified(signed) => {
            // A return signed for another invoice's order says nothing of
            // this one.
            match state
                .store
                .latest_attempt(invoice, channel, Some(&signed.order_ref))
                .await
            {
                Ok(Some(attempt)) => Some((attempt, signed.failed)),
                Ok(None) => return unverified(lang, &req, &found, channel),
                Err(err) => return problem(lang, &req, &crate::error::error_chain(&err)),
            }
        }
    };
    let (attempt, gateway_failed) = match verified {
        Some((attempt, failed)) => (Some(attempt), failed),
        None => match state.store.latest_attempt(invoice, channel, None).await {
            Ok(attempt) => (attempt, false),
            Err(err) => return problem(lang, &req, &crate::error::error_chain(&err)),
        },
    };
    // This return's money held (paid twice, late, of the wrong amount) is
    // said so, whatever the invoice's state.
    let held = attempt
        .as_ref()
        .and_then(|attempt| found.held.of_attempt(&attempt.id));
    let outcome = match invoice.status {
        _ if held.is_some() => Outcome::Held,
        InvoiceStatus::Paid => Outcome::Paid,
        status @ (InvoiceStatus::Cancelled | InvoiceStatus::Expired) => Outcome::Closed(status),
        InvoiceStatus::Open => match attempt.map(|a| a.status) {
            None | Some(AttemptStatus::Failed) => Outcome::Failed,
            Some(AttemptStatus::Pending) if gateway_failed => Outcome::Failed,
            // Paid but not yet applied.
            Some(AttemptStatus::Pending | AttemptStatus::Succeeded) => Outcome::Processing,
        },
    };
    return_page(StatusCode::OK, lang, &req, &found, channel, outcome)
}

/// What the query of a gateway's return says.
enum SignedReturn {
    /// The query carries none of the fields the gateway signs its return
    /// with (MoMo's return, a bank transfer's, a page reloaded without).
    Absent,
    /// It carries them, and they do not verify (or the gateway is not
    /// configured here).
    Unverified,
    /// A verified payment, failure or pending payment of one order.
    Verified(VerifiedReturn),
}

/// A gateway's verified word on one order: whether it failed.
struct VerifiedReturn {
    order_ref: String,
    failed: bool,
}

/// Reads a VNPay or ZaloPay return's signed fields, failing closed.
fn signed_return(state: &AppState, channel: Channel, query: &str) -> SignedReturn {
    let mut keys = form_urlencoded::parse(query.as_bytes()).map(|(key, _)| key);
    let event = match channel {
        Channel::Vnpay if keys.any(|key| key.starts_with("vnp_")) => state
            .providers
            .vnpay
            .as_ref()
            .map(|vnpay| vnpay.verify_return(query)),
        Channel::Zalopay
            if keys.any(|key| key == "checksum" || zalopay::REDIRECT_FIELDS.contains(&&*key)) =>
        {
            state
                .providers
                .zalopay
                .as_ref()
                .map(|zalopay| zalopay.verify_redirect(query))
        }
        _ => return SignedReturn::Absent,
    };
    let order =
        |order_ref: String, failed| SignedReturn::Verified(VerifiedReturn { order_ref, failed });
    match event.and_then(|event| event.and_then(CallbackEvent::checked).ok()) {
        Some(CallbackEvent::Paid(ReceivedPayment {
            target: PaymentTarget::Order(order_ref),
            ..
        })) => order(order_ref, false),
        Some(CallbackEvent::Pending { order_ref, .. }) => order(order_ref, false),
        Some(CallbackEvent::Failed { order_ref, .. }) => order(order_ref, true),
        Some(CallbackEvent::Paid(_) | CallbackEvent::Ignored { .. }) | None => {
            SignedReturn::Unverified
        }
    }
}

pub async fn receipt(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> HttpResponse {
    let lang = lang_of(&req);
    let found = match admit(&req, &state, lang, &code).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let invoice = &found.invoice;
    let Some(receipt) = invoice
        .receipt
        .as_ref()
        .filter(|_| invoice.status == InvoiceStatus::Paid)
    else {
        return not_found(lang, &req);
    };
    let payment = match state.store.receipt_payment(receipt).await {
        Ok(payment) => payment,
        Err(err) => return problem(lang, &req, &crate::error::error_chain(&err)),
    };
    html(
        StatusCode::OK,
        pages::receipt::render(&ReceiptPage {
            lang,
            invoice,
            agency_name: &found.agency_name,
            receipt,
            payment: &payment,
            held: &found.held,
        }),
    )
}

/// Counts the request against its client's limit, then finds the invoice
/// named by `code`; the refusal page otherwise.
async fn admit(
    req: &HttpRequest,
    state: &AppState,
    lang: Lang,
    code: &str,
) -> Result<CheckoutInvoice, HttpResponse> {
    if let Some(client) = crate::client_addr::of(req)
        && let Err(retry_after) = state.pay_limiter.check(client)
    {
        let mut response = notice_page(
            StatusCode::TOO_MANY_REQUESTS,
            lang,
            req,
            &notice::TOO_MANY,
            None,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return Err(response);
    }
    // A malformed code is not looked up: no invoice can have it.
    let Ok(code) = PaymentCode::parse(code) else {
        return Err(not_found(lang, req));
    };
    match state.store.checkout_invoice(&code).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(not_found(lang, req)),
        Err(err) => Err(problem(lang, req, &crate::error::error_chain(&err))),
    }
}

/// The channels `found` can be paid on now: configured, and able to take
/// what it owes (a bank transfer needs the agency's account).
fn channels_for(state: &AppState, found: &CheckoutInvoice) -> Vec<Channel> {
    let invoice = &found.invoice;
    let owed = invoice.total.checked_sub(invoice.amount_paid);
    CHANNELS
        .into_iter()
        .filter(|&channel| state.providers.can_start(channel))
        .filter(|&channel| channel != Channel::BankTransfer || found.has_bank_account)
        .filter(
            |&channel| match (state.providers.amount_limits(channel), owed) {
                (Some((least, most)), Some(owed)) => least <= owed && owed <= most,
                _ => true,
            },
        )
        .collect()
}

/// The page's language, from `?lang=`.
fn lang_of(req: &HttpRequest) -> Lang {
    let lang = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == "lang")
        .map(|(_, value)| value.into_owned());
    Lang::from_query(lang.as_deref())
}

/// The request's own URL with `lang` set to the other language, every
/// other parameter kept (a gateway's signed return stays verifiable).
fn toggle_href(req: &HttpRequest, lang: Lang) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        if key != "lang" {
            query.append_pair(&key, &value);
        }
    }
    query.append_pair("lang", lang.other().code());
    format!("{}?{}", req.path(), query.finish())
}

/// An HTML answer that is never cached (it shows personal data), never
/// framed, and runs nothing: the pages need no script.
fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Same-origin: no other site learns a page's address (its payment
        // code), and the page's forms carry an `Origin` that can be
        // checked (under `no-referrer` browsers send `Origin: null`).
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            // Forms post to lephi, which sends the browser on to the
            // gateway's https page (form-action also covers that redirect).
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'",
        ))
        .body(body)
}

/// `303 See Other`: after a form's POST, the browser GETs `location`.
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

fn return_page(
    status: StatusCode,
    lang: Lang,
    req: &HttpRequest,
    found: &CheckoutInvoice,
    channel: Channel,
    outcome: Outcome,
) -> HttpResponse {
    html(
        status,
        pages::returned::render(&ReturnPage {
            lang,
            invoice: &found.invoice,
            channel,
            outcome,
            toggle_href: &toggle_href(req, lang),
            held: &found.held,
        }),
    )
}

/// A gateway's return whose signed fields do not check out, or name
/// another invoice's order: 400, and nothing said of the payment.
fn unverified(
    lang: Lang,
    req: &HttpRequest,
    found: &CheckoutInvoice,
    channel: Channel,
) -> HttpResponse {
    tracing::warn!(%channel, "a gateway's return could not be verified");
    return_page(
        StatusCode::BAD_REQUEST,
        lang,
        req,
        found,
        channel,
        Outcome::Unverified,
    )
}

fn notice_page(
    status: StatusCode,
    lang: Lang,
    req: &HttpRequest,
    which: &(pages::Text, pages::Text),
    back: Option<&str>,
) -> HttpResponse {
    html(
        status,
        notice::render(lang, which, back, &toggle_href(req, lang)),
    )
}

fn not_found(lang: Lang, req: &HttpRequest) -> HttpResponse {
    notice_page(StatusCode::NOT_FOUND, lang, req, &notice::NOT_FOUND, None)
}

/// A failure on our side: logged in full, and a page that says so.
fn problem(lang: Lang, req: &HttpRequest, cause: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %cause, "a citizen's page failed");
    notice_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang,
        req,
        &notice::PROBLEM,
        None,
    )
}
