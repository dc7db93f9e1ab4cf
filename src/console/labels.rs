//! What every code the console shows is called, in Vietnamese and in
//! English: exception kinds, line and dossier outcomes, statuses, roles,
//! levels, audit actions and error codes. Pages and CSV files show these
//! names, never the codes themselves; [`CODES`] lists the codes a
//! Vietnamese page must not show, for the test that reads every page.

use crate::domain::payment::{
    AttemptStatus, ExceptionKind, ExceptionStatus, PaymentSource, Resolution,
};
use crate::domain::refund::RefundStatus;
use crate::domain::settlement::{ImportStatus, LineOutcome};
use crate::domain::{AgencyLevel, InvoiceStatus, Role};
use crate::domain::{dossier::DossierOutcome, officer::OfficerRole};
use crate::error::ErrorCode;
use crate::pages::{Lang, Text, text};
use crate::store::{EventStatus, EventType};

/// A code with a name for people.
pub trait Label: Copy {
    fn text(self) -> &'static Text;

    /// The name in `lang`.
    fn label(self, lang: Lang) -> &'static str {
        lang.pick(self.text())
    }
}

macro_rules! labels {
    ($($ty:ty { $($variant:path => ($vi:literal, $en:literal)),+ $(,)? })+) => {
        $(
            impl Label for $ty {
                fn text(self) -> &'static Text {
                    match self {
                        $($variant => &text!($vi, $en),)+
                    }
                }
            }
        )+
    };
}

labels! {
    ExceptionKind {
        ExceptionKind::UnknownOrder => ("Không rõ yêu cầu thanh toán", "Unknown order"),
        ExceptionKind::AmountMismatch => ("Sai số tiền", "Amount mismatch"),
        ExceptionKind::Overpaid => ("Nộp thừa", "Overpaid"),
        ExceptionKind::LatePayment => ("Nộp muộn", "Late payment"),
        ExceptionKind::WrongAccount => ("Sai tài khoản nhận", "Wrong account"),
        ExceptionKind::MissingPayment => ("Thiếu ghi nhận", "Missing payment"),
        ExceptionKind::UnsettledPayment => ("Chưa đối soát", "Unsettled payment"),
        ExceptionKind::DuplicateLine => ("Dòng trùng", "Duplicate line"),
        ExceptionKind::UnknownDossier => ("Hồ sơ không có trong sổ", "Unknown dossier"),
        ExceptionKind::UnconfirmedAttempt => ("Giao dịch chưa xác nhận", "Unconfirmed attempt"),
        ExceptionKind::RefundUnconfirmed => ("Hoàn tiền chưa xác nhận", "Refund unconfirmed"),
    }
    ExceptionStatus {
        ExceptionStatus::Open => ("Đang chờ xử lý", "Open"),
        ExceptionStatus::Resolved => ("Đã xử lý", "Resolved"),
    }
    Resolution {
        Resolution::MatchedManually => ("Đối chiếu thủ công", "Matched manually"),
        Resolution::RefundRequired => ("Cần hoàn tiền", "Refund required"),
        Resolution::WrittenOff => ("Xóa sổ chênh lệch", "Written off"),
        Resolution::Confirmed => ("Xác nhận đúng", "Confirmed"),
        Resolution::SettledLater => ("Đối soát sau", "Settled later"),
        Resolution::DossierRegistered => ("Hồ sơ đã vào sổ", "Dossier registered"),
        Resolution::Refunded => ("Đã hoàn tiền", "Refunded"),
        Resolution::Applied => ("Đã ghi cho hồ sơ", "Applied to the dossier"),
    }
    LineOutcome {
        LineOutcome::Matched => ("Khớp với giao dịch đã ghi nhận", "Matched"),
        LineOutcome::AmountMismatch => ("Lệch số tiền", "Amount differs"),
        LineOutcome::MissingPayment => ("Giao dịch chưa ghi nhận (đã khôi phục)", "Payment not recorded (recovered)"),
        LineOutcome::DuplicateLine => ("Dòng trùng lặp", "Duplicate line"),
    }
    ImportStatus {
        ImportStatus::Queued => ("Đang chờ", "Queued"),
        ImportStatus::Running => ("Đang nhập", "Running"),
        ImportStatus::Done => ("Đã xong", "Done"),
        ImportStatus::Refused => ("Bị từ chối", "Refused"),
    }
    DossierOutcome {
        DossierOutcome::Unpaid => ("Chưa nộp", "Unpaid"),
        DossierOutcome::Underpaid => ("Nộp thiếu", "Underpaid"),
        DossierOutcome::PaidCash => ("Đã nộp tiền mặt", "Paid in cash"),
        DossierOutcome::PaidCashless => ("Đã nộp không dùng tiền mặt", "Paid cashless"),
        DossierOutcome::Overpaid => ("Nộp thừa", "Overpaid"),
        DossierOutcome::PaidTwice => ("Nộp hai lần", "Paid twice"),
    }
    InvoiceStatus {
        InvoiceStatus::Open => ("Chờ thanh toán", "Open"),
        InvoiceStatus::Paid => ("Đã thanh toán", "Paid"),
        InvoiceStatus::Cancelled => ("Đã hủy", "Cancelled"),
        InvoiceStatus::Expired => ("Hết hạn", "Expired"),
    }
    RefundStatus {
        RefundStatus::Requested => ("Chờ duyệt", "Waiting for approval"),
        RefundStatus::Approved => ("Đã duyệt", "Approved"),
        RefundStatus::Rejected => ("Bị từ chối", "Rejected"),
        RefundStatus::Submitted => ("Đã gửi cổng thanh toán", "Sent to the gateway"),
        RefundStatus::Succeeded => ("Đã hoàn", "Refunded"),
        RefundStatus::Failed => ("Không thành công", "Failed"),
    }
    AttemptStatus {
        AttemptStatus::Pending => ("Đang chờ cổng xác nhận", "Pending"),
        AttemptStatus::Succeeded => ("Thành công", "Succeeded"),
        AttemptStatus::Failed => ("Không thành công", "Failed"),
    }
    PaymentSource {
        PaymentSource::Callback => ("Cổng thanh toán báo về", "Provider's callback"),
        PaymentSource::StatusQuery => ("Hỏi trạng thái cổng thanh toán", "Provider's status query"),
        PaymentSource::Counter => ("Cán bộ ghi tại quầy", "Recorded at the counter"),
        PaymentSource::Statement => ("Khôi phục từ sao kê", "Recovered from a statement"),
    }
    EventStatus {
        EventStatus::Held => ("Chờ cơ quan đặt địa chỉ nhận", "Held: no webhook yet"),
        EventStatus::Pending => ("Đang gửi", "Pending"),
        EventStatus::Delivered => ("Đã gửi", "Delivered"),
        EventStatus::Dead => ("Gửi không được (thư chết)", "Dead letter"),
    }
    EventType {
        EventType::PaymentReceived => ("Đã nhận tiền", "Payment received"),
        EventType::InvoicePaid => ("Hồ sơ đã nộp đủ", "Invoice paid"),
        EventType::ExceptionOpened => ("Mở ngoại lệ", "Exception opened"),
        EventType::RefundSucceeded => ("Hoàn tiền thành công", "Refund succeeded"),
        EventType::RefundFailed => ("Hoàn tiền không thành công", "Refund failed"),
    }
    OfficerRole {
        OfficerRole::Finance => ("Kế toán", "Finance"),
        OfficerRole::Approver => ("Kế toán duyệt hoàn tiền", "Finance, approves refunds"),
        OfficerRole::Admin => ("Quản trị", "Admin"),
    }
    Role {
        Role::AgencySystem => ("Hệ thống một cửa", "Dossier system"),
        Role::Finance => ("Kế toán", "Finance"),
        Role::Admin => ("Quản trị", "Admin"),
    }
    AgencyLevel {
        AgencyLevel::Province => ("Cấp tỉnh", "Province"),
        AgencyLevel::District => ("Cấp huyện", "District"),
        AgencyLevel::Commune => ("Cấp xã", "Commune"),
    }
}

/// Every audit action, with its name.
pub const ACTIONS: &[(&str, Text)] = &[
    ("agency.created", text!("Tạo cơ quan", "Agency created")),
    ("agency.renamed", text!("Đổi tên cơ quan", "Agency renamed")),
    (
        "agency.bank_account_set",
        text!("Đặt tài khoản nhận", "Bank account set"),
    ),
    (
        "agency.webhook_set",
        text!("Đặt địa chỉ nhận thông báo", "Webhook set"),
    ),
    ("api_key.created", text!("Tạo khóa API", "API key created")),
    (
        "api_key.revoked",
        text!("Thu hồi khóa API", "API key revoked"),
    ),
    (
        "attempt.opened",
        text!("Bắt đầu thanh toán trực tuyến", "Payment attempt opened"),
    ),
    (
        "attempt.failed",
        text!(
            "Thanh toán trực tuyến không thành công",
            "Payment attempt failed"
        ),
    ),
    (
        "attempt.unconfirmed",
        text!("Cổng chưa xác nhận giao dịch", "Attempt unconfirmed"),
    ),
    (
        "console.signed_in",
        text!("Đăng nhập bàn làm việc", "Signed in to the console"),
    ),
    (
        "console.password_accepted",
        text!(
            "Mật khẩu đúng, chờ đăng ký mã xác thực",
            "Password accepted, second factor to set up"
        ),
    ),
    (
        "dossiers.queued",
        text!("Nhận sổ hồ sơ để nhập", "Register queued"),
    ),
    (
        "dossiers.imported",
        text!("Nhập sổ hồ sơ", "Register imported"),
    ),
    (
        "dossiers.refused",
        text!("Từ chối sổ hồ sơ", "Register refused"),
    ),
    (
        "event.redelivery_requested",
        text!("Yêu cầu gửi lại thông báo", "Redelivery requested"),
    ),
    ("exception.opened", text!("Mở ngoại lệ", "Exception opened")),
    (
        "exception.resolved",
        text!("Xử lý ngoại lệ", "Exception resolved"),
    ),
    (
        "exception.cleared",
        text!("Ngoại lệ tự hết", "Exception cleared"),
    ),
    (
        "invoice.created",
        text!("Tạo yêu cầu thanh toán", "Invoice created"),
    ),
    (
        "invoice.paid",
        text!("Yêu cầu thanh toán đã nộp đủ", "Invoice paid"),
    ),
    (
        "invoice.part_paid",
        text!("Yêu cầu thanh toán nộp một phần", "Invoice part paid"),
    ),
    (
        "invoice.opened",
        text!("Yêu cầu thanh toán mở lại", "Invoice open again"),
    ),
    (
        "invoice.cancelled",
        text!("Hủy yêu cầu thanh toán", "Invoice cancelled"),
    ),
    (
        "invoice.expired",
        text!("Yêu cầu thanh toán hết hạn", "Invoice expired"),
    ),
    (
        "invoice.given_back",
        text!("Hồ sơ trở lại chưa nộp đủ", "Invoice owing again"),
    ),
    (
        "invoice.personal_data_erased",
        text!("Xóa thông tin cá nhân", "Personal data erased"),
    ),
    (
        "officer.created",
        text!("Tạo tài khoản cán bộ", "Officer created"),
    ),
    (
        "officer.disabled",
        text!("Khóa tài khoản cán bộ", "Officer disabled"),
    ),
    (
        "officer.password_changed",
        text!("Đổi mật khẩu", "Password changed"),
    ),
    (
        "officer.password_reset",
        text!("Đặt lại mật khẩu", "Password reset"),
    ),
    (
        "officer.second_factor_enrolled",
        text!("Đăng ký mã xác thực", "Second factor enrolled"),
    ),
    (
        "officer.second_factor_reset",
        text!("Đặt lại mã xác thực", "Second factor reset"),
    ),
    (
        "officer.sign_in_failed",
        text!("Đăng nhập không thành công", "Sign-in failed"),
    ),
    (
        "payment.recorded",
        text!("Ghi nhận khoản thu", "Payment recorded"),
    ),
    (
        "payment.applied",
        text!("Ghi khoản thu cho hồ sơ", "Payment applied"),
    ),
    (
        "refund.requested",
        text!("Đề nghị hoàn tiền", "Refund requested"),
    ),
    (
        "refund.approved",
        text!("Duyệt hoàn tiền", "Refund approved"),
    ),
    (
        "refund.rejected",
        text!("Từ chối hoàn tiền", "Refund rejected"),
    ),
    (
        "refund.submitted",
        text!("Gửi lệnh hoàn tiền", "Refund submitted"),
    ),
    (
        "refund.succeeded",
        text!("Hoàn tiền thành công", "Refund succeeded"),
    ),
    (
        "refund.failed",
        text!("Hoàn tiền không thành công", "Refund failed"),
    ),
    (
        "settlement.queued",
        text!("Nhận sao kê để nhập", "Statement queued"),
    ),
    (
        "settlement.imported",
        text!("Nhập sao kê", "Statement imported"),
    ),
    (
        "settlement.refused",
        text!("Từ chối sao kê", "Statement refused"),
    ),
];

/// What audit action `code` is called; an action this list does not know
/// yet shows as its code.
pub fn action_name(code: &str, lang: Lang) -> String {
    ACTIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| code.to_owned(), |(_, t)| lang.pick(t).to_owned())
}

/// What an object type in the audit is called.
pub fn object_name(code: &str, lang: Lang) -> String {
    OBJECTS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| code.to_owned(), |(_, t)| lang.pick(t).to_owned())
}

/// Every type of object the audit records, with its name, in the order
/// the audit page offers them.
pub const OBJECTS: &[(&str, Text)] = &[
    ("invoice", text!("Yêu cầu thanh toán", "Invoice")),
    ("payment", text!("Khoản thu", "Payment")),
    ("exception", text!("Ngoại lệ", "Exception")),
    ("refund", text!("Hoàn tiền", "Refund")),
    ("settlement_file", text!("Sao kê", "Statement")),
    (
        "register_import",
        text!("Lần nhập sổ hồ sơ", "Register import"),
    ),
    ("dossier_register", text!("Sổ hồ sơ", "Dossier register")),
    (
        "payment_attempt",
        text!("Giao dịch trực tuyến", "Payment attempt"),
    ),
    ("event", text!("Thông báo", "Event")),
    ("agency", text!("Cơ quan", "Agency")),
    ("api_key", text!("Khóa API", "API key")),
    ("officer", text!("Cán bộ", "Officer")),
];

/// What an error of the shared use-cases means, said to an officer in
/// Vietnamese (the English page keeps the API's message, which says more).
pub fn error_text(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Unauthorized => {
            "Phiên làm việc đã hết hoặc không hợp lệ. Vui lòng đăng nhập lại."
        }
        ErrorCode::Forbidden => "Vai trò của bạn không được làm việc này.",
        ErrorCode::NotFound | ErrorCode::RouteNotFound => {
            "Không có mục này, hoặc mục này không thuộc phạm vi của bạn."
        }
        ErrorCode::MethodNotAllowed => "Trang này không nhận yêu cầu như vậy.",
        ErrorCode::ValidationFailed | ErrorCode::InvalidBody | ErrorCode::MalformedJson => {
            "Thông tin đã nhập chưa đúng."
        }
        ErrorCode::InvalidQuery => {
            "Bộ lọc chưa đúng: ngày phải có dạng ngày/tháng/năm, mã phải đúng dạng."
        }
        ErrorCode::PayloadTooLarge => "Tệp hoặc nội dung gửi lên quá lớn.",
        ErrorCode::UnsupportedMediaType => "Loại tệp này không được nhận.",
        ErrorCode::IdempotencyKeyMissing
        | ErrorCode::IdempotencyKeyInvalid
        | ErrorCode::IdempotencyKeyReused => {
            "Biểu mẫu này đã được gửi với nội dung khác. Vui lòng mở lại trang và nhập lại."
        }
        ErrorCode::DossierHasOpenInvoice => "Hồ sơ này đang có một yêu cầu thanh toán chưa xong.",
        ErrorCode::InvalidState => {
            "Mục này đã đổi trạng thái nên không làm được việc này nữa. Vui lòng mở lại trang."
        }
        ErrorCode::AgencyNotFound => "Không có cơ quan này trong phạm vi của bạn.",
        ErrorCode::AgencyExists => "Cơ quan này đã có.",
        ErrorCode::ImportRefused => "Tệp bị từ chối; không có gì được nhập.",
        ErrorCode::TooManyImports => {
            "Bạn đang có quá nhiều tệp chờ nhập. Vui lòng đợi các tệp trước xong."
        }
        ErrorCode::StorageFull => {
            "Máy chủ hết chỗ lưu trữ; không có gì thay đổi. Vui lòng báo quản trị."
        }
        ErrorCode::ChannelUnavailable => "Kênh thanh toán này đang không dùng được.",
        ErrorCode::ProviderError => {
            "Cổng thanh toán không trả lời đúng; không có gì thay đổi. Vui lòng thử lại sau."
        }
        ErrorCode::ReceiptNumberTaken => "Số biên lai này đã được dùng cho một khoản khác.",
        ErrorCode::ExceptionResolved => "Ngoại lệ này đã được xử lý.",
        ErrorCode::NotRefundable => "Khoản này không hoàn được.",
        ErrorCode::RefundOverLeft => "Số tiền hoàn vượt quá số còn có thể hoàn.",
        ErrorCode::SameOfficer => "Người duyệt phải là một cán bộ khác với người đề nghị.",
        ErrorCode::BankAccountTaken => "Tài khoản ngân hàng này đã thuộc cơ quan khác.",
        ErrorCode::NotReady | ErrorCode::Unavailable | ErrorCode::InternalError => {
            "Hệ thống đang gặp sự cố; không có gì thay đổi. Vui lòng thử lại sau."
        }
    }
}

/// What a form field named in an error is called.
pub fn field_name(field: &str, lang: Lang) -> Option<&'static str> {
    let name = match field {
        "amount" => text!("Số tiền", "Amount"),
        "receipt_number" => text!("Số biên lai", "Receipt number"),
        "received_at" => text!("Thời điểm nhận tiền", "Received at"),
        "note" => text!("Ghi chú", "Note"),
        "reason" => text!("Lý do", "Reason"),
        "payment_id" => text!("Khoản thanh toán", "Payment"),
        "resolution" => text!("Cách xử lý", "Resolution"),
        "name" => text!("Họ và tên", "Name"),
        "email" => text!("Thư điện tử", "Email"),
        "password" | "new_password" => text!("Mật khẩu", "Password"),
        "role" => text!("Vai trò", "Role"),
        "agency" | "agency_code" => text!("Cơ quan", "Agency"),
        "from" => text!("Từ ngày", "From"),
        "to" => text!("Đến ngày", "To"),
        "code" => text!("Mã xác thực", "Code"),
        _ => return None,
    };
    Some(lang.pick(&name))
}

/// Every code the console names: a Vietnamese page that shows one of
/// these as a word of its own shows a code instead of its name.
pub fn codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = Vec::new();
    codes.extend(ExceptionKind::ALL.map(ExceptionKind::as_str));
    codes.extend(LineOutcome::ALL.map(LineOutcome::as_str));
    codes.extend(DossierOutcome::ALL.map(DossierOutcome::as_str));
    codes.extend(ImportStatus::ALL.map(ImportStatus::as_str));
    codes.extend(
        [
            Resolution::MatchedManually,
            Resolution::RefundRequired,
            Resolution::WrittenOff,
            Resolution::Confirmed,
            Resolution::SettledLater,
            Resolution::DossierRegistered,
            Resolution::Refunded,
            Resolution::Applied,
        ]
        .map(Resolution::as_str),
    );
    codes.extend(ACTIONS.iter().map(|(code, _)| *code));
    codes.extend(ErrorCode::ALL.iter().map(|c| c.as_str()));
    codes.extend([
        "bank_transfer",
        "agency_system",
        "status_query",
        "open",
        "paid",
        "cancelled",
        "expired",
        "pending",
        "succeeded",
        "failed",
        "delivered",
        "dead",
        "held",
        "requested",
        "approved",
        "rejected",
        "submitted",
        "finance",
        "approver",
        "admin",
        "province",
        "district",
        "commune",
        "key:",
    ]);
    codes.sort_unstable();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audit_action_written_has_a_name() {
        let mut seen = std::collections::HashSet::new();
        for (code, text) in ACTIONS {
            assert!(seen.insert(*code), "{code} twice");
            assert_ne!(text.vi, *code);
            assert_eq!(action_name(code, Lang::Vi), text.vi);
        }
        assert_eq!(action_name("some.new_action", Lang::Vi), "some.new_action");
    }

    #[test]
    fn every_error_code_reads_in_vietnamese() {
        for code in ErrorCode::ALL {
            let said = error_text(*code);
            assert!(said.ends_with('.'), "{said}");
            assert!(!said.contains(code.as_str()), "{said}");
        }
    }

    #[test]
    fn names_are_not_the_codes() {
        for kind in ExceptionKind::ALL {
            assert_ne!(kind.label(Lang::Vi), kind.as_str());
        }
        for outcome in DossierOutcome::ALL {
            assert_ne!(outcome.label(Lang::Vi), outcome.as_str());
        }
        assert!(codes().contains(&"paid_twice"));
    }
}

/// Why a file's line was refused, in the officer's language. The reason
/// is written in English by the reader of the file, as `what: problem`
/// (`amount "-5": must not be negative`); the problems it writes are said
/// here in Vietnamese, and what names the file's own columns and values
/// is kept as it is in the file.
pub fn refusal_reason(reason: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return reason.to_owned();
    }
    // Whole reasons, then problems at the end of `what: problem`.
    const WHOLE: &[(&str, &str)] = &[
        (
            "the stored file is gone; nothing was imported; send the file again",
            "tệp đã lưu không còn; không có gì được nhập; vui lòng gửi lại tệp",
        ),
        (
            "the header is not UTF-8: save the file as UTF-8",
            "dòng tiêu đề không phải UTF-8: hãy lưu tệp dạng UTF-8",
        ),
    ];
    const PROBLEMS: &[(&str, &str)] = &[
        ("must be more than 0", "phải lớn hơn 0"),
        ("must not be negative", "không được là số âm"),
        ("must not be empty", "không được để trống"),
        ("in the future", "là thời điểm chưa tới"),
        (
            "not UTF-8: save the file as UTF-8",
            "không phải UTF-8: hãy lưu tệp dạng UTF-8",
        ),
        ("not a time like ", "không phải thời điểm dạng "),
        ("not a date like ", "không phải ngày dạng "),
        ("not an amount like ", "không phải số tiền dạng "),
        ("more than ", "lớn hơn "),
        ("is not in your scope", "không thuộc phạm vi của bạn"),
        (
            "was not found in this key's scope",
            "không có trong phạm vi của bạn",
        ),
    ];
    if let Some((_, vi)) = WHOLE.iter().find(|(en, _)| *en == reason) {
        return (*vi).to_owned();
    }
    for (en, vi) in PROBLEMS {
        if let Some(at) = reason.find(en) {
            // What the problem is about: a transaction or agency the line
            // names, or one of the file's own columns and its value.
            let about = &reason[..at];
            let about = if let Some(rest) = about.strip_prefix("transaction ") {
                format!("giao dịch {rest}")
            } else if let Some(rest) = about.strip_prefix("agency ") {
                format!("cơ quan {rest}")
            } else if about.is_empty() {
                String::new()
            } else {
                format!("cột {about}")
            };
            return format!("{about}{vi}{}", &reason[at + en.len()..]);
        }
    }
    if let Some(rest) = reason.strip_prefix("line too long") {
        return format!("dòng quá dài{rest}").replace(" bytes, at most ", " byte, tối đa ");
    }
    if let Some(columns) = reason.strip_prefix("missing column(s) ") {
        let columns = columns.split(" that ").next().unwrap_or(columns);
        return format!("dòng tiêu đề thiếu cột {columns}");
    }
    if reason.starts_with("the file is empty") {
        return "tệp trống: không có dòng tiêu đề".to_owned();
    }
    if reason.starts_with("the header must name the columns") {
        let columns = reason.rsplit("columns ").next().unwrap_or_default();
        let columns = columns.split(", each").next().unwrap_or(columns);
        return format!("dòng tiêu đề phải có các cột {columns}, mỗi cột một lần");
    }
    if let Some(rest) = reason.strip_prefix("column ")
        && let Some(name) = rest.strip_suffix(" appears twice in the header")
    {
        return format!("cột {name} có hai lần trong dòng tiêu đề");
    }
    if let Some(rest) = reason.strip_prefix("dossier ")
        && let Some((dossier, agency)) = rest.split_once(" of agency ")
    {
        let agency = agency.split(" is listed twice").next().unwrap_or(agency);
        let first = rest.rsplit("first on line ").next().unwrap_or_default();
        return format!(
            "hồ sơ {dossier} của cơ quan {agency} có hai lần (lần đầu ở dòng {}",
            first
        );
    }
    format!("nội dung không đúng dạng ({reason})")
}

#[cfg(test)]
mod reason_tests {
    use super::*;

    #[test]
    fn reasons_of_a_refused_line_read_in_vietnamese() {
        for (en, vi) in [
            (
                "amount \"-5\": must not be negative",
                "cột amount \"-5\": không được là số âm",
            ),
            (
                "transaction_time \"31/02\": not a time like 2025-07-01T08:30:00+07:00",
                "cột transaction_time \"31/02\": không phải thời điểm dạng 2025-07-01T08:30:00+07:00",
            ),
            (
                "transaction T1 is not in your scope",
                "giao dịch T1 không thuộc phạm vi của bạn",
            ),
            (
                "missing column(s) \"amount\" that profile \"vnpay\" needs; the header has \"a\"",
                "dòng tiêu đề thiếu cột \"amount\"",
            ),
            (
                "dossier HS-1 of agency P is listed twice (first on line 2)",
                "hồ sơ HS-1 của cơ quan P có hai lần (lần đầu ở dòng 2)",
            ),
            ("something new", "nội dung không đúng dạng (something new)"),
        ] {
            assert_eq!(refusal_reason(en, Lang::Vi), vi);
            assert_eq!(refusal_reason(en, Lang::En), en);
        }
    }
}

/// What an exception found, in the officer's language: in English the
/// detail as recorded; in Vietnamese a sentence of its kind with its
/// amount (and, for an amount that differs, what was owed, as the
/// detail recorded it).
pub fn exception_detail(x: &crate::domain::payment::PaymentException, lang: Lang) -> String {
    use crate::domain::Vnd;
    if lang == Lang::En {
        return x.detail.clone();
    }
    let amount = x
        .amount
        .map_or_else(|| "Khoản tiền".to_owned(), Vnd::display_vi);
    // "… received where {owed} đồng was owed …", as recorded.
    let said = exception_sentence(x, &amount);
    // A payment's own exception, when a statement line recovered it.
    match &x.settlement_line {
        Some((_, line)) if x.detail.contains("recovered from statement line") => {
            format!(
                "{said} Khoản thu được khôi phục từ dòng {line} của sao kê (cổng không báo về)."
            )
        }
        _ => said,
    }
}

fn exception_sentence(x: &crate::domain::payment::PaymentException, amount: &str) -> String {
    use crate::domain::Vnd;
    let owed = x
        .detail
        .split_once(" đồng received where ")
        .and_then(|(_, rest)| rest.split_once(" đồng was owed"))
        .and_then(|(owed, _)| owed.parse::<i64>().ok())
        .map(|owed| Vnd::new(owed).display_vi());
    match x.kind {
        ExceptionKind::UnknownOrder => {
            format!("Nhận {amount} nhưng không tìm thấy yêu cầu thanh toán nào tương ứng.")
        }
        ExceptionKind::AmountMismatch => match owed {
            Some(owed) => format!("Nhận {amount} trong khi số phải nộp là {owed}."),
            None => format!("Nhận {amount}, không đúng số phải nộp."),
        },
        ExceptionKind::Overpaid => match owed {
            Some(owed) => format!(
                "Nhận {amount} trong khi số phải nộp là {owed}: hồ sơ đã nộp đủ, phần thừa đang được giữ để hoàn."
            ),
            None => format!("Nhận {amount} cho một hồ sơ đã nộp đủ; khoản này đang được giữ."),
        },
        ExceptionKind::LatePayment => {
            format!("Nhận {amount} cho yêu cầu thanh toán đã hủy hoặc đã hết hạn.")
        }
        ExceptionKind::WrongAccount => {
            format!("Nhận {amount} vào một tài khoản không phải của cơ quan thu.")
        }
        ExceptionKind::MissingPayment => format!(
            "Sao kê có {amount} mà hệ thống chưa ghi nhận (cổng không báo về); khoản thu đã được khôi phục từ sao kê."
        ),
        ExceptionKind::UnsettledPayment => {
            format!("Đã ghi nhận {amount} nhưng chưa có sao kê nào đối soát trong hạn.")
        }
        ExceptionKind::DuplicateLine => {
            format!("Sao kê đối soát lại {amount} cho một khoản đã được đối soát.")
        }
        ExceptionKind::UnknownDossier => {
            format!("Nhận {amount} cho một hồ sơ không có trong sổ hồ sơ.")
        }
        ExceptionKind::UnconfirmedAttempt => format!(
            "Giao dịch {amount} trên cổng thanh toán chưa bao giờ được xác nhận là đã trả hay không."
        ),
        ExceptionKind::RefundUnconfirmed => format!(
            "Lệnh hoàn {amount}: câu trả lời của cổng thanh toán không tin được (sai chữ ký); lệnh vẫn ở trạng thái đã gửi."
        ),
    }
}

/// What a column of the cashless report's CSV file is called in Vietnamese.
pub fn report_column(column: &str) -> &str {
    match column {
        "level" => "Cấp",
        "agency_code" => "Mã cơ quan",
        "agency_name" => "Tên cơ quan",
        "procedure_code" => "Mã thủ tục",
        "procedure_name" => "Tên thủ tục",
        "channel" => "Kênh",
        "month" => "Tháng",
        "cashless_amount" => "Số tiền không dùng tiền mặt",
        "cashless_count" => "Số khoản không dùng tiền mặt",
        "cash_amount" => "Số tiền mặt",
        "cash_count" => "Số khoản tiền mặt",
        "total_amount" => "Tổng số tiền",
        "total_count" => "Tổng số khoản",
        "rate_by_amount_kept" => "Tỷ lệ theo số tiền",
        "rate_by_count" => "Tỷ lệ theo số khoản",
        "cashless_refunded" => "Đã hoàn (không dùng tiền mặt)",
        "cash_refunded" => "Đã hoàn (tiền mặt)",
        "total_refunded" => "Tổng đã hoàn",
        other => other,
    }
}

/// Who did what the audit records: the officer's or key's name, or what
/// part of the service acted of itself.
pub fn actor_name(actor: &str, name: Option<&str>, lang: Lang) -> String {
    if let Some(name) = name {
        return name.to_owned();
    }
    let Some(task) = actor.strip_prefix("system:") else {
        // An officer or key whose name is gone.
        return lang
            .pick(&text!("(không còn tên)", "(no name kept)"))
            .to_owned();
    };
    let (vi, en) = match task {
        "janitor" => ("kiểm tra định kỳ", "periodic checks"),
        "expiry" => ("hết hạn tự động", "expiry"),
        "refunds" => ("gửi lệnh hoàn tiền", "refunds"),
        "retention" => ("xóa thông tin cá nhân quá hạn", "data retention"),
        "checkout" => ("trang thanh toán", "checkout"),
        "approval-threshold" => ("tự duyệt dưới ngưỡng", "approval threshold"),
        "cli" | "serve" => ("lệnh quản trị", "command line"),
        "demo" => ("dữ liệu thử", "demo data"),
        other => match other.strip_prefix("callback:") {
            Some(provider) => {
                return match lang {
                    Lang::Vi => format!("Hệ thống ({provider} báo về)"),
                    Lang::En => format!("The service (callback of {provider})"),
                };
            }
            None => ("tự động", "automatic"),
        },
    };
    match lang {
        Lang::Vi => format!("Hệ thống ({vi})"),
        Lang::En => format!("The service ({en})"),
    }
}

/// What a statement profile is called: a shipped one by what it reads, a
/// province's own by the name it was given.
pub fn profile_name(name: &str, lang: Lang) -> &str {
    match name {
        "canonical" => lang.pick(&text!(
            "Mẫu chuẩn của cổng thanh toán",
            "Standard gateway layout"
        )),
        "canonical_bank" => lang.pick(&text!("Mẫu chuẩn của ngân hàng", "Standard bank layout")),
        "vnpay" => "VNPay",
        "momo" => "MoMo",
        "zalopay" => "ZaloPay",
        "vietcombank" => "Vietcombank",
        other => other,
    }
}

/// Why a webhook delivery failed, as the dispatcher recorded it, in the
/// officer's language.
pub fn delivery_error(error: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return error.to_owned();
    }
    if let Some(status) = error.strip_prefix("the receiver answered HTTP ") {
        return format!("Hệ thống nhận trả lời lỗi HTTP {status}");
    }
    if error == "the receiver did not answer in time" {
        return "Hệ thống nhận không trả lời kịp".to_owned();
    }
    if error.starts_with("the receiver could not be reached") {
        return "Không kết nối được tới hệ thống nhận".to_owned();
    }
    "Địa chỉ nhận không còn được phép (xem cấu hình webhooks)".to_owned()
}
