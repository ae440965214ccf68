//! The request head as the gateway reads it: raw header bytes kept as they arrived, and the facts
//! every request needs (size, Host, framing) worked out in one pass when it is built.
//!
//! Header names are compared ASCII case-insensitively (ASGI hands them over lower-case, but a
//! caller that does not must not slip a second `Host` or a `Content-Length` past the checks).
//! Values are bytes; the Python layer sees them as latin-1 text, one character per byte, so
//! nothing outside ASCII is changed on its way to the origin.

use std::sync::OnceLock;

use super::cookie;

/// How many values `cookies(name)` returns at most: a client can send any number of same-name
/// cookies, and each one may be tried as a session token (bounded work per request).
// RFC 6265 §6.1: a browser keeps at least 50 cookies per domain, so a site that can plant cookies
// can put that many ahead of the real one; each candidate costs one verification, so it is bounded.
pub const MAX_SAME_NAME_COOKIES: usize = 50;

/// A header's place in [`Head::buf`]: name at `name.0..name.1`, value at `value.0..value.1`.
#[derive(Debug, Clone, Copy)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

/// A request head: method, target, headers and the facts derived from them.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    pub raw_path: Vec<u8>,
    /// The query with bytes outside 0x21..=0x7E percent-encoded (`%XX`, upper-case hex).
    pub query: String,
    pub client: Option<String>,
    pub scheme: String,
    /// `len(raw_path) + len(query) + Σ (len(name) + len(value) + 4)`: what the size limit sees.
    pub head_size: usize,
    pub host_count: usize,
    /// `None` when absent; `Some` only when every Content-Length is all digits and they agree.
    pub content_length: Option<u64>,
    /// False when a Content-Length is not all digits, or several disagree.
    pub content_length_valid: bool,
    /// A Transfer-Encoding header is present (whatever it says).
    pub chunked: bool,
    host: Option<usize>,
    host_name: Option<String>,
    /// Every header name and value, back to back: one allocation for the whole head.
    buf: Vec<u8>,
    spans: Vec<Span>,
    /// The Cookie header(s) parsed on first use, then shared by every lookup.
    cookies: OnceLock<Vec<(String, String)>>,
}

/// Bytes as latin-1 text: each byte becomes the character with that code point.
pub fn latin1(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // ASCII is valid UTF-8 as it is.
        return String::from_utf8(bytes.to_vec()).unwrap_or_default();
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The query string as the gateway forwards it: bytes a client must percent-encode (controls,
/// space, DEL, anything outside ASCII) become `%XX`; everything else is kept exactly.
pub fn query_text(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        if (0x21..=0x7e).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let Some(start) = start else { return &[] };
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(start);
    &v[start..=end]
}

/// The Host for routing: ASCII lower-case, without port and without one trailing dot;
/// `[::1]:8080` gives `::1`. Every spelling a browser or resolver treats as the same host must
/// compare equal here, or a host-scoped route (with its auth) can be skipped by writing the host
/// differently. `None` when the value is not a host (RFC 9110 §7.2, RFC 3986 §3.2.2): a name of
/// letters, digits, `-`, `_`, `~` and non-empty dot-separated labels, or a bracketed IPv6 literal, then
/// an optional `:port` of digits. Anything else (`x@host`, `host,other`, `host/`, `a..b`, `h:1:2`)
/// could be read as another host by the origin, so the normalize stage refuses it.
pub fn host_name(raw: &[u8]) -> Option<String> {
    let v = trim_ows(raw);
    let (name, port): (&[u8], &[u8]) = if let Some(rest) = v.strip_prefix(b"[") {
        let end = memchr::memchr(b']', rest)?;
        let (addr, after) = (&rest[..end], &rest[end + 1..]);
        if addr.is_empty()
            || !addr
                .iter()
                .all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.')
        {
            return None;
        }
        match after {
            [] => (addr, &[][..]),
            [b':', port @ ..] => (addr, port),
            _ => return None,
        }
    } else {
        let (name, port) = match memchr::memchr(b':', v) {
            Some(colon) => (&v[..colon], &v[colon + 1..]),
            None => (v, &[][..]),
        };
        let labels = name.strip_suffix(b".").unwrap_or(name);
        let label_byte =
            |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~' | b'.');
        if labels.is_empty()
            || labels.split(|&b| b == b'.').any(<[u8]>::is_empty)
            || !labels.iter().all(label_byte)
        {
            return None;
        }
        (labels, port)
    };
    if port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(latin1(&name.to_ascii_lowercase()))
}

/// Whether header `name` is `dropped` for an origin: equal without case, and with `_` read as `-`,
/// because CGI, WSGI, PHP and Rack origins see `X_User_Id` and `X-User-Id` as one variable
/// (`HTTP_X_USER_ID`), so a client's underscore spelling of a header the gateway owns must go too.
pub fn same_field_name(name: &[u8], dropped: &[u8]) -> bool {
    name.len() == dropped.len()
        && name
            .iter()
            .zip(dropped)
            .all(|(&a, &b)| a.eq_ignore_ascii_case(&b) || (a == b'_' && b == b'-'))
}

/// The value of one Content-Length field: all digits (after the field's surrounding spaces),
/// and small enough to be a size. Anything else (signs, lists such as `5, 5`, empty) is invalid:
/// the gateway and the origin must never frame a body differently.
fn content_length_value(v: &[u8]) -> Option<u64> {
    let v = trim_ows(v);
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

impl Head {
    /// Builds the head in one pass over `headers`.
    pub fn new<'a>(
        method: String,
        raw_path: &[u8],
        query_string: &[u8],
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        client: Option<String>,
        scheme: String,
    ) -> Head {
        let query = query_text(query_string);
        let headers = headers.into_iter();
        let mut buf = Vec::with_capacity(512);
        let mut spans = Vec::with_capacity(headers.size_hint().0);
        let mut head_size = raw_path.len() + query.len();
        let (mut host_count, mut host) = (0, None);
        let (mut content_length, mut content_length_valid, mut seen_length) = (None, true, false);
        let mut chunked = false;
        for (name, value) in headers {
            head_size += name.len() + value.len() + 4;
            let at = buf.len() as u32;
            buf.extend_from_slice(name);
            let mid = buf.len() as u32;
            buf.extend_from_slice(value);
            spans.push(Span {
                name: (at, mid),
                value: (mid, buf.len() as u32),
            });
            if name.eq_ignore_ascii_case(b"host") {
                host_count += 1;
                if host.is_none() {
                    host = Some(spans.len() - 1);
                }
            } else if name.eq_ignore_ascii_case(b"content-length") {
                match content_length_value(value) {
                    Some(n) if !seen_length || content_length == Some(n) => {
                        content_length = Some(n)
                    }
                    _ => content_length_valid = false,
                }
                seen_length = true;
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = true;
            }
        }
        if !content_length_valid {
            content_length = None;
        }
        let mut head = Head {
            method,
            raw_path: raw_path.to_vec(),
            query,
            client,
            scheme,
            head_size,
            host_count,
            content_length,
            content_length_valid,
            chunked,
            host,
            host_name: None,
            buf,
            spans,
            cookies: OnceLock::new(),
        };
        head.host_name = head.host_raw().and_then(host_name);
        head
    }

    fn name_at(&self, s: &Span) -> &[u8] {
        &self.buf[s.name.0 as usize..s.name.1 as usize]
    }

    fn value_at(&self, s: &Span) -> &[u8] {
        &self.buf[s.value.0 as usize..s.value.1 as usize]
    }

    /// Every `(name, value)` pair, in the order received, as raw bytes.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans
            .iter()
            .map(|s| (self.name_at(s), self.value_at(s)))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The first Host value as sent.
    pub fn host_raw(&self) -> Option<&[u8]> {
        self.host.map(|i| self.value_at(&self.spans[i]))
    }

    /// See [`host_name`].
    pub fn host_name(&self) -> Option<&str> {
        self.host_name.as_deref()
    }

    /// The values of header `name`, in order.
    pub fn values<'h>(&'h self, name: &'h [u8]) -> impl Iterator<Item = &'h [u8]> + 'h {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of header `name`.
    pub fn value(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every cookie as `(name, value)` in the order sent; several Cookie headers are read as one,
    /// joined with "; " (RFC 9113 §8.2.3). Parsed once, on first use.
    pub fn cookie_pairs(&self) -> &[(String, String)] {
        self.cookies.get_or_init(|| {
            let mut out = Vec::new();
            for v in self.values(b"cookie") {
                let text = latin1(v);
                let room = cookie::MAX_PAIRS.saturating_sub(out.len());
                out.extend(
                    cookie::pairs(&text)
                        .take(room)
                        .map(|(n, v)| (n.to_owned(), v.to_owned())),
                );
            }
            out
        })
    }

    /// The first cookie called `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        if name.is_empty() {
            return None;
        }
        self.cookie_pairs()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every cookie called `name`, in order, at most [`MAX_SAME_NAME_COOKIES`].
    pub fn cookies(&self, name: &str) -> Vec<&str> {
        if name.is_empty() {
            return Vec::new();
        }
        self.cookie_pairs()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .take(MAX_SAME_NAME_COOKIES)
            .collect()
    }

    /// Header names listed in any Connection header (lower-case): hop-by-hop for this request.
    pub fn connection_tokens(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for v in self.values(b"connection") {
            for t in v.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if !t.is_empty() {
                    out.push(t.to_ascii_lowercase());
                }
            }
        }
        out
    }

    /// Indices of the headers to forward: all but those named in `drop` (lower-case names) or in
    /// a Connection header.
    pub fn forward_indices(&self, drop: &[&[u8]]) -> Vec<usize> {
        // A client may not make Host hop-by-hop: the origin must see the Host the gateway routed on.
        let listed: Vec<Vec<u8>> = self
            .connection_tokens()
            .into_iter()
            .filter(|t| t != b"host")
            .collect();
        self.spans
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let n = self.name_at(s);
                !drop.iter().any(|d| same_field_name(n, d))
                    && !listed.iter().any(|d| n.eq_ignore_ascii_case(d))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The header at `i` (as counted by [`Head::headers`]).
    pub fn header_at(&self, i: usize) -> (&[u8], &[u8]) {
        let s = &self.spans[i];
        (self.name_at(s), self.value_at(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &[u8])]) -> Head {
        Head::new(
            "GET".into(),
            b"/a",
            b"q=1",
            headers.iter().map(|(n, v)| (n.as_bytes(), *v)),
            Some("127.0.0.1".into()),
            "http".into(),
        )
    }

    #[test]
    fn host_forms() {
        for (raw, want) in [
            ("admin.example.com", Some("admin.example.com")),
            ("admin.example.com:8080", Some("admin.example.com")),
            ("admin.example.com.", Some("admin.example.com")),
            ("ADMIN.example.com:80", Some("admin.example.com")),
            ("Admin.Example.Com.:443", Some("admin.example.com")),
            ("[::1]:8080", Some("::1")),
            ("[::1]", Some("::1")),
            ("[FE80::1]", Some("fe80::1")),
            ("127.0.0.1:9", Some("127.0.0.1")),
            (" h ", Some("h")),
            ("", None),
            (":80", None),
            (".", None),
        ] {
            assert_eq!(host_name(raw.as_bytes()).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn one_pass_facts() {
        let h = head(&[
            ("host", b"A.example:1"),
            ("content-length", b"12"),
            ("content-length", b"12"),
            ("x", b"\xe9"),
        ]);
        assert_eq!(h.host_count, 1);
        assert_eq!(h.host_name(), Some("a.example"));
        assert_eq!(h.content_length, Some(12));
        assert!(h.content_length_valid);
        assert!(!h.chunked);
        assert_eq!(
            h.head_size,
            2 + 3 + (4 + 11 + 4) + 2 * (14 + 2 + 4) + (1 + 1 + 4)
        );
        assert_eq!(h.value(b"X"), Some(&b"\xe9"[..]));
    }

    #[test]
    fn content_length_forms() {
        for bad in [
            &[&b"1"[..], b"2"][..],
            &[b"-1"],
            &[b"+1"],
            &[b"1, 1"],
            &[b""],
            &[b"0x10"],
            &[b"99999999999999999999"],
        ] {
            let hs: Vec<(&str, &[u8])> = bad.iter().map(|v| ("content-length", *v)).collect();
            let h = head(&hs);
            assert!(!h.content_length_valid, "{bad:?}");
            assert_eq!(h.content_length, None);
        }
        let h = head(&[]);
        assert!(h.content_length_valid);
        assert_eq!(h.content_length, None);
        let h = head(&[("Content-Length", b" 0 ")]);
        assert_eq!(h.content_length, Some(0));
        assert!(head(&[("transfer-encoding", b"chunked")]).chunked);
    }

    #[test]
    fn cookies_across_headers_are_parsed_once() {
        let h = head(&[
            ("cookie", b"a=1; t=planted"),
            ("x", b"y"),
            ("cookie", b"t=real; b=\"q\""),
        ]);
        assert_eq!(h.cookie("t"), Some("planted"));
        assert_eq!(h.cookies("t"), ["planted", "real"]);
        assert_eq!(h.cookie("b"), Some("q"));
        assert_eq!(h.cookie("zz"), None);
        let many = (0..MAX_SAME_NAME_COOKIES + 12)
            .map(|i| format!("t={i}"))
            .collect::<Vec<_>>()
            .join("; ");
        let h = head(&[("cookie", many.as_bytes())]);
        assert_eq!(h.cookies("t").len(), MAX_SAME_NAME_COOKIES);
    }

    #[test]
    fn host_names_that_could_be_read_as_another_host_are_none() {
        for ok in [
            "a.example.com",
            "A.Example.com.:8080",
            "[::1]:80",
            "x_y.local",
            "h:",
        ] {
            assert!(host_name(ok.as_bytes()).is_some(), "{ok}");
        }
        assert_eq!(
            host_name(b"ADMIN.example.com.:80").as_deref(),
            Some("admin.example.com")
        );
        assert_eq!(host_name(b"[::1]:8080").as_deref(), Some("::1"));
        for bad in [
            "x@a.com",
            "a.com..",
            "a.com,b.com",
            "a.com/",
            "a.com:80:80",
            "[::1]x",
            "[zz]",
            "",
            ".",
            "a..b",
            "a.com:123456",
        ] {
            assert_eq!(host_name(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn an_underscore_spelling_of_a_dropped_name_is_dropped_and_host_stays() {
        let h = head(&[
            ("host", b"a"),
            ("x_user_id", b"spoof"),
            ("X-User_Id", b"spoof"),
            ("connection", b"host, x-keep"),
            ("x-keep", b"1"),
            ("x-other", b"2"),
        ]);
        let kept: Vec<&[u8]> = h
            .forward_indices(&[b"x-user-id", b"connection"])
            .into_iter()
            .map(|i| h.header_at(i).0)
            .collect();
        assert_eq!(kept, [&b"host"[..], b"x-other"]);
    }

    #[test]
    fn forward_drops_listed_and_connection_named() {
        let h = head(&[
            ("host", b"h"),
            ("Connection", b"keep-alive, X-Secret ,"),
            ("x-secret", b"1"),
            ("keep-alive", b"5"),
            ("x-ok", b"\xff\x00"),
        ]);
        let kept: Vec<_> = h
            .forward_indices(&[b"connection", b"host"])
            .into_iter()
            .map(|i| h.header_at(i))
            .collect();
        assert_eq!(kept, vec![(&b"x-ok"[..], &b"\xff\x00"[..])]);
    }

    #[test]
    fn query_is_percent_encoded_outside_visible_ascii() {
        assert_eq!(query_text(b"a=1&b=%20"), "a=1&b=%20");
        assert_eq!(query_text(b"q=caf\xc3\xa9 x\x7f"), "q=caf%C3%A9%20x%7F");
    }
}
