//! Gateway refunds: sent to VNPay, MoMo or ZaloPay at most once, then
//! asked about until final. The send is claimed in the store first
//! (approved → submitted, with the provider request id) in its own
//! transaction: only the process whose claim commits sends, and a refund
//! whose answer was lost (a timeout, a crash between the provider's answer
//! and lephi's commit) stays submitted and is only ever asked about, never
//! sent again. "Already in progress", timeouts and answers lephi cannot
//! read are never taken for a failure.

use crate::domain::Timestamp;
use crate::domain::payment::Payment;
use crate::domain::refund::{Refund, RefundStatus};
use crate::error::error_chain;
use crate::providers::{ProviderError, RefundAnswer, RefundRequest};
use crate::store::{RefundOutcome, StoreError};

use super::Refunds;

/// The longest wait between two questions about a submitted refund.
const MAX_BETWEEN_CHECKS: time::Duration = time::Duration::hours(1);

/// What the janitor's refund pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefundPass {
    /// Approved refunds sent now.
    pub sent: usize,
    /// Submitted refunds asked about.
    pub checked: usize,
    /// Found final in this pass: succeeded or failed.
    pub finished: usize,
}

impl Refunds<'_> {
    /// Sends approved refund `refund` if it is a configured gateway's and
    /// no other process has; what went wrong is logged, and the janitor
    /// picks the refund up again.
    pub(super) async fn send_logged(&self, refund: &Refund) {
        if let Err(err) = self.send(refund).await {
            tracing::warn!(refund = %refund.id, error = %error_chain(&err), "an approved refund could not be sent now; the janitor will");
        }
    }

    /// Claims and sends approved gateway refund `refund`; `None` when it
    /// was not this process's to send.
    pub async fn send(&self, refund: &Refund) -> Result<Option<Refund>, StoreError> {
        if refund.status != RefundStatus::Approved
            || !self.providers.queryable().contains(&refund.channel)
        {
            return Ok(None);
        }
        let now = Timestamp::now();
        let request_id = self.providers.refund_request_id(refund.channel, now);
        let Some(claimed) = self
            .store
            .claim_refund(&refund.id, &request_id, self.next_check(now, now))
            .await?
        else {
            return Ok(None);
        };
        let request = request_of(&claimed.refund, &claimed.payment, &request_id, now);
        let answer = self
            .providers
            .refund(claimed.refund.channel, &request)
            .await;
        self.record(&claimed.refund, answer, now).await.map(Some)
    }

    /// Asks the provider where submitted refund `refund` stands, and
    /// records the answer.
    pub async fn check(&self, refund: &Refund) -> Result<Refund, StoreError> {
        let (Some(request_id), Some(submitted_at)) = (&refund.request_id, refund.submitted_at)
        else {
            return Err(StoreError::Corrupt(format!(
                "submitted refund {} has no request id",
                refund.id
            )));
        };
        let payment = self.store.refunded_payment(refund).await?;
        let request = request_of(refund, &payment, request_id, submitted_at);
        let answer = self.providers.query_refund(refund.channel, &request).await;
        self.record(refund, answer, submitted_at).await
    }

    /// Sends the approved gateway refunds left unsent and asks about the
    /// submitted ones that are due, up to `limit` of them.
    pub async fn advance_due(&self, now: Timestamp, limit: i64) -> Result<RefundPass, StoreError> {
        let mut pass = RefundPass::default();
        for refund in self.store.due_refunds(now, limit).await? {
            let after = match refund.status {
                RefundStatus::Approved => {
                    let sent = self.send(&refund).await;
                    if matches!(sent, Ok(Some(_))) {
                        pass.sent += 1;
                    }
                    sent.map(|sent| sent.map(|r| r.status))
                }
                _ => {
                    pass.checked += 1;
                    self.check(&refund).await.map(|r| Some(r.status))
                }
            };
            match after {
                Ok(Some(status)) if status.is_final() => pass.finished += 1,
                Ok(_) => {}
                Err(err) => tracing::warn!(
                    refund = %refund.id,
                    error = %error_chain(&err),
                    "a refund could not be moved on; asked again on the next pass"
                ),
            }
        }
        Ok(pass)
    }

    /// Stores what the provider answered (or that it could not be heard).
    async fn record(
        &self,
        refund: &Refund,
        answer: Option<Result<RefundAnswer, ProviderError>>,
        submitted_at: Timestamp,
    ) -> Result<Refund, StoreError> {
        let now = Timestamp::now();
        let later = Some(self.next_check(now, submitted_at));
        let outcome = match &answer {
            None => RefundOutcome {
                status: RefundStatus::Submitted,
                provider_refund_id: None,
                provider_code: "not_configured",
                message: "the gateway is not configured in this process",
                next_check_at: later,
                distrusted: None,
            },
            Some(Ok(RefundAnswer::Succeeded {
                provider_refund_id,
                provider_code,
                message,
            })) => RefundOutcome {
                status: RefundStatus::Succeeded,
                provider_refund_id: provider_refund_id.as_deref(),
                provider_code,
                message,
                next_check_at: None,
                distrusted: None,
            },
            Some(Ok(RefundAnswer::Failed {
                provider_code,
                message,
            })) => RefundOutcome {
                status: RefundStatus::Failed,
                provider_refund_id: None,
                provider_code,
                message,
                next_check_at: None,
                distrusted: None,
            },
            Some(Ok(RefundAnswer::Pending {
                provider_refund_id,
                provider_code,
                message,
            })) => RefundOutcome {
                status: RefundStatus::Submitted,
                provider_refund_id: provider_refund_id.as_deref(),
                provider_code,
                message,
                next_check_at: later,
                distrusted: None,
            },
            Some(Err(err)) => RefundOutcome {
                status: RefundStatus::Submitted,
                provider_refund_id: None,
                provider_code: err.provider_code(),
                message: "the provider's answer is not known yet; asked again later",
                next_check_at: later,
                distrusted: matches!(err, ProviderError::BadSignature)
                    .then_some("its signature did not verify with this gateway's key"),
            },
        };
        if let Some(Err(err)) = &answer {
            tracing::warn!(refund = %refund.id, channel = %refund.channel, error = %err, "a gateway's refund answer was not heard or not trusted");
        }
        self.store.record_refund_answer(&refund.id, &outcome).await
    }

    /// When to ask next about a refund submitted at `submitted_at`: after
    /// the configured first delay, then as long again as it has been out,
    /// up to an hour.
    fn next_check(&self, now: Timestamp, submitted_at: Timestamp) -> Timestamp {
        let first = time::Duration::seconds(
            i64::try_from(self.settings.check_after_secs).unwrap_or(i64::MAX),
        );
        let out = (now.as_datetime() - submitted_at.as_datetime())
            .max(first)
            .min(MAX_BETWEEN_CHECKS);
        now.plus(out).unwrap_or(now)
    }
}

/// The provider request of `refund` of `payment`, named `request_id`.
fn request_of<'a>(
    refund: &'a Refund,
    payment: &'a Payment,
    request_id: &'a str,
    submitted_at: Timestamp,
) -> RefundRequest<'a> {
    RefundRequest {
        request_id,
        order_ref: &payment.reference,
        provider_txn_id: &payment.provider_txn_id,
        payment_amount: payment.amount,
        amount: refund.amount,
        paid_at: payment.paid_at.unwrap_or(payment.recorded_at),
        submitted_at,
        created_by: refund.decided_by.as_deref().unwrap_or("lephi"),
        description: "Hoan tien phi le phi",
        client_ip: "127.0.0.1",
    }
}
