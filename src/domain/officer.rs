//! Officers: the people who sign in to the finance console. Each has an
//! email, a name, a role and an agency, a password (kept as an Argon2id
//! hash) and a second factor (TOTP, RFC 6238) that approvers and admins
//! must use.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use totp_rs::{Algorithm, Secret, TOTP};

use super::{Role, ValidationError};

/// What an officer may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfficerRole {
    /// Reconciles, records cash, asks for refunds.
    Finance,
    /// A finance officer who may also approve refunds others ask for.
    Approver,
    /// Manages agencies, keys and officers.
    Admin,
}

impl OfficerRole {
    pub const ALL: [OfficerRole; 3] = [
        OfficerRole::Finance,
        OfficerRole::Approver,
        OfficerRole::Admin,
    ];

    pub fn parse(field: &'static str, text: &str) -> Result<OfficerRole, ValidationError> {
        match text {
            "finance" => Ok(OfficerRole::Finance),
            "approver" => Ok(OfficerRole::Approver),
            "admin" => Ok(OfficerRole::Admin),
            _ => Err(ValidationError::new(
                field,
                "must be finance, approver or admin",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OfficerRole::Finance => "finance",
            OfficerRole::Approver => "approver",
            OfficerRole::Admin => "admin",
        }
    }

    /// The role the officer acts with wherever keys and officers alike
    /// are checked.
    pub fn role(self) -> Role {
        match self {
            OfficerRole::Finance | OfficerRole::Approver => Role::Finance,
            OfficerRole::Admin => Role::Admin,
        }
    }

    /// Whether signing in needs the second factor: always for approvers
    /// and admins, for finance officers when `finance_too`.
    pub fn needs_second_factor(self, finance_too: bool) -> bool {
        self != OfficerRole::Finance || finance_too
    }
}

/// An officer's email, as they sign in with it: trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, text: &str) -> Result<Email, ValidationError> {
        let email = text.trim().to_lowercase();
        let well_formed = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            });
        if well_formed {
            Ok(Email(email))
        } else {
            Err(ValidationError::new(field, "must be an email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;
/// The longest: Argon2 takes any length, but a form need not.
pub const MAX_PASSWORD: usize = 128;

/// Passwords people choose most (lower-cased), which no officer may use
/// even when long enough, and which no variation by case, digits or
/// punctuation at the ends makes acceptable.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456123456",
    "111111111111",
    "000000000000",
    "123123123123",
    "qwertyuiopas",
    "qwertyuiop123",
    "qwerty123456",
    "1qaz2wsx3edc",
    "1q2w3e4r5t6y",
    "zaq12wsxcde3",
    "password1234",
    "password123456",
    "passwordpassword",
    "iloveyou1234",
    "abcdefghijkl",
    "abc123abc123",
    "aaaaaaaaaaaa",
    "letmein12345",
    "welcome12345",
    "administrator",
    "administrator1",
    "changeme1234",
    "football1234",
    "baseball1234",
    "superman1234",
    "princess1234",
    "sunshine1234",
    "trustno11234",
    "monkey123456",
    "dragon123456",
    "master123456",
    "matkhau12345",
    "matkhau123456",
    "matkhaumoi123",
    "anhyeuem1234",
    "emyeuanh1234",
    "vietnam12345",
    "vietnam123456",
    "hanoi1234567",
    "saigon123456",
    "lephi1234567",
    "lephi123456789",
    "thanhtoan123",
    "ketoan123456",
    "quantri12345",
    "admin1234567",
    "admin123456789",
];

/// Checks a new password: long enough, not one of the most common, and
/// not the officer's own email or name.
pub fn check_password(
    field: &'static str,
    password: &str,
    email: &Email,
    name: &str,
) -> Result<(), ValidationError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD {
        return Err(ValidationError::new(
            field,
            "must be at least 12 characters: a few words make a password easy to remember and hard to guess",
        ));
    }
    if length > MAX_PASSWORD {
        return Err(ValidationError::new(
            field,
            "must be at most 128 characters",
        ));
    }
    let lower = password.to_lowercase();
    let core = lower.trim_matches(|c: char| !c.is_alphanumeric());
    let distinct = {
        let mut chars: Vec<char> = lower.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        chars.len()
    };
    let local = email.as_str().split('@').next().unwrap_or_default();
    let folded_name: String = name
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let own = (local.len() >= 4 && lower.contains(local))
        || (folded_name.chars().count() >= 4 && lower.replace(' ', "").contains(&folded_name));
    if COMMON.contains(&lower.as_str()) || COMMON.contains(&core) || distinct < 4 || own {
        return Err(ValidationError::new(
            field,
            "is too easy to guess (a common password, or your own email or name): choose another",
        ));
    }
    Ok(())
}

/// A password made for an officer (by the command line, an admin's reset,
/// the demo): 20 symbols easy to read out, in groups of five (about 100
/// bits), to be changed by the officer.
pub fn made_password() -> String {
    const SYMBOLS: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    let mut rng = rand::rng();
    (0..4)
        .map(|_| {
            (0..5)
                .map(|_| SYMBOLS[rand::Rng::random_range(&mut rng, 0..SYMBOLS.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The Argon2id hash (PHC string) of `password`, with a random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    // A 16-byte salt always encodes, and Argon2's default parameters
    // always hash: neither can fail.
    SaltString::encode_b64(&salt)
        .ok()
        .and_then(|salt| {
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .ok()
                .map(|hash| hash.to_string())
        })
        .unwrap_or_default()
}

/// Whether `password` is the one `hash` was made from.
pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A second factor's secret: 20 random bytes, shown as base32 to the
/// officer's authenticator app.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

/// The seconds one code stands for.
pub const TOTP_STEP: u64 = 30;

impl TotpSecret {
    pub fn generate() -> TotpSecret {
        let mut bytes = vec![0u8; 20];
        rand::rng().fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// A stored (base32) secret.
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        Secret::Encoded(text.to_owned())
            .to_bytes()
            .ok()
            .filter(|bytes| bytes.len() >= 16)
            .map(TotpSecret)
    }

    pub fn base32(&self) -> String {
        match Secret::Raw(self.0.clone()).to_encoded() {
            Secret::Encoded(text) => text,
            Secret::Raw(_) => String::new(),
        }
    }

    /// The `otpauth://` URL an authenticator app reads from the QR code.
    pub fn otpauth_url(&self, issuer: &str, account: &str) -> String {
        let label = form_urlencoded::byte_serialize(format!("{issuer}:{account}").as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let issuer = form_urlencoded::byte_serialize(issuer.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        format!(
            "otpauth://totp/{label}?secret={}&issuer={issuer}&algorithm=SHA1&digits=6&period={TOTP_STEP}",
            self.base32()
        )
    }

    fn totp(&self) -> Option<TOTP> {
        TOTP::new(Algorithm::SHA1, 6, 1, TOTP_STEP, self.0.clone()).ok()
    }

    /// The code of time step `step`.
    pub fn code_at_step(&self, step: u64) -> String {
        self.totp()
            .map(|totp| totp.generate(step * TOTP_STEP))
            .unwrap_or_default()
    }

    /// The time step of `code` if it is the code of the step of `unix_secs`
    /// or of the one before or after (clocks drift), and later than
    /// `last_step`: a code is used once.
    pub fn accepts(&self, code: &str, unix_secs: u64, last_step: Option<u64>) -> Option<u64> {
        let code = code.trim().replace(' ', "");
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_secs / TOTP_STEP;
        [now.saturating_sub(1), now, now + 1]
            .into_iter()
            .filter(|&step| last_step.is_none_or(|last| step > last))
            .find(|&step| same_code(&self.code_at_step(step), &code))
    }
}

/// Compares two codes in time that does not depend on where they differ.
fn same_code(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("email", "  Hoa.Nguyen@STC.Example.gov.vn ").unwrap()
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(email().as_str(), "hoa.nguyen@stc.example.gov.vn");
        for bad in [
            "",
            "hoa",
            "hoa@",
            "@x.vn",
            "hoa@vn",
            "hoa @x.vn",
            "hoa@x@y.vn",
            "hoa@.vn",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_password_is_long_uncommon_and_not_ones_own() {
        let name = "Nguyễn Thị Hoa";
        assert!(check_password("password", "mây trắng bay qua núi", &email(), name).is_ok());
        for bad in [
            "short",
            "Password1234",
            "!!password1234!!",
            "aaaaaaaaaaaaaaaa",
            "ababababababab",
            "hoa.nguyen-2026!",
            "NguyễnThịHoa2026",
            &"x".repeat(129),
        ] {
            assert!(
                check_password("password", bad, &email(), name).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_password_is_kept_as_an_argon2id_hash() {
        let hash = hash_password("mây trắng bay qua núi");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches(&hash, "mây trắng bay qua núi"));
        assert!(!password_matches(&hash, "mây trắng bay qua nui"));
        assert!(!password_matches("not a hash", "mây trắng bay qua núi"));
        assert_ne!(hash, hash_password("mây trắng bay qua núi"), "salted");
    }

    #[test]
    fn codes_follow_rfc_6238_and_are_used_once() {
        // RFC 6238's SHA-1 test secret and vectors (the last six digits).
        let secret = TotpSecret(b"12345678901234567890".to_vec());
        assert_eq!(secret.code_at_step(59 / 30), "287082");
        assert_eq!(secret.code_at_step(1111111109 / 30), "081804");
        assert_eq!(secret.code_at_step(2000000000 / 30), "279037");
        let now = 1111111109;
        let step = now / 30;
        assert_eq!(secret.accepts("081804", now, None), Some(step));
        assert_eq!(secret.accepts("081 804", now, None), Some(step));
        // Used once: not again, nor a code of an earlier step.
        assert_eq!(secret.accepts("081804", now, Some(step)), None);
        assert_eq!(
            secret.accepts(&secret.code_at_step(step - 1), now, Some(step)),
            None
        );
        // The step before and after are accepted, no further.
        assert!(
            secret
                .accepts(&secret.code_at_step(step + 1), now, None)
                .is_some()
        );
        assert!(
            secret
                .accepts(&secret.code_at_step(step + 2), now, None)
                .is_none()
        );
        assert!(
            secret
                .accepts(&secret.code_at_step(step - 2), now, None)
                .is_none()
        );
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(secret.accepts(bad, now, None), None, "{bad:?}");
        }
        let round = TotpSecret::from_base32(&secret.base32()).unwrap();
        assert_eq!(round, secret);
        assert!(secret
            .otpauth_url("lephi", "hoa@stc.vn")
            .starts_with("otpauth://totp/lephi%3Ahoa%40stc.vn?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=lephi"));
    }
}
