#![no_main]
//! Path normalization: never panics; output is canonical (idempotent), starts with '/', has no
//! dot segments, empty segments, backslashes, raw or encoded control characters or encoded slashes.
use _core::request::path::normalize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = normalize(data) {
        assert!(out.starts_with('/'));
        assert_eq!(normalize(out.as_bytes()).as_deref(), Ok(out.as_str()), "not idempotent");
        assert!(!out.contains("//") && !out.contains('\\') && !out.contains(';'));
        assert!(!out.bytes().any(|b| b < 0x20 || b == 0x7f));
        for seg in out.split('/') {
            assert!(seg != "." && seg != "..");
        }
        let upper = out.to_ascii_uppercase();
        assert!(!upper.contains("%2F") && !upper.contains("%5C") && !upper.contains("%7F"));
        // No encoded control character either (%00-%1F): an origin would decode it.
        for (i, _) in upper.match_indices('%') {
            assert!(!matches!(&upper[i + 1..i + 2], "0" | "1"), "{out}");
        }
    }
});
