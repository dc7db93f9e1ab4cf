//! Refunds through the gateways (VNPay, MoMo, ZaloPay): sending one, and
//! asking where one stands.
//!
//! Each gateway file keeps its own signed request and answer; this file
//! holds what they share: the request, the answer, and the checks made
//! before anything is sent or after anything is read. A refund has an id
//! lephi makes once, when it is submitted ([`Providers::refund_request_id`]),
//! and sends again unchanged if it must ask again, so that the provider
//! sees one refund however often lephi calls.

use super::{ProviderError, Providers, signing, visible};
use crate::domain::payment::Channel;
use crate::domain::{Timestamp, Vnd};

/// What a gateway needs to refund (part of) a payment.
#[derive(Debug, Clone)]
pub struct RefundRequest<'a> {
    /// lephi's id of this refund at the provider, made by
    /// [`Providers::refund_request_id`] when the refund is submitted:
    /// VNPay's `vnp_RequestId`, MoMo's refund `orderId` (and `requestId`),
    /// ZaloPay's `m_refund_id`.
    pub request_id: &'a str,
    /// The payment's order reference at the gateway (`vnp_TxnRef`, MoMo
    /// `orderId`, ZaloPay `app_trans_id`).
    pub order_ref: &'a str,
    /// The provider's transaction id of the payment (`vnp_TransactionNo`,
    /// MoMo `transId`, ZaloPay `zp_trans_id`).
    pub provider_txn_id: &'a str,
    /// The whole payment's amount (VNPay: type `02` full when `amount ==
    /// payment_amount`, else `03` partial).
    pub payment_amount: Vnd,
    pub amount: Vnd,
    /// When the payment was made (`vnp_TransactionDate`, Vietnam time
    /// `yyyyMMddHHmmss`).
    pub paid_at: Timestamp,
    /// When the refund was submitted (`vnp_CreateDate`, ZaloPay's
    /// `timestamp`).
    pub submitted_at: Timestamp,
    /// Who asked (`vnp_CreateBy`): a short ASCII name.
    pub created_by: &'a str,
    /// ASCII text without diacritics.
    pub description: &'a str,
    pub client_ip: &'a str,
}

/// Where a refund stands, as the provider answered (the answer's signature
/// verified, where the provider signs its answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundAnswer {
    /// The money went back.
    Succeeded {
        provider_refund_id: Option<String>,
        provider_code: String,
        message: String,
    },
    /// The provider refused or the refund failed for good; lephi may be
    /// asked again.
    Failed {
        provider_code: String,
        message: String,
    },
    /// Accepted, in progress, or not known yet: ask again later. VNPay
    /// `94` (a refund already in progress) is Pending, never Failed.
    Pending {
        provider_refund_id: Option<String>,
        provider_code: String,
        message: String,
    },
}

impl RefundAnswer {
    /// The answer as lephi may store it: short visible text, control
    /// characters made spaces, an id that is not visible text dropped.
    fn checked(self) -> RefundAnswer {
        let id = |id: Option<String>| {
            id.filter(|id| {
                !id.is_empty() && id.chars().count() <= 100 && !id.chars().any(char::is_control)
            })
        };
        match self {
            RefundAnswer::Succeeded {
                provider_refund_id,
                provider_code,
                message,
            } => RefundAnswer::Succeeded {
                provider_refund_id: id(provider_refund_id),
                provider_code: visible(&provider_code, 50),
                message: visible(&message, 300),
            },
            RefundAnswer::Failed {
                provider_code,
                message,
            } => RefundAnswer::Failed {
                provider_code: visible(&provider_code, 50),
                message: visible(&message, 300),
            },
            RefundAnswer::Pending {
                provider_refund_id,
                provider_code,
                message,
            } => RefundAnswer::Pending {
                provider_refund_id: id(provider_refund_id),
                provider_code: visible(&provider_code, 50),
                message: visible(&message, 300),
            },
        }
    }
}

impl RefundRequest<'_> {
    /// Refuses, before anything is sent, a refund no gateway could take.
    fn check(&self) -> Result<(), ProviderError> {
        let refused = |message: &str| {
            Err(ProviderError::Refused {
                code: "invalid_refund".into(),
                message: message.into(),
            })
        };
        let short_ascii = |text: &str, max: usize| {
            !text.is_empty()
                && text.len() <= max
                && text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        };
        if self.amount.dong() <= 0 || self.amount > self.payment_amount {
            return refused("a refund is between 1 đồng and the payment's amount");
        }
        if !short_ascii(self.request_id, 64) || self.request_id.contains(' ') {
            return refused("the refund's id must be 1 to 64 visible ASCII characters");
        }
        if !short_ascii(self.order_ref, 100) || !short_ascii(self.provider_txn_id, 100) {
            return refused("the payment's order reference and transaction id must be given");
        }
        if !short_ascii(self.created_by, 100) {
            return refused("who asks for the refund must be 1 to 100 ASCII characters");
        }
        if !short_ascii(self.client_ip, 45) {
            return refused("the client's IP address must be given");
        }
        Ok(())
    }
}

impl Providers {
    /// A new provider-side id for a refund on `channel` submitted at `now`
    /// (ZaloPay: `yymmdd_appid_xxxxxxxxxx` in Vietnam time; others: a
    /// unique id of at most 32 ASCII alphanumerics).
    pub fn refund_request_id(&self, channel: Channel, now: Timestamp) -> String {
        match (channel, &self.zalopay) {
            (Channel::Zalopay, Some(zalopay)) => zalopay.m_refund_id(now, &mut rand::rng()),
            _ => signing::order_ref(now, &mut rand::rng()),
        }
    }

    /// `None` if `channel` is not a configured gateway; the refusal of a
    /// request no gateway could take.
    fn refundable_on(
        &self,
        channel: Channel,
        request: &RefundRequest<'_>,
    ) -> Option<Result<(), ProviderError>> {
        self.queryable().contains(&channel).then(|| request.check())
    }

    /// Sends the refund; `None` if `channel` is not a configured gateway.
    /// A request no gateway could take (no amount, more than the payment)
    /// is refused without calling.
    pub async fn refund(
        &self,
        channel: Channel,
        request: &RefundRequest<'_>,
    ) -> Option<Result<RefundAnswer, ProviderError>> {
        if let Err(err) = self.refundable_on(channel, request)? {
            return Some(Err(err));
        }
        let answer = match channel {
            Channel::Vnpay => self.vnpay.as_ref()?.refund(&self.http, request).await,
            Channel::Momo => self.momo.as_ref()?.refund(&self.http, request).await,
            Channel::Zalopay => self.zalopay.as_ref()?.refund(&self.http, request).await,
            Channel::BankTransfer | Channel::Cash => return None,
        };
        Some(answer.map(RefundAnswer::checked))
    }

    /// Asks where the refund `request` (sent before with the same
    /// `request_id`) stands: VNPay's `querydr` of the payment, MoMo's
    /// status query of the payment (its `refundTrans[]` entry for this
    /// refund), ZaloPay's `query_refund`. `None` if `channel` is not a
    /// configured gateway.
    pub async fn query_refund(
        &self,
        channel: Channel,
        request: &RefundRequest<'_>,
    ) -> Option<Result<RefundAnswer, ProviderError>> {
        if let Err(err) = self.refundable_on(channel, request)? {
            return Some(Err(err));
        }
        let answer = match channel {
            Channel::Vnpay => self.vnpay.as_ref()?.query_refund(&self.http, request).await,
            Channel::Momo => self.momo.as_ref()?.query_refund(&self.http, request).await,
            Channel::Zalopay => {
                self.zalopay
                    .as_ref()?
                    .query_refund(&self.http, request)
                    .await
            }
            Channel::BankTransfer | Channel::Cash => return None,
        };
        Some(answer.map(RefundAnswer::checked))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::config::{ProviderSettings, ZalopaySettings};

    fn providers(zalopay: bool) -> Providers {
        Providers::from_settings(&ProviderSettings {
            unattributed_agency: None,
            vnpay: None,
            momo: None,
            zalopay: zalopay.then(|| ZalopaySettings {
                app_id: "2553".into(),
                key1: SecretString::from("key1"),
                key2: SecretString::from("key2"),
                previous_key2: None,
                // Nothing listens here: a call would fail as unreachable.
                endpoint: "http://127.0.0.1:9".into(),
            }),
            sepay: None,
            casso: None,
            timeout_secs: 1,
        })
        .unwrap()
    }

    fn request(amount: i64) -> RefundRequest<'static> {
        RefundRequest {
            request_id: "261201_2553_RQ7X2M9PTB",
            order_ref: "261128_K7QX2M9PTB4H",
            provider_txn_id: "261128000000123",
            payment_amount: Vnd::new(150_000),
            amount: Vnd::new(amount),
            paid_at: Timestamp::now(),
            submitted_at: Timestamp::now(),
            created_by: "officer1",
            description: "Hoan le phi",
            client_ip: "10.0.0.1",
        }
    }

    #[test]
    fn refund_ids_follow_each_gateway() {
        let now = Timestamp::parse_rfc3339("2026-12-01T18:00:00Z").unwrap();
        let with = providers(true);
        assert!(
            with.refund_request_id(Channel::Zalopay, now)
                .starts_with("261202_2553_")
        );
        for channel in [Channel::Vnpay, Channel::Momo] {
            let id = with.refund_request_id(channel, now);
            assert!(id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_ne!(id, with.refund_request_id(channel, now));
        }
        let without = providers(false);
        let id = without.refund_request_id(Channel::Zalopay, now);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }

    #[test]
    fn requests_no_gateway_could_take_are_refused_before_calling() {
        for amount in [0, -1, 150_001] {
            assert!(request(amount).check().is_err(), "{amount}");
        }
        assert!(request(150_000).check().is_ok());
        let mut bad = request(1);
        bad.request_id = "a b";
        assert!(bad.check().is_err());
        let mut bad = request(1);
        bad.created_by = "";
        assert!(bad.check().is_err());
        let mut bad = request(1);
        bad.provider_txn_id = "x\u{0}";
        assert!(bad.check().is_err());
    }

    #[tokio::test]
    async fn only_configured_gateways_refund() {
        let providers = providers(true);
        for channel in [
            Channel::Vnpay,
            Channel::Momo,
            Channel::BankTransfer,
            Channel::Cash,
        ] {
            assert!(providers.refund(channel, &request(1)).await.is_none());
            assert!(providers.query_refund(channel, &request(1)).await.is_none());
        }
        assert!(matches!(
            providers.refund(Channel::Zalopay, &request(0)).await,
            Some(Err(ProviderError::Refused { code, .. })) if code == "invalid_refund"
        ));
        assert!(matches!(
            providers.refund(Channel::Zalopay, &request(1)).await,
            Some(Err(ProviderError::Unreachable(_)))
        ));
    }

    #[test]
    fn answers_are_kept_as_short_visible_text() {
        let checked = RefundAnswer::Succeeded {
            provider_refund_id: Some("id\u{7}".into()),
            provider_code: "0\n".into(),
            message: "m".repeat(400),
        }
        .checked();
        assert_eq!(
            checked,
            RefundAnswer::Succeeded {
                provider_refund_id: None,
                provider_code: "0 ".into(),
                message: "m".repeat(300),
            }
        );
    }
}
