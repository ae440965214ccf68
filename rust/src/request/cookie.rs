//! Cookie header parsing (RFC 6265 §5.4 as browsers send it) and a Set-Cookie builder that refuses
//! anything that could split or inject a header.

use std::borrow::Cow;

/// How many `name=value` pairs are looked at before giving up; bounds the work on hostile headers.
pub const MAX_PAIRS: usize = 4096;

fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Every `name=value` pair of a Cookie header, in order: pairs without `=` are skipped, spaces
/// and tabs around names and values are trimmed, and one pair of surrounding double quotes is
/// removed from a value. At most [`MAX_PAIRS`] pairs are looked at. The one reading of a Cookie
/// header: `cookie_value` and the request's cookie jar both use it, so they cannot disagree.
pub fn pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').take(MAX_PAIRS).filter_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        let v = trim_ows(v);
        let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            &v[1..v.len() - 1]
        } else {
            v
        };
        Some((trim_ows(n), v))
    })
}

/// The value of the first cookie called `name`, with one pair of surrounding double quotes removed.
/// Pairs without `=` are ignored; names compare case-sensitively; nothing here can fail.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
    if name.is_empty() {
        return None;
    }
    pairs(header)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| Cow::Borrowed(v))
}

/// RFC 7230 `token`: what a cookie name may be.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// RFC 6265 `cookie-octet`: no CTLs, whitespace, DQUOTE, comma, semicolon or backslash.
pub fn is_cookie_value(s: &str) -> bool {
    let inner = if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    };
    inner
        .bytes()
        .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

fn is_attr_value(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl SameSite {
    pub fn parse(s: &str) -> Option<SameSite> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Some(SameSite::Strict),
            "lax" => Some(SameSite::Lax),
            "none" => Some(SameSite::None),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// The attributes of a Set-Cookie header.
#[derive(Debug, Clone)]
pub struct CookieAttrs<'a> {
    pub max_age: Option<i64>,
    pub path: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: Option<SameSite>,
}

impl Default for CookieAttrs<'_> {
    fn default() -> Self {
        CookieAttrs {
            max_age: None,
            path: Some("/"),
            domain: None,
            secure: true,
            http_only: false,
            same_site: Some(SameSite::Lax),
        }
    }
}

/// Builds a Set-Cookie header value, or says which part would be unsafe to send.
pub fn set_cookie(name: &str, value: &str, attrs: &CookieAttrs) -> Result<String, String> {
    if !is_token(name) {
        return Err(
            "cookie name must be an RFC 7230 token (letters, digits and !#$%&'*+-.^_`|~)".into(),
        );
    }
    if !is_cookie_value(value) {
        return Err("cookie value may not contain control characters, spaces, quotes, commas, semicolons or backslashes".into());
    }
    let mut out = String::with_capacity(name.len() + value.len() + 64);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
    if let Some(path) = attrs.path {
        if !path.starts_with('/') || !is_attr_value(path) {
            return Err(
                "cookie path must start with / and contain no control characters or semicolons"
                    .into(),
            );
        }
        out.push_str("; Path=");
        out.push_str(path);
    }
    if let Some(domain) = attrs.domain {
        if domain.is_empty()
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(
                "cookie domain must be a host name (letters, digits, dots and dashes)".into(),
            );
        }
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    if let Some(age) = attrs.max_age {
        out.push_str("; Max-Age=");
        out.push_str(&age.max(0).to_string());
        if age <= 0 {
            out.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        }
    }
    if let Some(ss) = attrs.same_site {
        if ss == SameSite::None && !attrs.secure {
            return Err("SameSite=None requires Secure".into());
        }
        out.push_str("; SameSite=");
        out.push_str(ss.as_str());
    }
    if attrs.secure {
        out.push_str("; Secure");
    }
    if attrs.http_only {
        out.push_str("; HttpOnly");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_of_duplicates_and_unquotes() {
        assert_eq!(cookie_value("a=1; b=2; a=3", "a").as_deref(), Some("1"));
        assert_eq!(cookie_value("a=1;b=\"x y\"", "b").as_deref(), Some("x y"));
        assert_eq!(
            cookie_value(" \ttok = abc ; x", "tok").as_deref(),
            Some("abc")
        );
        assert_eq!(cookie_value("A=1", "a"), None);
        assert_eq!(
            cookie_value("junk; ;;==; a==b=", "a").as_deref(),
            Some("=b=")
        );
        assert_eq!(cookie_value("", "a"), None);
        assert_eq!(cookie_value("a=", "a").as_deref(), Some(""));
        assert_eq!(cookie_value("a=\"", "a").as_deref(), Some("\""));
        assert_eq!(cookie_value("a=1", ""), None);
    }

    #[test]
    fn hostile_headers_are_bounded() {
        let many = "x=1;".repeat(100_000) + "a=2";
        assert_eq!(
            cookie_value(&many, "a"),
            None,
            "pairs past the limit are not read"
        );
        let long = format!("a={}", "v".repeat(1 << 20));
        assert_eq!(cookie_value(&long, "a").map(|v| v.len()), Some(1 << 20));
    }

    #[test]
    fn builds_and_refuses() {
        let attrs = CookieAttrs {
            max_age: Some(86400),
            ..Default::default()
        };
        assert_eq!(
            set_cookie("ab-group", "control", &attrs).unwrap(),
            "ab-group=control; Path=/; Max-Age=86400; SameSite=Lax; Secure"
        );
        let clear = CookieAttrs {
            max_age: Some(0),
            ..Default::default()
        };
        assert!(set_cookie("t", "", &clear)
            .unwrap()
            .contains("Expires=Thu, 01 Jan 1970"));
        assert!(set_cookie("a b", "v", &attrs).is_err());
        assert!(set_cookie("a", "v\r\nSet-Cookie: x=1", &attrs).is_err());
        assert!(set_cookie("a", "v;Domain=evil", &attrs).is_err());
        assert!(set_cookie(
            "a",
            "v",
            &CookieAttrs {
                path: Some("/x;Domain=e"),
                ..Default::default()
            }
        )
        .is_err());
        assert!(set_cookie(
            "a",
            "v",
            &CookieAttrs {
                domain: Some("e.com\r\n"),
                ..Default::default()
            }
        )
        .is_err());
        assert!(set_cookie(
            "a",
            "v",
            &CookieAttrs {
                secure: false,
                same_site: Some(SameSite::None),
                ..Default::default()
            }
        )
        .is_err());
    }
}
