//! correlation and observe: what the gateway tells its operators about each request, the parts
//! that run on every request — the ids that tie a request's log line, its answer and the origin's
//! logs together ([`ids`], [`correlation`]), and its metrics tally ([`tally`]).
//!
//! They are here rather than in Python because they run on every request with
//! `request_id`, `trace` and `metrics_listen` on: in Python they cost the gateway 9-13 % of its
//! CPU per proxied request (benches/RESULTS.md "Observability (issue 12)"); here, one call each.

pub mod correlation;
pub mod ids;
pub mod tally;
