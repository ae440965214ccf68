#![no_main]
//! Accept-Language negotiation never panics and only ever picks a supported entry.
use _core::locale::best_language;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let supported = ["en", "ko", "ja", "en-US", "zh-Hant-TW"];
    if let Some(i) = best_language(&header, &supported) {
        assert!(i < supported.len());
    }
});
