//! Request path normalization, done once before matching so that every spelling of a path
//! (`//dashboard`, `/./dashboard`, `/x/../dashboard`, `/%64ashboard`) is matched as the one the
//! origin will serve, and the origin receives exactly the path that was matched.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// Why a path is refused (the gateway answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotOriginForm,
    BadPercentEncoding,
    EncodedSlash,
    Backslash,
    ControlCharacter,
    Semicolon,
    TooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotOriginForm => "the path must start with /",
            PathError::BadPercentEncoding => "the path has an invalid percent-encoding",
            PathError::EncodedSlash => "the path has an encoded / or \\",
            PathError::Backslash => "the path has a backslash",
            PathError::ControlCharacter => {
                "the path has a control character (raw or percent-encoded)"
            }
            PathError::Semicolon => {
                "the path has a ; (path parameters are refused: origins disagree about them)"
            }
            PathError::TooLong => "the path is too long",
        })
    }
}

impl PathError {
    pub fn kind(self) -> ErrorKind {
        match self {
            PathError::NotOriginForm => ErrorKind::NotAbsolute,
            PathError::BadPercentEncoding => ErrorKind::BadPercentEncoding,
            PathError::EncodedSlash => ErrorKind::EncodedSlash,
            PathError::Backslash => ErrorKind::Backslash,
            PathError::ControlCharacter => ErrorKind::ControlCharacter,
            PathError::Semicolon => ErrorKind::Semicolon,
            PathError::TooLong => ErrorKind::PathTooLong,
        }
    }
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Error::new(e.kind(), e.to_string())
    }
}

pub const MAX_PATH: usize = 8192;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters kept as they are in a normalized path (RFC 3986 `pchar` minus `%` and `;`).
fn keep_raw(b: u8) -> bool {
    unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
        )
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes every byte of `text`'s UTF-8 except the unreserved characters of RFC 3986
/// (`A-Z a-z 0-9 - . _ ~`): a value that can be put into a URL component and read back exactly,
/// and that can never look like `/`, `\\`, `?` or `#` (used for the `next` of login redirects).
pub fn percent_encode_component(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// Normalizes a raw request path (the bytes of the request target before `?`).
///
/// Percent-escapes of unreserved characters are decoded, other escapes are kept with upper-case
/// hex; `//` collapses; `.` and `..` segments are resolved (never above the root); a trailing
/// slash is kept. Encoded `/` or `\\`, raw backslashes, control characters (0x00-0x1F and 0x7F,
/// raw or percent-encoded in any case of hex: an origin that decodes `%0d%0a` could be led to
/// split a header or a log line), `;` and invalid escapes are refused.
pub fn normalize(raw: &[u8]) -> Result<String, PathError> {
    if raw.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    if raw.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    // First pass: decode into canonical segment text.
    let mut segments: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    let push_segment = |segments: &mut Vec<String>, seg: &mut String| {
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(std::mem::take(seg)),
        }
        seg.clear();
    };
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'/' => push_segment(&mut segments, &mut current),
            b'%' => {
                let (h, l) = match (
                    raw.get(i + 1).copied().and_then(hex),
                    raw.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => (h, l),
                    _ => return Err(PathError::BadPercentEncoding),
                };
                let d = h << 4 | l;
                match d {
                    b'/' | b'\\' => return Err(PathError::EncodedSlash),
                    // Decoded once more by an origin, `%3B` is the `;` refused below.
                    b';' => return Err(PathError::Semicolon),
                    0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
                    _ if unreserved(d) => current.push(d as char),
                    _ => {
                        current.push('%');
                        current.push(HEX[(d >> 4) as usize] as char);
                        current.push(HEX[(d & 15) as usize] as char);
                    }
                }
                i += 2;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            _ if keep_raw(b) => current.push(b as char),
            _ => {
                // Anything else (space, quotes, non-ASCII bytes...) is percent-encoded.
                current.push('%');
                current.push(HEX[(b >> 4) as usize] as char);
                current.push(HEX[(b & 15) as usize] as char);
            }
        }
        i += 1;
    }
    let trailing = raw.ends_with(b"/") || current == "." || current == "..";
    push_segment(&mut segments, &mut current);
    let mut out = String::with_capacity(raw.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encode_component_keeps_only_unreserved() {
        use super::percent_encode_component as enc;
        assert_eq!(enc("/a b?c#d"), "%2Fa%20b%3Fc%23d");
        assert_eq!(enc("//evil.example"), "%2F%2Fevil.example");
        assert_eq!(enc("\\x"), "%5Cx");
        assert_eq!(enc("Az09-._~"), "Az09-._~");
        assert_eq!(enc("é%"), "%C3%A9%25");
    }

    use super::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalize(p.as_bytes())
    }

    #[test]
    fn canonical_forms() {
        for (raw, want) in [
            ("/", "/"),
            ("/dashboard", "/dashboard"),
            ("//dashboard", "/dashboard"),
            ("/./dashboard", "/dashboard"),
            ("/x/../dashboard", "/dashboard"),
            ("/%64ashboard", "/dashboard"),
            ("/dashboard/%2e%2e/x", "/x"),
            ("/dashboard/%2E%2E", "/"),
            ("/../../etc", "/etc"),
            ("/a/b/", "/a/b/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a%20b", "/a%20b"),
            ("/a b", "/a%20b"),
            ("/a%3fb", "/a%3Fb"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/a:b@c", "/a:b@c"),
            ("///", "/"),
        ] {
            assert_eq!(n(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn refusals() {
        for (raw, err) in [
            ("dashboard", PathError::NotOriginForm),
            ("http://h/dashboard", PathError::NotOriginForm),
            ("/dashboard%2fx", PathError::EncodedSlash),
            ("/dashboard%2Fx", PathError::EncodedSlash),
            ("/dashboard%5cx", PathError::EncodedSlash),
            ("/dashboard%00", PathError::ControlCharacter),
            ("/dash\\board", PathError::Backslash),
            ("/dashboard;x=1", PathError::Semicolon),
            ("/a%zz", PathError::BadPercentEncoding),
            ("/a%2", PathError::BadPercentEncoding),
            ("/a%", PathError::BadPercentEncoding),
            ("/a\tb", PathError::ControlCharacter),
            ("/dashboard%09", PathError::ControlCharacter),
            ("/dashboard%0a", PathError::ControlCharacter),
            ("/dashboard%0A", PathError::ControlCharacter),
            ("/dashboard%0d%0a", PathError::ControlCharacter),
            ("/dashboard%1F", PathError::ControlCharacter),
            ("/dashboard%1f", PathError::ControlCharacter),
            ("/dashboard%7f", PathError::ControlCharacter),
            ("/dashboard%7F", PathError::ControlCharacter),
            ("/a\x7fb", PathError::ControlCharacter),
            ("/a\rb", PathError::ControlCharacter),
        ] {
            assert_eq!(n(raw), Err(err), "{raw}");
        }
        assert_eq!(normalize(&[b'/'; MAX_PATH + 1]), Err(PathError::TooLong));
        // Every encoded and raw control character, in both cases of hex.
        for b in (0u8..0x20).chain([0x7f]) {
            for esc in [format!("/x%{b:02x}y"), format!("/x%{b:02X}y")] {
                assert_eq!(n(&esc), Err(PathError::ControlCharacter), "{esc}");
            }
            assert_eq!(
                normalize(&[b'/', b'x', b]),
                Err(PathError::ControlCharacter)
            );
        }
        // The neighbours are fine.
        assert_eq!(n("/x%20y").as_deref(), Ok("/x%20y"));
        assert_eq!(n("/x%7Ey").as_deref(), Ok("/x~y"));
        assert_eq!(n("/x%80y").as_deref(), Ok("/x%80y"));
    }

    #[test]
    fn idempotent() {
        for raw in ["/a/./b/../c//d/", "/%7euser/%41", "/x y/é/%2e/", "/a%25b"] {
            let once = n(raw).unwrap();
            assert_eq!(n(&once).unwrap(), once, "{raw}");
        }
    }
}
