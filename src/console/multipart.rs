//! Reads a `multipart/form-data` body, as a browser sends a form with a
//! file: enough for the console's upload forms, whose bodies are read
//! whole within `reconciliation.max_file_bytes` first. Whatever the
//! bytes, it answers `None` or the parts, never panics, and reads each
//! byte a bounded number of times.

use std::collections::HashMap;

/// One field of the form: its name, the file's name if it is a file, and
/// its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// The boundary a `Content-Type: multipart/form-data; boundary=...` names.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let essence = params.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .filter_map(|p| p.trim().split_once('='))
        .find(|(key, _)| key.eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

/// Where `needle` first stands in `haystack` from `from` on, in time
/// linear in the haystack whatever boundary the client chose.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(haystack.get(from..)?, needle).map(|i| i + from)
}

/// The parts of `body`; `None` when it is not a well-formed multipart body.
pub fn parse(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = body.get(at..)?;
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        if !rest.starts_with(b"\r\n") {
            return None;
        }
        let headers_start = at + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let headers = std::str::from_utf8(body.get(headers_start..headers_end)?).ok()?;
        let data_start = headers_end + 4;
        let data_end = find(body, next_delimiter.as_bytes(), data_start)?;
        let (name, filename) = disposition(headers)?;
        parts.push(Part {
            name,
            filename,
            data: body.get(data_start..data_end)?.to_vec(),
        });
        at = data_end + next_delimiter.len();
    }
}

/// The field name and file name of a part's `Content-Disposition`.
fn disposition(headers: &str) -> Option<(String, Option<String>)> {
    let line = headers.split("\r\n").find(|line| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let (_, value) = line.split_once(':')?;
    let params: HashMap<String, String> = value
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            )
        })
        .collect();
    Some((params.get("name")?.clone(), params.get("filename").cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_form_with_a_file_is_read() {
        let content_type = "multipart/form-data; boundary=----WebKitFormBoundaryX";
        let b = boundary(content_type).unwrap();
        let body = "------WebKitFormBoundaryX\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
                    ------WebKitFormBoundaryX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n\r\n\
                    ------WebKitFormBoundaryX--\r\n";
        let parts = parse(body.as_bytes(), &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("s.csv"));
        assert_eq!(parts[1].data, b"a,b\r\n1,2\r\n");
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_read_or_refused_without_a_panic(
            body in proptest::collection::vec(
                proptest::sample::select(b"-X\r\n:;=\"ab\xff".to_vec()), 0..300),
            boundary in "[-X]{1,4}",
        ) {
            if let Some(parts) = parse(&body, &boundary) {
                let data: usize = parts.iter().map(|p| p.data.len()).sum();
                proptest::prop_assert!(data <= body.len());
            }
        }
    }

    #[test]
    fn a_boundary_chosen_to_be_slow_to_find_is_not() {
        // Dashes only: every position starts a near match of the boundary.
        let boundary = format!("{}X", "-".repeat(69));
        let body = vec![b'-'; 4 * 1024 * 1024];
        assert_eq!(parse(&body, &boundary), None);
    }

    #[test]
    fn duplicate_fields_and_odd_headers_are_read() {
        let body = "--X\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
                    --X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n--X\r\n\
                    Content-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\n\r\n--X--";
        let parts = parse(body.as_bytes(), "X").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[0].name.as_str(), &parts[0].data[..]),
            ("a", &b"1"[..])
        );
        assert_eq!(parts[1].data, b"");
        assert_eq!(parts[2].filename.as_deref(), Some(""));
        // Headers that are not UTF-8 refuse the body.
        assert_eq!(parse(b"--X\r\nname=\xff\r\n\r\nx\r\n--X--", "X"), None);
    }

    #[test]
    fn bad_bodies_are_refused_not_panicked_on() {
        assert_eq!(boundary("text/csv"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        for body in [
            "",
            "--X",
            "--X\r\n",
            "--X\r\nContent-Disposition: form-data\r\n\r\nx\r\n--X--",
            "--Xjunk",
        ] {
            assert_eq!(
                parse(body.as_bytes(), "X").unwrap_or_default().len(),
                0,
                "{body:?}"
            );
        }
    }
}
