//! Accept-Language negotiation (RFC 9110 §12.5.4 with RFC 4647 lookup fallback).

/// Entries past this many are ignored: bounds the work on hostile headers.
pub const MAX_ENTRIES: usize = 64;

/// Parses a q-value: `0`, `1`, or `0.` / `1.` with up to three decimals (RFC 9110 §12.4.2).
fn parse_q(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    let whole = match b[0] {
        b'0' => 0u16,
        b'1' => 1,
        _ => return None,
    };
    let mut milli = 0u16;
    if b.len() > 1 {
        if b[1] != b'.' {
            return None;
        }
        let frac = &b[2..];
        let mut scale = 100u16;
        for &d in frac {
            if !d.is_ascii_digit() {
                return None;
            }
            milli += (d - b'0') as u16 * scale;
            scale /= 10;
        }
    }
    let q = whole * 1000 + milli;
    (q <= 1000).then_some(q)
}

/// A language range: `*` or 1–8 letters followed by `-` and 1–8 alphanumerics, repeated.
fn is_range(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (1..=8).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The index into `supported` of the best language for `header`, or None.
///
/// Ranges are tried by descending q (ties keep header order); each is matched exactly
/// (case-insensitively), then by truncation (`ko-KR` → `ko`), then as a prefix of a supported tag
/// (`en` → `en-US`). `*` takes the first supported tag not refused with `q=0`. Malformed entries
/// are skipped.
pub fn best_language<S: AsRef<str>>(header: &str, supported: &[S]) -> Option<usize> {
    let mut ranges: Vec<(&str, u16)> = Vec::new();
    for entry in header.split(',').take(MAX_ENTRIES) {
        let mut params = entry.split(';');
        let range = params.next().unwrap_or("").trim();
        if !is_range(range) {
            continue;
        }
        let mut q = Some(1000);
        for p in params {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = parse_q(v.trim());
            }
        }
        if let Some(q) = q {
            ranges.push((range, q));
        }
    }
    ranges.sort_by_key(|r| std::cmp::Reverse(r.1));
    let refused = |tag: &str| {
        ranges
            .iter()
            .any(|(r, q)| *q == 0 && r.eq_ignore_ascii_case(tag))
    };
    for (range, q) in ranges.iter().copied() {
        if q == 0 {
            break;
        }
        if range == "*" {
            if let Some(i) = supported.iter().position(|s| !refused(s.as_ref())) {
                return Some(i);
            }
            continue;
        }
        let mut candidate = range;
        loop {
            if let Some(i) = supported
                .iter()
                .position(|s| s.as_ref().eq_ignore_ascii_case(candidate))
            {
                if !refused(supported[i].as_ref()) {
                    return Some(i);
                }
            }
            match candidate.rfind('-') {
                Some(cut) => candidate = &candidate[..cut],
                None => break,
            }
        }
        let prefix_match = supported.iter().position(|s| {
            let s = s.as_ref();
            s.len() > range.len()
                && s.as_bytes()[range.len()] == b'-'
                && s[..range.len()].eq_ignore_ascii_case(range)
                && !refused(s)
        });
        if prefix_match.is_some() {
            return prefix_match;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best<'a>(h: &str, sup: &[&'a str]) -> Option<&'a str> {
        best_language(h, sup).map(|i| sup[i])
    }

    #[test]
    fn negotiates() {
        let sup = ["en", "ko", "ja"];
        assert_eq!(
            best("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", &sup),
            Some("ko")
        );
        assert_eq!(best("fr, ja;q=0.5, en;q=0.4", &sup), Some("ja"));
        assert_eq!(best("en;q=0.1, ja;q=0.9", &sup), Some("ja"));
        assert_eq!(best("fr", &sup), None);
        assert_eq!(best("*", &sup), Some("en"));
        assert_eq!(best("*, en;q=0", &sup), Some("ko"));
        assert_eq!(best("ko;q=0, *;q=0.5", &["ko", "ja"]), Some("ja"));
        assert_eq!(best("KO-kr", &sup), Some("ko"));
        assert_eq!(best("en", &["en-US", "ko"]), Some("en-US"));
        assert_eq!(best("", &sup), None);
    }

    #[test]
    fn ignores_malformed() {
        let sup = ["en", "ko"];
        assert_eq!(best("ko;q=2, en", &sup), Some("en"));
        assert_eq!(best("ko;q=0.5x, en;q=0.1", &sup), Some("en"));
        assert_eq!(best("k<o>, en;q=0.1", &sup), Some("en"));
        assert_eq!(best("toolongtag, en;q=0.1", &sup), Some("en"));
        assert_eq!(best(";;;,,,", &sup), None);
        assert_eq!(best("ko;q=1.0000", &sup), None);
        let hostile = "xx;q=0.5,".repeat(100_000) + "ko";
        assert_eq!(
            best(&hostile, &sup),
            None,
            "entries past the limit are not read"
        );
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.123"), Some(123));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.001"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q(".5"), None);
    }
}
