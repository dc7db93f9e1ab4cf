//! Agencies (cơ quan) collect fees. They form a tree: a province above its
//! districts, a district above its communes.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Timestamp, ValidationError, text};

/// An agency's code, e.g. `000.00.01.H26`: ASCII letters, digits, `.` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AgencyCode(String);

impl AgencyCode {
    pub const MAX_LEN: usize = 64;

    pub fn parse(field: &str, value: &str) -> Result<AgencyCode, ValidationError> {
        let valid = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        if valid {
            Ok(AgencyCode(value.to_owned()))
        } else {
            Err(ValidationError::new(
                field,
                "must be 1 to 64 ASCII letters, digits, '.' or '-'",
            ))
        }
    }

    /// Wraps a code read back from storage, where it was stored parsed.
    pub fn from_stored(value: String) -> AgencyCode {
        AgencyCode(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgencyLevel {
    Province,
    District,
    Commune,
}

impl AgencyLevel {
    pub fn parse(field: &str, value: &str) -> Result<AgencyLevel, ValidationError> {
        match value {
            "province" => Ok(AgencyLevel::Province),
            "district" => Ok(AgencyLevel::District),
            "commune" => Ok(AgencyLevel::Commune),
            _ => Err(ValidationError::new(
                field,
                "must be one of province, district, commune",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgencyLevel::Province => "province",
            AgencyLevel::District => "district",
            AgencyLevel::Commune => "commune",
        }
    }

    /// Province 0, district 1, commune 2: a parent's rank is always lower.
    fn rank(self) -> u8 {
        self as u8
    }

    /// Whether an agency of this level may sit directly under `parent`.
    pub fn may_sit_under(self, parent: Option<AgencyLevel>) -> bool {
        match parent {
            None => self == AgencyLevel::Province,
            Some(parent) => parent.rank() < self.rank(),
        }
    }
}

/// An agency to create, parsed from an API body or a CSV row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgency {
    pub code: AgencyCode,
    pub name: String,
    pub level: AgencyLevel,
    pub parent_code: Option<AgencyCode>,
}

impl NewAgency {
    pub const MAX_NAME: usize = 200;

    pub fn parse(
        code: &str,
        name: &str,
        level: &str,
        parent_code: Option<&str>,
    ) -> Result<NewAgency, ValidationError> {
        let code = AgencyCode::parse("code", code)?;
        let name = text::bounded("name", name, Self::MAX_NAME)?;
        let level = AgencyLevel::parse("level", level)?;
        let parent_code = match parent_code.map(str::trim).filter(|p| !p.is_empty()) {
            Some(parent) => Some(AgencyCode::parse("parent_code", parent)?),
            None => None,
        };
        if parent_code.is_none() && level != AgencyLevel::Province {
            return Err(ValidationError::new(
                "parent_code",
                "a district or commune needs a parent agency",
            ));
        }
        if parent_code.as_ref() == Some(&code) {
            return Err(ValidationError::new(
                "parent_code",
                "an agency cannot be its own parent",
            ));
        }
        Ok(NewAgency {
            code,
            name,
            level,
            parent_code,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agency {
    pub code: AgencyCode,
    pub name: String,
    pub level: AgencyLevel,
    pub parent_code: Option<AgencyCode>,
    pub created_at: Timestamp,
    /// The codes from the root down to this agency, as `/ROOT/CHILD/`.
    #[serde(skip)]
    pub path: String,
}

impl Agency {
    /// The path of a child of `parent` (or of a root) with `code`.
    pub fn child_path(parent: Option<&Agency>, code: &AgencyCode) -> String {
        let base = parent.map_or("/", |p| p.path.as_str());
        format!("{base}{code}/")
    }
}

/// Which agencies a caller may see: all, or one agency and its descendants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Subtree { code: AgencyCode, path: String },
}

impl Scope {
    /// The path prefix that every agency in scope has.
    pub fn path_prefix(&self) -> &str {
        match self {
            Scope::All => "/",
            Scope::Subtree { path, .. } => path,
        }
    }

    pub fn contains(&self, agency: &Agency) -> bool {
        agency.path.starts_with(self.path_prefix())
    }

    pub fn agency_code(&self) -> Option<&AgencyCode> {
        match self {
            Scope::All => None,
            Scope::Subtree { code, .. } => Some(code),
        }
    }
}

/// The account an agency receives bank transfers on, as a VietQR code
/// names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankAccount {
    /// The bank's 6-digit BIN on the NAPAS network.
    pub bank_bin: String,
    pub account_number: String,
    pub account_name: String,
}

impl BankAccount {
    pub fn parse(
        bank_bin: &str,
        account_number: &str,
        account_name: &str,
    ) -> Result<BankAccount, ValidationError> {
        let bank_bin = bank_bin.trim();
        if bank_bin.len() != 6 || !bank_bin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new(
                "bank_bin",
                "must be the bank's 6-digit BIN",
            ));
        }
        let account_number = account_number.trim();
        if account_number.is_empty()
            || account_number.len() > 19
            || !account_number.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ValidationError::new(
                "account_number",
                "must be 1 to 19 letters and digits",
            ));
        }
        let account_name = text::bounded("account_name", account_name, 100)?;
        Ok(BankAccount {
            bank_bin: bank_bin.to_owned(),
            account_number: account_number.to_owned(),
            account_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_nest_downwards() {
        use AgencyLevel::*;
        assert!(Province.may_sit_under(None));
        assert!(!District.may_sit_under(None));
        assert!(District.may_sit_under(Some(Province)));
        assert!(Commune.may_sit_under(Some(District)));
        assert!(Commune.may_sit_under(Some(Province)));
        assert!(!Province.may_sit_under(Some(Province)));
        assert!(!District.may_sit_under(Some(Commune)));
        assert!(!District.may_sit_under(Some(District)));
    }

    #[test]
    fn bank_accounts_name_a_bin_and_an_account() {
        let account = BankAccount::parse(" 970436 ", "0011001234567", "SO TAI CHINH").unwrap();
        assert_eq!(account.bank_bin, "970436");
        assert!(BankAccount::parse("97043", "1", "X").is_err());
        assert!(BankAccount::parse("970436", "", "X").is_err());
        assert!(BankAccount::parse("970436", "12345678901234567890", "X").is_err());
        assert!(BankAccount::parse("970436", "12-34", "X").is_err());
        assert!(BankAccount::parse("970436", "1234", " ").is_err());
    }

    #[test]
    fn new_agency_parsing() {
        let a = NewAgency::parse("H26", " Tỉnh Hưng Yên ", "province", Some("")).unwrap();
        assert_eq!(a.name, "Tỉnh Hưng Yên");
        assert_eq!(a.parent_code, None);
        assert!(NewAgency::parse("H26.01", "Huyện", "district", None).is_err());
        assert!(NewAgency::parse("H 26", "x", "province", None).is_err());
        assert!(NewAgency::parse("H26", "x", "ward", None).is_err());
        assert!(NewAgency::parse("H26", "x", "district", Some("H26")).is_err());
    }

    #[test]
    fn scope_is_a_path_prefix() {
        let agency = |path: &str| Agency {
            code: AgencyCode::from_stored("X".into()),
            name: "x".into(),
            level: AgencyLevel::Commune,
            parent_code: None,
            created_at: Timestamp::now(),
            path: path.into(),
        };
        let scope = Scope::Subtree {
            code: AgencyCode::from_stored("D1".into()),
            path: "/P/D1/".into(),
        };
        assert!(scope.contains(&agency("/P/D1/")));
        assert!(scope.contains(&agency("/P/D1/C1/")));
        assert!(!scope.contains(&agency("/P/D10/")));
        assert!(!scope.contains(&agency("/P/")));
        assert!(Scope::All.contains(&agency("/P/")));
    }
}

/// A row of an agency list that cannot be taken, with its line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct AgencyListError {
    pub line: usize,
    pub message: String,
}

/// Parses an agency list: CSV with the header `code,name,level,parent_code`
/// (an optional UTF-8 byte order mark is skipped). Rows come back with
/// their line numbers; the first bad row refuses the list.
pub fn parse_agency_list(bytes: &[u8]) -> Result<Vec<(usize, NewAgency)>, AgencyListError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header_error = |message: String| AgencyListError { line: 1, message };
    let headers = reader
        .headers()
        .map_err(|e| header_error(e.to_string()))?
        .clone();
    let expected = ["code", "name", "level", "parent_code"];
    if headers.iter().collect::<Vec<_>>() != expected {
        return Err(header_error(format!(
            "the header must be {}",
            expected.join(",")
        )));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| AgencyListError {
            line: e.position().map_or(0, |p| p.line() as usize),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let field = |i: usize| record.get(i).unwrap_or_default();
        let parent = Some(field(3)).filter(|p| !p.is_empty());
        let agency = NewAgency::parse(field(0), field(1), field(2), parent).map_err(|e| {
            AgencyListError {
                line,
                message: e.to_string(),
            }
        })?;
        rows.push((line, agency));
    }
    Ok(rows)
}

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn parses_a_list_with_bom_and_line_numbers() {
        let csv = "\u{feff}code,name,level,parent_code\nH26,Tỉnh Hưng Yên,province,\nH26.01,\"Huyện Văn Lâm\",district,H26\n";
        let rows = parse_agency_list(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[1].0, 3);
        assert_eq!(rows[1].1.parent_code.as_ref().unwrap().as_str(), "H26");
    }

    #[test]
    fn a_bad_row_names_its_line() {
        let csv = "code,name,level,parent_code\nH26,Tỉnh,province,\nH26.01,Huyện,ward,H26\n";
        let err = parse_agency_list(csv.as_bytes()).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("level"), "{}", err.message);
        let err = parse_agency_list(b"id,name\n1,x\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse_agency_list(b"code,name,level,parent_code\nH26,x\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
