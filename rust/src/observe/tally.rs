//! The metrics tally: each request is added to an in-process tally, one entry per distinct
//! combination of its labels, holding its three histograms' bucket counts and sums; the Python
//! side (python/gateway/metrics.py) drains it at most once a second into prometheus_client's
//! multiprocess files, which a scrape sums across workers.
//!
//! Why not prometheus_client's own `observe` per request: in multiprocess mode each observation
//! takes a lock and writes an mmap per bucket and per sum (measured 3.3 µs per histogram, ~10 µs
//! per request for three). Why not in Python: the same tally there cost ~12k instructions per
//! request (callgrind), this one call a fraction of that.
//!
//! Buckets are Prometheus's `le` (less than or equal) upper bounds; counts are per bucket, not
//! cumulative, as prometheus_client stores them; the last count is +Inf's.

use std::collections::HashMap;

use ahash::RandomState;

/// OpenTelemetry semantic conventions, `http.request.method`: the known methods; any other is
/// counted as `_OTHER`, so a client inventing methods cannot make new series.
pub const KNOWN_METHODS: [&str; 10] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY",
];
pub const OTHER_METHOD: &str = "_OTHER";

/// One request, as the tally sees it. Times are seconds on one monotonic clock (Python's
/// `time.perf_counter`).
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The route's pattern (or `unmatched`, or the health endpoint's path): from the config.
    pub route: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub origin: Option<&'a str>,
    pub auth_policy: Option<&'a str>,
    pub auth_outcome: &'a str,
    pub upstream_error: Option<&'a str>,
    /// The rate limit that decided the request, and how.
    pub rate_limit: Option<(&'a str, &'a str)>,
    pub started: f64,
    pub ended: f64,
    /// The origin's time, when the request went to one.
    pub upstream_seconds: Option<f64>,
    /// When the response head went to the client, when it did.
    pub head_sent: Option<f64>,
}

/// The labels of one tally entry; every value comes from a bounded set (the config's names,
/// [`KNOWN_METHODS`], fixed outcome and error kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub route: String,
    pub method: &'static str,
    pub status: u16,
    pub origin: Option<String>,
    pub auth_policy: Option<String>,
    pub auth_outcome: String,
    pub upstream_error: Option<String>,
    pub rate_limit: Option<(String, String)>,
}

/// One histogram's counts per bucket (the last is +Inf) and the sum of what it observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Histogram {
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, bounds: &[f64], value: f64) {
        // The first bound >= value: Prometheus's `le`.
        self.counts[bounds.partition_point(|&b| b < value)] += 1;
        self.sum += value;
    }
}

/// What one entry has counted: `http_server_request_duration_seconds`, the gateway's own time
/// (`gateway_overhead_duration_seconds`), the origin's (`gateway_upstream_duration_seconds`, empty
/// when no request of the entry reached an origin), and how many requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    pub request: Histogram,
    pub overhead: Histogram,
    pub upstream: Histogram,
    pub requests: u64,
}

#[derive(Debug, PartialEq)]
pub enum BoundsError {
    Empty,
    NotAscending,
}

impl std::fmt::Display for BoundsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BoundsError::Empty => "a histogram needs at least one bucket bound",
            BoundsError::NotAscending => "bucket bounds must be finite and strictly ascending",
        })
    }
}

fn check(bounds: Vec<f64>) -> Result<Vec<f64>, BoundsError> {
    if bounds.is_empty() {
        return Err(BoundsError::Empty);
    }
    if !bounds.iter().all(|b| b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(BoundsError::NotAscending);
    }
    Ok(bounds)
}

pub struct Tally {
    request_bounds: Vec<f64>,
    overhead_bounds: Vec<f64>,
    upstream_bounds: Vec<f64>,
    // Looked up by the hash of the borrowed labels, so a request allocates nothing unless its
    // combination is new this period; equal hashes share a list.
    entries: HashMap<u64, Vec<(Labels, Counts)>>,
    hasher: RandomState,
    len: usize,
}

fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or(OTHER_METHOD)
}

impl Tally {
    /// The three histograms' upper bounds, ascending, without +Inf.
    pub fn new(
        request: Vec<f64>,
        overhead: Vec<f64>,
        upstream: Vec<f64>,
    ) -> Result<Tally, BoundsError> {
        Ok(Tally {
            request_bounds: check(request)?,
            overhead_bounds: check(overhead)?,
            upstream_bounds: check(upstream)?,
            entries: HashMap::new(),
            hasher: RandomState::new(),
            len: 0,
        })
    }

    /// Entries (distinct label combinations) since the last drain.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn record(&mut self, o: &Observation<'_>) {
        let method = method_label(o.method);
        let hash = self.hasher.hash_one((
            o.route,
            method,
            o.status,
            o.origin,
            o.auth_policy,
            o.auth_outcome,
            o.upstream_error,
            o.rate_limit,
        ));
        let list = self.entries.entry(hash).or_default();
        let i = match list.iter().position(|(l, _)| same(l, o, method)) {
            Some(i) => i,
            None => {
                let labels = Labels {
                    route: o.route.to_owned(),
                    method,
                    status: o.status,
                    origin: o.origin.map(str::to_owned),
                    auth_policy: o.auth_policy.map(str::to_owned),
                    auth_outcome: o.auth_outcome.to_owned(),
                    upstream_error: o.upstream_error.map(str::to_owned),
                    rate_limit: o.rate_limit.map(|(n, d)| (n.to_owned(), d.to_owned())),
                };
                let counts = Counts {
                    request: Histogram::new(&self.request_bounds),
                    overhead: Histogram::new(&self.overhead_bounds),
                    upstream: Histogram::new(&self.upstream_bounds),
                    requests: 0,
                };
                list.push((labels, counts));
                self.len += 1;
                list.len() - 1
            }
        };
        let counts = &mut list[i].1;
        let took = o.ended - o.started;
        counts.request.observe(&self.request_bounds, took);
        // The gateway's own time: until the response head went out, less the origin's.
        let overhead = match (o.upstream_seconds, o.origin) {
            (Some(upstream), Some(_)) => {
                counts.upstream.observe(&self.upstream_bounds, upstream);
                o.head_sent.unwrap_or(o.ended) - o.started - upstream
            }
            _ => took,
        };
        counts
            .overhead
            .observe(&self.overhead_bounds, overhead.max(0.0));
        counts.requests += 1;
    }

    /// Every entry since the last drain; the tally starts empty again.
    pub fn drain(&mut self) -> Vec<(Labels, Counts)> {
        self.len = 0;
        self.entries.drain().flat_map(|(_, list)| list).collect()
    }
}

fn same(l: &Labels, o: &Observation<'_>, method: &str) -> bool {
    l.route == o.route
        && l.method == method
        && l.status == o.status
        && l.origin.as_deref() == o.origin
        && l.auth_policy.as_deref() == o.auth_policy
        && l.auth_outcome == o.auth_outcome
        && l.upstream_error.as_deref() == o.upstream_error
        && l.rate_limit.as_ref().map(|(n, d)| (n.as_str(), d.as_str())) == o.rate_limit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        Tally::new(vec![0.001, 0.01, 0.1], vec![0.0001, 0.001], vec![0.01, 0.1]).unwrap()
    }

    fn proxied(route: &'static str, took: f64, upstream: f64) -> Observation<'static> {
        Observation {
            route,
            method: "GET",
            status: 200,
            origin: Some("web"),
            auth_policy: Some("session"),
            auth_outcome: "valid",
            upstream_error: None,
            rate_limit: None,
            started: 10.0,
            ended: 10.0 + took,
            upstream_seconds: Some(upstream),
            head_sent: None,
        }
    }

    #[test]
    fn one_entry_per_label_combination_with_le_buckets() {
        let mut t = tally();
        t.record(&proxied("/a", 0.005, 0.0045));
        t.record(&proxied("/a", 0.05, 0.01)); // the origin's 0.01 is on a bound: counted in it (le)
        t.record(&proxied("/b", 0.5, 0.2));
        assert_eq!(t.len(), 2);
        let mut all = t.drain();
        assert!(t.is_empty() && t.drain().is_empty());
        all.sort_by(|x, y| x.0.route.cmp(&y.0.route));
        let (labels, a) = &all[0];
        assert_eq!(
            (labels.route.as_str(), labels.method, labels.status),
            ("/a", "GET", 200)
        );
        assert_eq!(a.requests, 2);
        assert_eq!(a.request.counts, vec![0, 1, 1, 0]);
        assert_eq!(a.upstream.counts, vec![2, 0, 0]);
        assert!((a.request.sum - 0.055).abs() < 1e-9);
        // overhead = took - upstream: 0.0005 and 0.04
        assert_eq!(a.overhead.counts, vec![0, 1, 1]);
        let (_, b) = &all[1];
        assert_eq!(b.request.counts, vec![0, 0, 0, 1], "over every bound: +Inf");
    }

    #[test]
    fn the_gateway_time_ends_at_the_response_head_and_is_never_negative() {
        let mut t = tally();
        let mut o = proxied("/a", 1.0, 0.2);
        o.head_sent = Some(10.2005); // head out 0.5 ms after the origin answered
        t.record(&o);
        let mut o = proxied("/a", 0.01, 0.02); // clocks read apart: would be negative
        o.head_sent = Some(10.0);
        t.record(&o);
        let (_, c) = t.drain().pop().unwrap();
        assert_eq!(c.overhead.counts, vec![1, 1, 0]);
        assert!((c.overhead.sum - 0.0005).abs() < 1e-9, "{}", c.overhead.sum);
    }

    #[test]
    fn an_answer_without_an_origin_is_all_gateway_time() {
        let mut t = tally();
        let o = Observation {
            origin: None,
            upstream_seconds: None,
            status: 401,
            auth_outcome: "missing",
            ..proxied("/a", 0.0005, 0.0)
        };
        t.record(&o);
        let (labels, c) = t.drain().pop().unwrap();
        assert_eq!((labels.status, labels.origin), (401, None));
        assert_eq!(c.upstream.counts, vec![0, 0, 0]);
        assert_eq!(c.overhead.counts, vec![0, 1, 0]);
    }

    #[test]
    fn invented_methods_share_one_label() {
        let mut t = tally();
        for m in ["BREW", "PROPFIND", "get", "GET"] {
            t.record(&Observation {
                method: m,
                ..proxied("/a", 0.001, 0.0005)
            });
        }
        let mut methods: Vec<&str> = t.drain().iter().map(|(l, _)| l.method).collect();
        methods.sort();
        assert_eq!(methods, vec!["GET", "_OTHER"]);
    }

    #[test]
    fn every_label_tells_entries_apart() {
        let mut t = tally();
        let base = proxied("/a", 0.001, 0.0005);
        let variants = [
            base,
            Observation {
                status: 502,
                ..base
            },
            Observation {
                origin: Some("api"),
                ..base
            },
            Observation {
                auth_policy: Some("api"),
                ..base
            },
            Observation {
                auth_outcome: "invalid",
                ..base
            },
            Observation {
                upstream_error: Some("upstream_timeout"),
                ..base
            },
            Observation {
                rate_limit: Some(("per_ip", "allowed")),
                ..base
            },
            Observation {
                rate_limit: Some(("per_ip", "limited")),
                ..base
            },
        ];
        for o in &variants {
            t.record(o);
            t.record(o);
        }
        let all = t.drain();
        assert_eq!(all.len(), variants.len());
        assert!(all.iter().all(|(_, c)| c.requests == 2));
    }

    #[test]
    fn bounds_must_ascend() {
        assert_eq!(
            Tally::new(vec![], vec![1.0], vec![1.0]).err(),
            Some(BoundsError::Empty)
        );
        assert_eq!(
            Tally::new(vec![1.0, 1.0], vec![1.0], vec![1.0]).err(),
            Some(BoundsError::NotAscending)
        );
        assert_eq!(
            Tally::new(vec![1.0, f64::INFINITY], vec![1.0], vec![1.0]).err(),
            Some(BoundsError::NotAscending)
        );
    }
}
