//! The shipped statement profiles. Those named after a provider or bank
//! are modelled on the exports of its merchant portal or internet
//! banking, whose columns and formats vary between versions; a province
//! adjusts them, or adds its own, in configuration.

use super::profile::{AmountFormat, Columns, Profile, vietnam};
use crate::domain::settlement::StatementLayout;

pub(super) fn shipped() -> [Profile; 6] {
    [
        canonical(),
        canonical_bank(),
        vnpay(),
        momo(),
        zalopay(),
        vietcombank(),
    ]
}

/// `canonical`: lephi's own gateway layout, for any gateway's statement
/// converted to it. Amounts in whole đồng, times RFC 3339 with an offset,
/// dates `YYYY-MM-DD`:
///
/// ```text
/// provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date
/// 14712345,LP23456789ABU,150000,1650,2026-11-28T13:03:57+07:00,2026-11-29
/// ```
fn canonical() -> Profile {
    gateway(
        "canonical",
        ",",
        [
            "provider_txn_id",
            "order_ref",
            "amount",
            "fee",
            "transaction_time",
            "settlement_date",
        ],
        AmountFormat::Plain,
        "rfc3339",
        "[year]-[month]-[day]",
    )
}

/// `canonical_bank`: lephi's own bank layout, for any bank's statement of
/// credits converted to it. Amounts in whole đồng, times RFC 3339:
///
/// ```text
/// bank_ref,description,amount,transaction_time
/// FT26332123456,NGUYEN VAN A chuyen tien LP23456789ABU,150000,2026-11-28T13:03:57+07:00
/// ```
fn canonical_bank() -> Profile {
    bank(
        "canonical_bank",
        ",",
        ["bank_ref", "description", "amount", "transaction_time"],
        "rfc3339",
    )
}

/// `vnpay`: modelled on the reconciliation report of VNPay's merchant
/// portal: thousands dots, times `dd/MM/yyyy HH:mm:ss` in Vietnam, dates
/// `dd/MM/yyyy`. Other columns (STT, bank, status) are ignored:
///
/// ```text
/// STT,Mã GD VNPAY,Mã GD merchant,Ngân hàng,Số tiền,Phí,Thời gian GD,Ngày quyết toán,Trạng thái
/// 1,14712345,LP23456789ABU,NCB,150.000,1.650,28/11/2026 13:03:57,29/11/2026,Thành công
/// ```
fn vnpay() -> Profile {
    gateway(
        "vnpay",
        ",",
        [
            "Mã GD VNPAY",
            "Mã GD merchant",
            "Số tiền",
            "Phí",
            "Thời gian GD",
            "Ngày quyết toán",
        ],
        AmountFormat::Vietnamese,
        "[day]/[month]/[year] [hour]:[minute]:[second]",
        "[day]/[month]/[year]",
    )
}

/// `momo`: modelled on the transaction report of the MoMo business portal:
/// plain amounts, times `dd/MM/yyyy HH:mm:ss` in Vietnam, dates
/// `dd/MM/yyyy`:
///
/// ```text
/// STT,Mã giao dịch,Mã đơn hàng,Số tiền,Phí giao dịch,Thời gian giao dịch,Ngày đối soát,Trạng thái
/// 1,4088123456,LP23456789ABU,150000,2200,28/11/2026 13:03:57,29/11/2026,Thành công
/// ```
fn momo() -> Profile {
    gateway(
        "momo",
        ",",
        [
            "Mã giao dịch",
            "Mã đơn hàng",
            "Số tiền",
            "Phí giao dịch",
            "Thời gian giao dịch",
            "Ngày đối soát",
        ],
        AmountFormat::Plain,
        "[day]/[month]/[year] [hour]:[minute]:[second]",
        "[day]/[month]/[year]",
    )
}

/// `zalopay`: modelled on the reconciliation export of ZaloPay's merchant
/// portal: plain amounts, times `yyyy-MM-dd HH:mm:ss` in Vietnam, dates
/// `yyyy-MM-dd`:
///
/// ```text
/// Mã GD ZaloPay,Mã GD ứng dụng,Số tiền,Phí,Thời gian thanh toán,Ngày đối soát
/// 261128000123456,261128_LP23456789ABU,150000,1500,2026-11-28 13:03:57,2026-11-29
/// ```
fn zalopay() -> Profile {
    gateway(
        "zalopay",
        ",",
        [
            "Mã GD ZaloPay",
            "Mã GD ứng dụng",
            "Số tiền",
            "Phí",
            "Thời gian thanh toán",
            "Ngày đối soát",
        ],
        AmountFormat::Plain,
        "[year]-[month]-[day] [hour]:[minute]:[second]",
        "[year]-[month]-[day]",
    )
}

/// `vietcombank`: modelled on an account statement from Vietcombank's
/// internet banking saved as CSV: `;` between fields, thousands dots,
/// times `dd/MM/yyyy HH:mm:ss` in Vietnam. Export credits only: every
/// line must have a credit amount.
///
/// ```text
/// STT;Ngày giao dịch;Số tham chiếu;Số tiền ghi nợ;Số tiền ghi có;Số dư;Mô tả
/// 1;28/11/2026 13:03:57;5213.28112026.130357;;150.000;12.150.000;MBVCB.3278907687.LP23456789ABU.CT tu 0071000888888
/// ```
fn vietcombank() -> Profile {
    let mut profile = bank(
        "vietcombank",
        ";",
        ["Số tham chiếu", "Mô tả", "Số tiền ghi có", "Ngày giao dịch"],
        "[day]/[month]/[year] [hour]:[minute]:[second]",
    );
    profile.amount_format = AmountFormat::Vietnamese;
    profile
}

/// A gateway profile; columns in the order of [`StatementLine`]'s fields.
fn gateway(
    name: &str,
    delimiter: &str,
    [
        provider_txn_id,
        order_ref,
        amount,
        fee,
        transaction_time,
        settlement_date,
    ]: [&str; 6],
    amount_format: AmountFormat,
    time_format: &str,
    date_format: &str,
) -> Profile {
    Profile {
        layout: StatementLayout::Gateway,
        delimiter: delimiter.into(),
        columns: Columns {
            provider_txn_id: Some(provider_txn_id.into()),
            order_ref: Some(order_ref.into()),
            amount: Some(amount.into()),
            fee: Some(fee.into()),
            transaction_time: Some(transaction_time.into()),
            settlement_date: Some(settlement_date.into()),
            ..Columns::default()
        },
        amount_format,
        time_format: time_format.into(),
        utc_offset: vietnam(),
        date_format: Some(date_format.into()),
        name: name.into(),
    }
}

/// A bank profile with plain amounts.
fn bank(
    name: &str,
    delimiter: &str,
    [bank_ref, description, amount, transaction_time]: [&str; 4],
    time_format: &str,
) -> Profile {
    Profile {
        layout: StatementLayout::Bank,
        delimiter: delimiter.into(),
        columns: Columns {
            bank_ref: Some(bank_ref.into()),
            description: Some(description.into()),
            amount: Some(amount.into()),
            transaction_time: Some(transaction_time.into()),
            ..Columns::default()
        },
        amount_format: AmountFormat::Plain,
        time_format: time_format.into(),
        utc_offset: vietnam(),
        date_format: None,
        name: name.into(),
    }
}
