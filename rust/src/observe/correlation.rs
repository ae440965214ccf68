//! The correlation stage's common case, decided in one call: the client sent no request id and
//! no `traceparent`, and spans are not exported — so the gateway makes a request id, and starts a
//! trace (W3C Trace Context §3.2: `00-<trace-id>-<parent-id>-01`, sampled).
//!
//! Everything else — a client's request id (kept only from a trusted proxy, and only when sane), a
//! `traceparent` to continue or refuse, span ids for export, explain's notes — is the Python
//! stage's general path (python/gateway/stages/correlation.py), which this must agree with.

use super::ids::fill_hex;
use crate::request::Head;

/// The `[server]` keys the stage reads, fixed for a config.
#[derive(Debug, Clone)]
pub struct Correlation {
    /// The request-id header's name, lower-case (`request_id = "X-Request-Id"`); None when off.
    pub request_id: Option<Vec<u8>>,
    /// `trace = true`.
    pub trace: bool,
    /// `otlp_endpoint` is set: the gateway is a participant with span ids of its own.
    pub exporting: bool,
}

/// A request id: 32 lower-case hex digits (128 bits).
pub type RequestId = [u8; 32];
/// A new trace: its id (32 hex digits) and the `traceparent` the origin is sent
/// (`00-<trace-id>-<parent-id>-01`, 55 characters).
pub type NewTrace = ([u8; 32], [u8; 55]);

/// What the common case decided; all ASCII, made without allocating.
#[derive(Debug, PartialEq, Eq)]
pub struct Begun {
    /// None when `request_id` is off.
    pub request_id: Option<RequestId>,
    /// None when `trace` is off.
    pub trace: Option<NewTrace>,
}

impl Correlation {
    /// The ids for a request that brought none, or None when the request needs the general path
    /// (it carries the request-id header or a `traceparent`, or spans are exported).
    pub fn begin(&self, head: &Head) -> Option<Begun> {
        if let Some(name) = &self.request_id {
            if head.value(name).is_some() {
                return None;
            }
        }
        if self.trace && (self.exporting || head.value(b"traceparent").is_some()) {
            return None;
        }
        let request_id = self.request_id.as_ref().map(|_| {
            let mut id = [0u8; 32];
            fill_hex(&mut id);
            id
        });
        let trace = self.trace.then(|| {
            // Trace Context §3.2.2: version "00", trace-id, parent-id (the span id the gateway
            // makes up for its hop), flags "01" (sampled).
            let mut traceparent = *b"00-________________________________-________________-01";
            fill_hex(&mut traceparent[3..35]);
            fill_hex(&mut traceparent[36..52]);
            let mut trace_id = [0u8; 32];
            trace_id.copy_from_slice(&traceparent[3..35]);
            (trace_id, traceparent)
        });
        Some(Begun { request_id, trace })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&[u8], &[u8])]) -> Head {
        Head::new(
            "GET".into(),
            b"/",
            b"",
            headers.iter().copied(),
            Some("127.0.0.1".into()),
            "http".into(),
        )
    }

    fn both() -> Correlation {
        Correlation {
            request_id: Some(b"x-request-id".to_vec()),
            trace: true,
            exporting: false,
        }
    }

    #[test]
    fn a_bare_request_gets_a_request_id_and_a_new_sampled_trace() {
        let begun = both().begin(&head(&[(b"host", b"a")])).unwrap();
        let id = begun.request_id.unwrap();
        let hex = |b: &[u8]| {
            b.iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        };
        assert!(hex(&id));
        let (trace_id, traceparent) = begun.trace.unwrap();
        assert_ne!(
            trace_id, id,
            "the request id and the trace id are drawn apart"
        );
        let traceparent = std::str::from_utf8(&traceparent).unwrap();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(
            (parts[0], parts[1].as_bytes(), parts[2].len(), parts[3]),
            ("00", &trace_id[..], 16, "01")
        );
        assert!(hex(parts[2].as_bytes()));
    }

    #[test]
    fn what_the_client_sent_goes_to_the_general_path() {
        // Header names match whatever their case on the wire.
        assert_eq!(both().begin(&head(&[(b"X-Request-ID", b"abc")])), None);
        assert_eq!(both().begin(&head(&[(b"traceparent", b"junk")])), None);
        let exporting = Correlation {
            exporting: true,
            ..both()
        };
        assert_eq!(exporting.begin(&head(&[])), None);
    }

    #[test]
    fn a_key_that_is_off_neither_makes_ids_nor_reads_its_header() {
        let ids_only = Correlation {
            trace: false,
            ..both()
        };
        let begun = ids_only.begin(&head(&[(b"traceparent", b"00-x")])).unwrap();
        assert!(begun.request_id.is_some() && begun.trace.is_none());
        let trace_only = Correlation {
            request_id: None,
            ..both()
        };
        let begun = trace_only
            .begin(&head(&[(b"x-request-id", b"abc")]))
            .unwrap();
        assert!(begun.request_id.is_none() && begun.trace.is_some());
    }
}
