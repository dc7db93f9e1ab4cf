//! Bounded, printable text for names, descriptions and codes from outside.

use super::ValidationError;

/// Checks that `value`, trimmed, is non-empty, at most `max_chars` characters
/// and free of control characters; returns the trimmed text.
pub fn bounded(field: &str, value: &str, max_chars: usize) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks an identifier: 1 to `max_len` ASCII letters, digits and `.`, `-`, `_`, `/`.
pub fn code(field: &str, value: &str, max_len: usize) -> Result<String, ValidationError> {
    let valid = !value.is_empty()
        && value.len() <= max_len
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be 1 to {max_len} ASCII letters, digits, '.', '-', '_' or '/'"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_is_trimmed_and_limited() {
        assert_eq!(bounded("f", "  Nguyễn Văn A ", 20).unwrap(), "Nguyễn Văn A");
        assert!(bounded("f", "   ", 20).is_err());
        assert!(bounded("f", "abc\u{0}", 20).is_err());
        assert!(bounded("f", &"ệ".repeat(21), 20).is_err());
        assert!(bounded("f", &"ệ".repeat(20), 20).is_ok());
    }

    #[test]
    fn codes_are_ascii_identifiers() {
        assert!(code("f", "1.004227", 50).is_ok());
        assert!(code("f", "000.00.01.H26", 50).is_ok());
        assert!(code("f", "", 50).is_err());
        assert!(code("f", "a b", 50).is_err());
        assert!(code("f", "hồ", 50).is_err());
        assert!(code("f", &"a".repeat(51), 50).is_err());
    }
}
