//! Route patterns in Next.js matcher syntax, compiled once into one `RegexSet`.
//!
//! `:name` matches one segment, `:name*` zero or more, `:name+` one or more, `:name?` zero or
//! one, `:name(regex)` a segment by regex, and `(regex)` an unnamed group. A trailing slash does
//! not change a match. Literals compare case-insensitively, so `/DASHBOARD` cannot slip past a
//! `/dashboard` rule to a case-insensitive origin.

// Byte regexes without Unicode classes: normalized paths are ASCII (everything else is
// percent-encoded), and Unicode-aware `\d` and case folding multiplied the automaton of a large
// route set, making a 1,000-route set match 60% slower than a 10-route one.
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::error::{Error, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl From<PatternError> for Error {
    fn from(e: PatternError) -> Self {
        Error::new(ErrorKind::BadPattern, e.0)
    }
}

/// Compiles one Next.js-style pattern to an anchored regex source and its parameter names.
pub fn compile(pattern: &str) -> Result<(String, Vec<String>), PatternError> {
    if !pattern.starts_with('/') {
        return Err(PatternError("a path pattern must start with /".into()));
    }
    let bytes = pattern.as_bytes();
    let mut out = String::from("^");
    let mut names = Vec::new();
    let mut i = 0;
    let mut unnamed = 0;
    while i < bytes.len() {
        let c = bytes[i];
        // A slash directly before a parameter belongs to it, so `/:path*` also matches "".
        let slash = c == b'/' && matches!(bytes.get(i + 1), Some(b':') | Some(b'('));
        let start = if slash { i + 1 } else { i };
        let c2 = bytes[start];
        if c2 == b':' || c2 == b'(' {
            let mut j = start;
            let name = if c2 == b':' {
                j += 1;
                let s = j;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                if s == j {
                    return Err(PatternError(format!(
                        "a ':' at position {start} must be followed by a parameter name"
                    )));
                }
                pattern[s..j].to_owned()
            } else {
                unnamed += 1;
                format!("{}", unnamed - 1)
            };
            let mut inner = String::from("[^/]+");
            if bytes.get(j) == Some(&b'(') {
                let open = j;
                let mut depth = 0;
                let mut k = j;
                while k < bytes.len() {
                    match bytes[k] {
                        b'\\' => k += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                if k >= bytes.len() {
                    return Err(PatternError(format!("unbalanced '(' at position {open}")));
                }
                let re = &pattern[open + 1..k];
                if re.is_empty() {
                    return Err(PatternError(format!(
                        "empty regex group at position {open}"
                    )));
                }
                RegexBuilder::new(re).unicode(false).build().map_err(|e| {
                    PatternError(format!(
                        "invalid regex ({re}): {}",
                        e.to_string().lines().last().unwrap_or("")
                    ))
                })?;
                if re.contains("(?P<") || re.contains("(?<") {
                    return Err(PatternError(
                        "named groups are not allowed inside a parameter's regex".into(),
                    ));
                }
                inner = format!("(?:{re})");
                j = k + 1;
            }
            let modifier = bytes
                .get(j)
                .copied()
                .filter(|m| matches!(m, b'*' | b'+' | b'?'));
            if modifier.is_some() {
                j += 1;
            }
            let group = format!("p{}_{}", names.len(), sanitize(&name));
            let lead = if slash { "/" } else { "" };
            let piece = match modifier {
                None => format!("{lead}(?P<{group}>{inner})"),
                Some(b'?') => format!("(?:{lead}(?P<{group}>{inner}))?"),
                Some(b'+') => format!("{lead}(?P<{group}>{inner}(?:/{inner})*)"),
                _ => format!("(?:{lead}(?P<{group}>{inner}(?:/{inner})*))?"),
            };
            out.push_str(&piece);
            names.push(name);
            i = j;
            continue;
        }
        if c == b'*' || c == b'?' || c == b'+' || c == b')' {
            return Err(PatternError(format!(
                "unexpected '{}' at position {i}",
                c as char
            )));
        }
        out.push_str(&regex::escape(&(c as char).to_string()));
        i += 1;
    }
    // Trailing slash does not change a match.
    if out.ends_with('/') && out.len() > 2 {
        out.pop();
    }
    out.push_str("/?$");
    Ok((out, names))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

struct Compiled {
    route: usize,
    regex: Regex,
    names: Vec<String>,
}

/// All routes' patterns in one set; `first_matches` yields candidate routes in file order.
pub struct RouteSet {
    set: RegexSet,
    patterns: Vec<Compiled>,
}

impl RouteSet {
    /// `routes[i]` lists the patterns of route `i` (any may match).
    pub fn new(routes: &[Vec<String>]) -> Result<RouteSet, (usize, usize, PatternError)> {
        let mut sources = Vec::new();
        let mut patterns = Vec::new();
        for (r, pats) in routes.iter().enumerate() {
            for (p, pat) in pats.iter().enumerate() {
                let (src, names) = compile(pat).map_err(|e| (r, p, e))?;
                let src = format!("(?i){src}");
                let regex = RegexBuilder::new(&src)
                    .unicode(false)
                    .build()
                    .map_err(|e| (r, p, PatternError(e.to_string())))?;
                sources.push(src);
                patterns.push(Compiled {
                    route: r,
                    regex,
                    names,
                });
            }
        }
        let set = RegexSetBuilder::new(&sources)
            .unicode(false)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| {
                (
                    0,
                    0,
                    PatternError(format!("the route patterns together are too large: {e}")),
                )
            })?;
        Ok(RouteSet { set, patterns })
    }

    /// Routes whose patterns match `path`, in file order, without duplicates.
    pub fn matching_routes(&self, path: &str) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for idx in self.set.matches(path.as_bytes()).iter() {
            let r = self.patterns[idx].route;
            if out.last() != Some(&r) {
                out.push(r);
            }
        }
        out
    }

    /// The names `params` can produce for `route`: every pattern's named and unnamed (`"0"`,
    /// `"1"`, ...) groups, in pattern order, each once. `None` for a route that does not exist.
    /// Templates are checked against this list, so a name is accepted exactly when the router
    /// can fill it.
    pub fn param_names(&self, route: usize) -> Option<Vec<String>> {
        let mut found = false;
        let mut out: Vec<String> = Vec::new();
        for c in self.patterns.iter().filter(|c| c.route == route) {
            found = true;
            for name in &c.names {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        }
        found.then_some(out)
    }

    /// The parameters of the first pattern of `route` that matches `path`.
    pub fn params(&self, route: usize, path: &str) -> Option<Vec<(String, String)>> {
        for c in self.patterns.iter().filter(|c| c.route == route) {
            if let Some(caps) = c.regex.captures(path.as_bytes()) {
                let mut out = Vec::with_capacity(c.names.len());
                for (k, name) in c.names.iter().enumerate() {
                    let group = format!("p{}_{}", k, sanitize(name));
                    out.push((
                        name.clone(),
                        caps.name(&group)
                            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                            .unwrap_or_default(),
                    ));
                }
                return Some(out);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pats: &[&str]) -> RouteSet {
        RouteSet::new(&pats.iter().map(|p| vec![p.to_string()]).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn next_js_syntax() {
        let s = set(&[
            "/dashboard/:path*",
            "/api/protected/:path*",
            "/api/resize",
            "/blog/:slug",
            "/docs/:rest+",
            "/u/:id(\\d+)",
            "/opt/:x?",
            "/:path*",
        ]);
        assert_eq!(s.matching_routes("/dashboard"), vec![0, 7]);
        assert_eq!(s.matching_routes("/dashboard/"), vec![0, 7]);
        assert_eq!(s.matching_routes("/dashboard/a/b"), vec![0, 7]);
        assert_eq!(s.matching_routes("/DASHBOARD"), vec![0, 7]);
        assert_eq!(s.matching_routes("/dashboardx"), vec![7]);
        assert_eq!(s.matching_routes("/api/resize/"), vec![2, 7]);
        assert_eq!(s.matching_routes("/blog/a"), vec![3, 7]);
        assert_eq!(s.matching_routes("/blog/a/b"), vec![7]);
        assert_eq!(s.matching_routes("/docs"), vec![7]);
        assert_eq!(s.matching_routes("/docs/a/b"), vec![4, 7]);
        assert_eq!(s.matching_routes("/u/12"), vec![5, 7]);
        assert_eq!(s.matching_routes("/u/ab"), vec![7]);
        assert_eq!(s.matching_routes("/opt"), vec![6, 7]);
        assert_eq!(s.matching_routes("/opt/1"), vec![6, 7]);
        assert_eq!(s.matching_routes("/"), vec![7]);
        assert_eq!(
            s.params(0, "/dashboard/a/b").unwrap(),
            vec![("path".to_string(), "a/b".to_string())]
        );
        assert_eq!(
            s.params(5, "/u/12").unwrap(),
            vec![("id".to_string(), "12".to_string())]
        );
    }

    #[test]
    fn unnamed_groups_and_errors() {
        let s = set(&["/(api|rpc)/:x"]);
        assert_eq!(s.matching_routes("/rpc/1"), vec![0]);
        assert_eq!(
            s.params(0, "/api/1").unwrap()[0],
            ("0".to_string(), "api".to_string())
        );
        assert_eq!(s.param_names(0).unwrap(), ["0", "x"]);
        let got: Vec<String> = s
            .params(0, "/rpc/7")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, s.param_names(0).unwrap(), "one source of names");
        assert_eq!(s.param_names(1), None);
        let multi =
            RouteSet::new(&[vec!["/a/:x/(b|c)".to_string(), "/d/:y/:x".to_string()]]).unwrap();
        assert_eq!(multi.param_names(0).unwrap(), ["x", "0", "y"]);
        assert!(compile("dashboard").is_err());
        assert!(compile("/a/:").is_err());
        assert!(compile("/a/:x(").is_err());
        assert!(compile("/a/:x([)").is_err());
        assert!(compile("/a*").is_err());
    }

    #[test]
    fn thousand_routes_compile() {
        let routes: Vec<Vec<String>> = (0..1000)
            .map(|i| vec![format!("/r{i}/:path*")])
            .chain([vec!["/:path*".to_string()]])
            .collect();
        let s = RouteSet::new(&routes).unwrap();
        assert_eq!(s.matching_routes("/r999/x"), vec![999, 1000]);
        assert_eq!(s.matching_routes("/zzz"), vec![1000]);
    }
}
