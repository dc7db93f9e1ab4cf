//! Reading statements with every shipped profile, and the profiles a
//! province configures.

use super::*;
use crate::domain::settlement::parse_day;
use proptest::prelude::*;

const CODE: &str = "LP23456789ABU";

const CANONICAL: &str = "\
provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date
14712345,LP23456789ABU,150000,1650,2026-11-28T13:03:57+07:00,2026-11-29
14712346,LPK7QX2M9PTBJ,\"200000.00\",0,2026-11-28T17:30:00Z,2026-11-29
";
const CANONICAL_BANK: &str = "\
bank_ref,description,amount,transaction_time
FT26332123456,NGUYEN VAN A chuyen tien LP23456789ABU,150000,2026-11-28T13:03:57+07:00
FT26332123457,Nộp lệ phí,200000,2026-11-28T17:30:00Z
";
const VNPAY: &str = "\
STT,Mã GD VNPAY,Mã GD merchant,Ngân hàng,Số tiền,Phí,Thời gian GD,Ngày quyết toán,Trạng thái
1,14712345,LP23456789ABU,NCB,150.000,1.650,28/11/2026 13:03:57,29/11/2026,Thành công
2,14712399,LPK7QX2M9PTBJ,VCB,\"1.500.000,00\",\"16.500,00\",28/11/2026 23:59:59,29/11/2026,Thành công
";
const MOMO: &str = "\
STT,Mã giao dịch,Mã đơn hàng,Số tiền,Phí giao dịch,Thời gian giao dịch,Ngày đối soát,Trạng thái
1,4088123456,LP23456789ABU,150000,2200,28/11/2026 13:03:57,29/11/2026,Thành công
";
const ZALOPAY: &str = "\
Mã GD ZaloPay,Mã GD ứng dụng,Số tiền,Phí,Thời gian thanh toán,Ngày đối soát
261128000123456,261128_LP23456789ABU,150000,1500,2026-11-28 13:03:57,2026-11-29
";
const VIETCOMBANK: &str = "\
STT;Ngày giao dịch;Số tham chiếu;Số tiền ghi nợ;Số tiền ghi có;Số dư;Mô tả
1;28/11/2026 13:03:57;5213.28112026.130357;;150.000;12.150.000;MBVCB.3278907687.LP23456789ABU.CT tu 0071000888888
2;28/11/2026 23:10:00;5213.28112026.231000;;1.500.000;13.650.000;NGUYEN VAN A nop le phi
";
const SAMPLES: [(&str, &str); 6] = [
    ("canonical", CANONICAL),
    ("canonical_bank", CANONICAL_BANK),
    ("vnpay", VNPAY),
    ("momo", MOMO),
    ("zalopay", ZALOPAY),
    ("vietcombank", VIETCOMBANK),
];

fn shipped_profiles() -> Profiles {
    Profiles::new(&BTreeMap::new()).unwrap()
}

fn read(
    profiles: &Profiles,
    name: &str,
    file: &[u8],
) -> Result<Vec<Result<StatementLine, LineError>>, LineError> {
    Ok(profiles.get(name).unwrap().read(file)?.collect())
}

/// The lines of a file every line of which is good.
fn lines(name: &str, file: &str) -> Vec<StatementLine> {
    read(&shipped_profiles(), name, file.as_bytes())
        .unwrap()
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The refusals among a file's lines.
fn refusals(name: &str, file: &[u8]) -> Vec<LineError> {
    read(&shipped_profiles(), name, file)
        .unwrap()
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

fn header_refusal(name: &str, file: &[u8]) -> LineError {
    read(&shipped_profiles(), name, file).unwrap_err()
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn day(text: &str) -> Date {
    parse_day(text).unwrap()
}

fn code(text: &str) -> Option<crate::domain::PaymentCode> {
    Some(crate::domain::PaymentCode::parse(text).unwrap())
}

#[test]
fn a_time_at_the_end_of_the_representable_range_is_refused_not_a_panic() {
    let file = b"bank_ref,description,amount,transaction_time\n\
FT1,LP23456789ABU,150000,9999-12-31T23:30:00Z\n";
    let refused = refusals("canonical_bank", file);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].line, 2);
    let file = b"provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date\n\
7,LP23456789ABU,150000,0,9999-12-31T23:30:00Z,9999-12-31\n";
    assert_eq!(refusals("canonical", file).len(), 1);
}

#[test]
fn canonical_reads_its_sample() {
    assert_eq!(
        lines("canonical", CANONICAL),
        [
            StatementLine {
                line_no: 2,
                txn_ref: "14712345".into(),
                reference: CODE.into(),
                payment_code: None,
                amount: Vnd::new(150_000),
                fee: Vnd::new(1_650),
                transaction_time: at("2026-11-28T06:03:57Z"),
                settlement_date: day("2026-11-29"),
            },
            StatementLine {
                line_no: 3,
                txn_ref: "14712346".into(),
                reference: "LPK7QX2M9PTBJ".into(),
                payment_code: None,
                amount: Vnd::new(200_000),
                fee: Vnd::ZERO,
                transaction_time: at("2026-11-28T17:30:00Z"),
                settlement_date: day("2026-11-29"),
            },
        ]
    );
}

#[test]
fn canonical_bank_finds_payment_codes_and_settles_on_the_vietnamese_day() {
    assert_eq!(
        lines("canonical_bank", CANONICAL_BANK),
        [
            StatementLine {
                line_no: 2,
                txn_ref: "FT26332123456".into(),
                reference: "NGUYEN VAN A chuyen tien LP23456789ABU".into(),
                payment_code: code(CODE),
                amount: Vnd::new(150_000),
                fee: Vnd::ZERO,
                transaction_time: at("2026-11-28T06:03:57Z"),
                settlement_date: day("2026-11-28"),
            },
            StatementLine {
                line_no: 3,
                txn_ref: "FT26332123457".into(),
                reference: "Nộp lệ phí".into(),
                payment_code: None,
                amount: Vnd::new(200_000),
                fee: Vnd::ZERO,
                // 00:30 on the 29th in Vietnam.
                transaction_time: at("2026-11-28T17:30:00Z"),
                settlement_date: day("2026-11-29"),
            },
        ]
    );
}

#[test]
fn vnpay_reads_vietnamese_amounts_and_local_times() {
    let read = lines("vnpay", VNPAY);
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].txn_ref, "14712345");
    assert_eq!(read[0].reference, CODE);
    assert_eq!(read[0].amount, Vnd::new(150_000));
    assert_eq!(read[0].fee, Vnd::new(1_650));
    assert_eq!(read[0].transaction_time, at("2026-11-28T13:03:57+07:00"));
    assert_eq!(read[0].settlement_date, day("2026-11-29"));
    assert_eq!(read[1].line_no, 3);
    assert_eq!(read[1].amount, Vnd::new(1_500_000));
    assert_eq!(read[1].fee, Vnd::new(16_500));
    assert_eq!(read[1].transaction_time, at("2026-11-28T16:59:59Z"));
}

#[test]
fn momo_and_zalopay_read_their_samples() {
    for (name, file, txn_ref, reference, fee) in [
        ("momo", MOMO, "4088123456", CODE, 2_200),
        (
            "zalopay",
            ZALOPAY,
            "261128000123456",
            "261128_LP23456789ABU",
            1_500,
        ),
    ] {
        let read = lines(name, file);
        assert_eq!(
            read,
            [StatementLine {
                line_no: 2,
                txn_ref: txn_ref.into(),
                reference: reference.into(),
                payment_code: None,
                amount: Vnd::new(150_000),
                fee: Vnd::new(fee),
                transaction_time: at("2026-11-28T13:03:57+07:00"),
                settlement_date: day("2026-11-29"),
            }],
            "{name}"
        );
    }
}

#[test]
fn vietcombank_reads_semicolons_and_credits() {
    let read = lines("vietcombank", VIETCOMBANK);
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].txn_ref, "5213.28112026.130357");
    assert_eq!(read[0].payment_code, code(CODE));
    assert_eq!(read[0].amount, Vnd::new(150_000));
    assert_eq!(read[0].transaction_time, at("2026-11-28T13:03:57+07:00"));
    assert_eq!(read[0].settlement_date, day("2026-11-28"));
    assert_eq!(read[1].reference, "NGUYEN VAN A nop le phi");
    assert_eq!(read[1].payment_code, None);
    assert_eq!(read[1].amount, Vnd::new(1_500_000));
}

#[test]
fn shipped_profiles_are_named_sound_and_fit_their_channels() {
    let profiles = shipped_profiles();
    assert_eq!(
        profiles.names().collect::<Vec<_>>(),
        [
            "canonical",
            "canonical_bank",
            "momo",
            "vietcombank",
            "vnpay",
            "zalopay"
        ]
    );
    for name in profiles.names() {
        let profile = profiles.get(name).unwrap();
        assert_eq!(profile.name(), name);
        assert!(profile.compile().is_ok(), "{name}");
        assert!(!profile.fits(Channel::Cash));
    }
    for channel in Channel::ALL {
        let default = profiles.get(Profiles::default_for(channel)).unwrap();
        assert_eq!(default.fits(channel), channel.is_cashless(), "{channel}");
    }
    assert!(profiles.get("vnpay").unwrap().fits(Channel::Zalopay));
    assert!(!profiles.get("vnpay").unwrap().fits(Channel::BankTransfer));
    assert!(
        profiles
            .get("vietcombank")
            .unwrap()
            .fits(Channel::BankTransfer)
    );
    assert!(!profiles.get("vietcombank").unwrap().fits(Channel::Momo));
    assert!(profiles.get("nope").is_none());
}

#[test]
fn a_byte_order_mark_crlf_and_blank_lines_are_taken() {
    let file = format!(
        "\u{FEFF}{}\r\n\r\n,,,,,\r\n",
        CANONICAL.trim_end().replace('\n', "\r\n")
    );
    let read = lines("canonical", &file);
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].txn_ref, "14712345");
    assert_eq!(read[1].line_no, 3);
}

#[test]
fn a_header_alone_yields_no_lines() {
    let header = CANONICAL.lines().next().unwrap();
    assert!(lines("canonical", header).is_empty());
    assert!(lines("canonical", &format!("{header}\n\n")).is_empty());
}

#[test]
fn bad_lines_are_refused_with_their_line_numbers() {
    let good = "14712345,LP1,150000,0,2026-11-28T13:03:57+07:00,2026-11-29";
    let long_id = "9".repeat(65);
    let long_ref = "r".repeat(256);
    let cases: Vec<(String, &str)> = vec![
        (
            "1,LP1,12.5,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "amount \"12.5\": fractional đồng",
        ),
        (
            "1,LP1,abc,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "amount \"abc\": not an amount like 150000",
        ),
        (
            "1,LP1,1.500.000,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "amount \"1.500.000\": not an amount like 150000",
        ),
        (
            "1,LP1,,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "amount \"\": not an amount like 150000",
        ),
        (
            "1,LP1,0,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "amount \"0\": must be more than 0",
        ),
        (
            "1,LP1,-5,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "amount \"-5\": must be more than 0",
        ),
        (
            "1,LP1,99999999999999999999,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "amount \"99999999999999999999\": out of range",
        ),
        (
            "1,LP1,150000,-1,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "fee \"-1\": must not be negative",
        ),
        (
            "1,LP1,150000,0.5,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "fee \"0.5\": fractional đồng",
        ),
        (
            "1,LP1,150000,0,2026-11-28 13:03:57,2026-11-29".into(),
            "transaction_time \"2026-11-28 13:03:57\": not a time like 2026-11-28T13:03:57+07:00",
        ),
        (
            "1,LP1,150000,0,9999-12-31T23:59:59-01:00,2026-11-29".into(),
            "transaction_time \"9999-12-31T23:59:59-01:00\": not a time like 2026-11-28T13:03:57+07:00",
        ),
        (
            "1,LP1,150000,0,2026-11-28T13:03:57+07:00,29/11/2026".into(),
            "settlement_date \"29/11/2026\": not a date like 2026-11-28",
        ),
        (
            "1,LP1,150000,0,2026-11-28T13:03:57+07:00,2026-02-30".into(),
            "settlement_date \"2026-02-30\": not a date like 2026-11-28",
        ),
        (
            " ,LP1,150000,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "provider_txn_id: must not be empty",
        ),
        (
            "1,,150000,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "order_ref: must not be empty",
        ),
        (
            format!("{long_id},LP1,150000,0,2026-11-28T13:03:57+07:00,2026-11-29"),
            "provider_txn_id: must be at most 64 characters",
        ),
        (
            format!("1,{long_ref},150000,0,2026-11-28T13:03:57+07:00,2026-11-29"),
            "order_ref: must be at most 255 characters",
        ),
        (
            "1\u{7},LP1,150000,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "provider_txn_id: must not contain control characters",
        ),
        (
            "\"1\",\"LP\n1\",150000,0,2026-11-28T13:03:57+07:00,2026-11-29".into(),
            "order_ref: must not contain control characters",
        ),
        (
            "1,LP1,150000,0,2026-11-28T13:03:57+07:00".into(),
            "5 fields where the header has 6",
        ),
        (
            "1,LP1,150000,0,2026-11-28T13:03:57+07:00,2026-11-29,extra".into(),
            "7 fields where the header has 6",
        ),
    ];
    let header = CANONICAL.lines().next().unwrap();
    for (bad, reason) in cases {
        let file = format!("{header}\n{good}\n{bad}\n{good}\n");
        let read = read(&shipped_profiles(), "canonical", file.as_bytes()).unwrap();
        let refused: Vec<_> = read.iter().filter_map(|l| l.as_ref().err()).collect();
        assert_eq!(
            refused,
            [&LineError {
                line: 3,
                reason: reason.into()
            }],
            "{bad}"
        );
        let taken: Vec<_> = read.iter().filter_map(|l| l.as_ref().ok()).collect();
        let last = if bad.contains('\n') { 5 } else { 4 };
        assert_eq!(taken[1].line_no, last, "{bad}");
    }
}

#[test]
fn vietnamese_amounts_are_refused_in_the_same_words() {
    let header = VNPAY.lines().next().unwrap();
    let line = |amount: &str, fee: &str| {
        format!("{header}\n1,1,LP1,NCB,{amount},{fee},28/11/2026 13:03:57,29/11/2026,OK\n")
    };
    for (file, reason) in [
        (line("\"12,5\"", "0"), "Số tiền \"12,5\": fractional đồng"),
        (
            line("150000.00", "0"),
            "Số tiền \"150000.00\": not an amount like 1.500.000",
        ),
        (
            line("1.50.000", "0"),
            "Số tiền \"1.50.000\": not an amount like 1.500.000",
        ),
        (
            line("150.000", "-1.000"),
            "Phí \"-1.000\": must not be negative",
        ),
        (line("150.000", "1.650"), ""),
    ] {
        let refused = refusals("vnpay", file.as_bytes());
        if reason.is_empty() {
            assert!(refused.is_empty(), "{refused:?}");
        } else {
            assert_eq!(
                refused,
                [LineError {
                    line: 2,
                    reason: reason.into()
                }]
            );
        }
    }
    let local = "Thời gian GD \"2026-11-28T13:03:57+07:00\": not a time like 28/11/2026 13:03:57";
    let file = format!("{header}\n1,1,LP1,NCB,150.000,0,2026-11-28T13:03:57+07:00,29/11/2026,OK\n");
    assert_eq!(refusals("vnpay", file.as_bytes())[0].reason, local);
    let file = format!("{header}\n1,1,LP1,NCB,150.000,0,28/11/2026 13:03:57,2026-11-29,OK\n");
    assert_eq!(
        refusals("vnpay", file.as_bytes())[0].reason,
        "Ngày quyết toán \"2026-11-29\": not a date like 28/11/2026"
    );
}

#[test]
fn a_multi_line_description_keeps_later_line_numbers_right() {
    let file = "\
bank_ref,description,amount,transaction_time
FT1,\"chuyen tien\r\nLP23456789ABU\tle phi\",150000,2026-11-28T13:03:57+07:00
FT2,\"a
b
c\",150000,2026-11-28T13:03:57+07:00
FT3,x,0,2026-11-28T13:03:57+07:00
FT4,,150000,2026-11-28T13:03:57+07:00
FT5,\"\u{1}\",150000,2026-11-28T13:03:57+07:00
";
    let read = read(&shipped_profiles(), "canonical_bank", file.as_bytes()).unwrap();
    let first = read[0].as_ref().unwrap();
    assert_eq!(first.line_no, 2);
    assert_eq!(first.reference, "chuyen tien  LP23456789ABU le phi");
    assert_eq!(first.payment_code, code(CODE));
    assert_eq!(read[1].as_ref().unwrap().line_no, 4);
    assert_eq!(read[1].as_ref().unwrap().reference, "a b c");
    let refused: Vec<_> = read.into_iter().filter_map(Result::err).collect();
    assert_eq!(
        refused,
        [
            LineError {
                line: 7,
                reason: "amount \"0\": must be more than 0".into()
            },
            LineError {
                line: 8,
                reason: "description: must not be empty".into()
            },
            LineError {
                line: 9,
                reason: "description: must not be empty".into()
            },
        ]
    );
}

#[test]
fn text_that_is_not_utf8_is_refused_with_its_line() {
    // "Chuyên tiền" saved as Windows-1258 / Latin-1 bytes.
    let mut file = VIETCOMBANK.as_bytes().to_vec();
    file.extend_from_slice(
        b"3;29/11/2026 08:00:00;5213.1;;150.000;1;Chuy\xEAn ti\xE8n LP23456789ABU\n",
    );
    assert_eq!(
        refusals("vietcombank", &file),
        [LineError {
            line: 4,
            reason: "Mô tả: not UTF-8: save the file as UTF-8".into()
        }]
    );
    let header = b"STT;Ng\xE0y giao d\xECch;S\xF4 tham chi\xEA\xFA\n";
    assert_eq!(
        header_refusal("vietcombank", header).to_string(),
        "line 1: the header is not UTF-8: save the file as UTF-8"
    );
}

#[test]
fn a_huge_line_is_refused_and_reading_goes_on() {
    let header = CANONICAL.lines().next().unwrap();
    let huge = format!(
        "1,{},150000,0,2026-11-28T13:03:57+07:00,2026-11-29",
        "r".repeat(5_000)
    );
    let file = format!("{header}\n{huge}\n{}\n", CANONICAL.lines().nth(1).unwrap());
    let read = read(&shipped_profiles(), "canonical", file.as_bytes()).unwrap();
    assert_eq!(read.len(), 2);
    let refused = read[0].as_ref().unwrap_err();
    assert_eq!(refused.line, 2);
    assert_eq!(
        refused.reason,
        format!("line too long: {} bytes, at most 4096", huge.len())
    );
    assert_eq!(read[1].as_ref().unwrap().line_no, 3);
}

#[test]
fn a_header_without_the_profiles_columns_is_refused_at_line_1() {
    let refused = header_refusal(
        "canonical",
        b"provider_txn_id,order_ref,amount,transaction_time,settlement_date\n",
    );
    assert_eq!(
        refused.to_string(),
        "line 1: missing column(s) \"fee\" that profile \"canonical\" needs; the header has \
         \"provider_txn_id\", \"order_ref\", \"amount\", \"transaction_time\", \"settlement_date\""
    );
    // Another provider's file.
    let refused = header_refusal("vnpay", MOMO.as_bytes());
    assert_eq!(refused.line, 1);
    assert!(
        refused.reason.starts_with(
            "missing column(s) \"Mã GD VNPAY\", \"Mã GD merchant\", \"Phí\", \"Thời gian GD\", \
             \"Ngày quyết toán\" that profile \"vnpay\" needs"
        ),
        "{refused}"
    );
    // The right columns, the wrong delimiter.
    let refused = header_refusal("vietcombank", VIETCOMBANK.replace(';', ",").as_bytes());
    assert!(
        refused
            .reason
            .starts_with("missing column(s) \"Số tham chiếu\"")
    );
    let refused = header_refusal(
        "canonical_bank",
        b"bank_ref,description,amount,amount,transaction_time\n",
    );
    assert_eq!(
        refused.reason,
        "column \"amount\" appears twice in the header"
    );
    let refused = header_refusal("canonical", CANONICAL.replace('\n', "\r").as_bytes());
    assert_eq!(
        refused.to_string(),
        "line 1: lines end in a lone carriage return (an old Mac format): \
         save the file with Windows (CRLF) or Unix (LF) line endings"
    );
    for empty in [&b""[..], b"\n\n", b"\xEF\xBB\xBF"] {
        assert_eq!(
            header_refusal("canonical_bank", empty).to_string(),
            "line 1: the file is empty: profile \"canonical_bank\" expects a header such as \
             \"bank_ref,description,amount,transaction_time\""
        );
    }
}

#[test]
fn columns_are_found_by_trimmed_name_in_any_order() {
    let file = " transaction_time ;extra; amount;bank_ref;description\n\
                2026-11-28T13:03:57+07:00;x;150000;FT1;LP23456789ABU\n";
    let profiles = Profiles::new(&configured(
        r#"
        [semicolons]
        layout = "bank"
        delimiter = ";"
        columns = { bank_ref = "bank_ref", description = "description", amount = "amount", transaction_time = "transaction_time" }
        "#,
    ))
    .unwrap();
    let read = read(&profiles, "semicolons", file.as_bytes()).unwrap();
    let line = read[0].as_ref().unwrap();
    assert_eq!(line.txn_ref, "FT1");
    assert_eq!(line.payment_code, code(CODE));
}

/// Profiles as a configuration file holds them, read as lephi reads
/// its settings.
fn configured(toml: &str) -> BTreeMap<String, Profile> {
    config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap()
}

#[test]
fn a_configured_profile_is_used() {
    let profiles = Profiles::new(&configured(
        r#"
        [bidv]
        layout = "bank"
        amount_format = "vietnamese"
        time_format = "[day]/[month]/[year] [hour]:[minute]"
        [bidv.columns]
        bank_ref = "Số bút toán"
        description = "Nội dung"
        amount = "Số tiền có"
        transaction_time = "Thời gian"

        [partner]
        layout = "gateway"
        delimiter = "\t"
        time_format = "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]"
        date_format = "[day].[month].[year]"
        [partner.columns]
        provider_txn_id = "id"
        order_ref = "ref"
        amount = "amount"
        transaction_time = "at"
        settlement_date = "day"

        [utc_clock]
        layout = "gateway"
        time_format = "[year]-[month]-[day] [hour]:[minute]:[second]"
        utc_offset = "+00:00"
        columns = { provider_txn_id = "id", order_ref = "ref", amount = "amount", transaction_time = "at", settlement_date = "day" }
        "#,
    ))
    .unwrap();
    assert!(profiles.names().any(|n| n == "vnpay"));
    let bidv = profiles.get("bidv").unwrap();
    assert_eq!(bidv.name(), "bidv");
    assert!(bidv.fits(Channel::BankTransfer));
    let file = "Thời gian,Số bút toán,Nội dung,Số tiền có\n\
                28/11/2026 13:03,BT1,LP23456789ABU,\"1.500.000,00\"\n";
    let line = lines_of(&profiles, "bidv", file).remove(0);
    assert_eq!(line.amount, Vnd::new(1_500_000));
    assert_eq!(line.transaction_time, at("2026-11-28T13:03:00+07:00"));
    assert_eq!(line.payment_code, code(CODE));

    // No fee column: every fee is 0. Times carry their own offset.
    let file = "id\tref\tamount\tat\tday\n\
                7\tLP1\t150000\t2026-11-28 13:03:57 +09:00\t29.11.2026\n";
    let line = lines_of(&profiles, "partner", file).remove(0);
    assert_eq!(line.fee, Vnd::ZERO);
    assert_eq!(line.transaction_time, at("2026-11-28T04:03:57Z"));
    assert_eq!(line.settlement_date, day("2026-11-29"));

    let file = "id,ref,amount,at,day\n7,LP1,150000,2026-11-28 13:03:57,2026-11-29\n";
    let line = lines_of(&profiles, "utc_clock", file).remove(0);
    assert_eq!(line.transaction_time, at("2026-11-28T13:03:57Z"));
}

fn lines_of(profiles: &Profiles, name: &str, file: &str) -> Vec<StatementLine> {
    read(profiles, name, file.as_bytes())
        .unwrap()
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_bad_configured_profile_is_refused_by_name() {
    let gateway_columns = r#"columns = { provider_txn_id = "a", order_ref = "b", amount = "c", transaction_time = "d", settlement_date = "e" }"#;
    let bank_columns =
        r#"columns = { bank_ref = "a", description = "b", amount = "c", transaction_time = "d" }"#;
    for (body, reason) in [
        (
            format!("layout = \"gateway\"\ntime_format = \"[day]/[month]/[year] [hour\"\n{gateway_columns}"),
            "profile \"bad\": time_format \"[day]/[month]/[year] [hour\": ",
        ),
        (
            // time 0.3's own parser panics on this one in debug builds.
            format!("layout = \"bank\"\ntime_format = '[a[\\-'\n{bank_columns}"),
            "profile \"bad\": time_format \"[a[\\\\-\": ",
        ),
        (
            format!("layout = \"gateway\"\ndate_format = '[:[\\ ]]'\n{gateway_columns}"),
            "profile \"bad\": date_format \"[:[\\\\ ]]\": ",
        ),
        (
            format!("layout = \"gateway\"\ntime_format = \"[day]/[month]/[year]\"\n{gateway_columns}"),
            "profile \"bad\": time_format \"[day]/[month]/[year]\": cannot read a date and time with it",
        ),
        (
            format!("layout = \"gateway\"\ndate_format = \"[hour]:[minute]\"\n{gateway_columns}"),
            "profile \"bad\": date_format \"[hour]:[minute]\": cannot read a date with it",
        ),
        (
            format!("layout = \"gateway\"\ndelimiter = \";;\"\n{gateway_columns}"),
            "profile \"bad\": delimiter \";;\": must be one ASCII character",
        ),
        (
            format!("layout = \"gateway\"\ndelimiter = \"đ\"\n{gateway_columns}"),
            "profile \"bad\": delimiter \"đ\": must be one ASCII character",
        ),
        (
            format!("layout = \"gateway\"\nutc_offset = \"7\"\n{gateway_columns}"),
            "profile \"bad\": utc_offset \"7\": not an offset like +07:00",
        ),
        (
            "layout = \"gateway\"\ncolumns = { provider_txn_id = \"a\", order_ref = \"b\", amount = \"c\", transaction_time = \"d\" }".into(),
            "profile \"bad\": columns.settlement_date: missing; this layout needs it",
        ),
        (
            "layout = \"bank\"\ncolumns = { bank_ref = \"a\", description = \" \", amount = \"c\", transaction_time = \"d\" }".into(),
            "profile \"bad\": columns.description: must name a column",
        ),
        (
            "layout = \"bank\"\ncolumns = { bank_ref = \"a\", description = \"b\", amount = \"c\", transaction_time = \"d\", fee = \"f\" }".into(),
            "profile \"bad\": columns.fee: a bank profile has no such column",
        ),
        (
            format!("layout = \"gateway\"\n{bank_columns}"),
            "profile \"bad\": columns.bank_ref: a gateway profile has no such column",
        ),
        (
            format!("layout = \"bank\"\ndate_format = \"[year]\"\n{bank_columns}"),
            "profile \"bad\": date_format: a bank profile has none",
        ),
    ] {
        let refused = Profiles::new(&configured(&format!("[bad]\n{body}"))).unwrap_err();
        assert!(refused.starts_with(reason), "{refused}");
    }
    let shadow = configured(&format!("[vnpay]\nlayout = \"bank\"\n{bank_columns}"));
    assert_eq!(
        Profiles::new(&shadow).unwrap_err(),
        "profile \"vnpay\": a shipped profile has this name; give the configured one another name"
    );
}

#[test]
fn unknown_profile_keys_and_layouts_do_not_deserialize() {
    for toml in [
        "[bad]\nlayout = \"gateway\"\ndelimeter = \";\"\ncolumns = {}",
        "[bad]\nlayout = \"cash\"\ncolumns = {}",
        "[bad]\nlayout = \"bank\"\ncolumns = { bank_reference = \"x\" }",
        "[bad]\nlayout = \"bank\"\namount_format = \"french\"\ncolumns = {}",
    ] {
        let built = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap();
        assert!(
            built
                .try_deserialize::<BTreeMap<String, Profile>>()
                .is_err(),
            "{toml}"
        );
    }
}

#[test]
fn a_bad_configured_profile_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lephi.toml");
    std::fs::write(
        &file,
        "[reconciliation.profiles.bad]\nlayout = \"bank\"\ncolumns = { bank_ref = \"a\" }\n",
    )
    .unwrap();
    let refused = crate::config::Settings::load_from(Some(&file), []).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "configuration: reconciliation.profiles: profile \"bad\": columns.description: missing; this layout needs it"
    );
}

/// Reads `file` with every shipped profile, checking what any read
/// must keep: line numbers rise, and a taken line is a valid one.
fn read_everywhere(profiles: &Profiles, file: &[u8]) -> Result<(), TestCaseError> {
    for name in profiles.names() {
        let Ok(lines) = profiles.get(name).unwrap().read(file) else {
            continue;
        };
        let mut last = 1;
        for line in lines {
            let number = match &line {
                Ok(line) => {
                    prop_assert!(line.amount > Vnd::ZERO);
                    prop_assert!(line.fee >= Vnd::ZERO);
                    prop_assert!(!line.txn_ref.is_empty());
                    prop_assert!(!line.reference.is_empty());
                    line.line_no
                }
                Err(refused) => refused.line,
            };
            prop_assert!(number > last, "{name}: line {number} after {last}");
            last = number;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_bytes_never_panic(file in proptest::collection::vec(any::<u8>(), 0..400)) {
        read_everywhere(&shipped_profiles(), &file)?;
    }

    #[test]
    fn random_text_under_a_good_header_never_panics(
        sample in 0..SAMPLES.len(),
        body in "[0-9a-zA-Z ,;.:/+\\-\"\r\n\t]{0,400}",
    ) {
        let header = SAMPLES[sample].1.lines().next().unwrap();
        read_everywhere(&shipped_profiles(), format!("{header}\n{body}").as_bytes())?;
    }

    #[test]
    fn mutated_files_never_panic(
        sample in 0..SAMPLES.len(),
        edits in proptest::collection::vec(
            (any::<proptest::sample::Index>(), any::<u8>(), 0..3u8),
            1..6,
        ),
    ) {
        let mut file = SAMPLES[sample].1.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at.index(file.len().max(1)).min(file.len());
            match kind {
                0 if at < file.len() => file[at] = byte,
                1 if at < file.len() => {
                    file.remove(at);
                }
                _ => file.insert(at, byte),
            }
        }
        read_everywhere(&shipped_profiles(), &file)?;
    }
}
