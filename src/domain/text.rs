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
    if trimmed.chars().any(is_invisible) {
        return Err(ValidationError::new(
            field,
            "must not contain invisible characters (direction marks and overrides, zero-width spaces and joiners)",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Characters that change how text around them shows without showing
/// themselves: bidirectional marks, embeddings, overrides and isolates,
/// and zero-width spaces, joiners and the byte order mark. Vietnamese
/// needs none of them, and they let a name read as another in the
/// console, on receipts and in spreadsheets.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
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
        for spoof in [
            "Nguy\u{202E}ễn",
            "A\u{200B}B",
            "x\u{2066}y",
            "\u{FEFF}Hoa",
            "a\u{200D}b",
        ] {
            assert!(bounded("f", spoof, 20).is_err(), "{spoof:?}");
        }
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
