#![no_main]
//! The pattern compiler never panics; a compiled pattern set matches any path without panicking.
use _core::routing::matcher::{compile, RouteSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (pattern, path) = text.split_once('\n').unwrap_or((&text, "/a/b"));
    if compile(pattern).is_ok() {
        if let Ok(set) = RouteSet::new(&[vec![pattern.to_string()], vec!["/:path*".to_string()]]) {
            let routes = set.matching_routes(path);
            for r in routes {
                let _ = set.params(r, path);
            }
        }
    }
});
