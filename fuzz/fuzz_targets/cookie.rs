#![no_main]
//! Cookie parsing never panics; the Set-Cookie builder never emits CR, LF or a stray ';'.
use _core::request::cookie::{cookie_value, set_cookie, CookieAttrs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (name, value) = text.split_once('\u{1}').unwrap_or(("a", &text));
    let _ = cookie_value(&text, name);
    if let Ok(header) = set_cookie(name, value, &CookieAttrs::default()) {
        assert!(!header.contains('\r') && !header.contains('\n'));
        assert_eq!(header.matches(';').count(), 3, "{header}");
    }
});
