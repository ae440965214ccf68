//! `Correlation`, `random_hex` and `Tally`: thin wrappers over [`crate::observe`].

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::request::Request;
use crate::observe::correlation;
use crate::observe::ids::{self, MAX_ID_BYTES};
use crate::observe::tally::{self, Histogram, Observation};

/// `nbytes` (1 to 32) random bytes from the CSPRNG as lower-case hex, never all zeros.
#[pyfunction]
pub fn random_hex(nbytes: usize) -> PyResult<String> {
    if !(1..=MAX_ID_BYTES).contains(&nbytes) {
        return Err(PyValueError::new_err(format!(
            "nbytes must be 1 to {MAX_ID_BYTES}"
        )));
    }
    Ok(ids::random_hex(nbytes))
}

/// The correlation stage's common case for one config's `[server] request_id` and `trace`.
#[pyclass(frozen, module = "gateway._core")]
pub struct Correlation {
    inner: correlation::Correlation,
    /// The request-id header's name on the wire (lower-case).
    wire: Option<Py<PyBytes>>,
    /// b"traceparent"
    traceparent: Py<PyBytes>,
}

#[pymethods]
impl Correlation {
    #[new]
    #[pyo3(signature = (request_id, trace, exporting))]
    fn new(py: Python<'_>, request_id: Option<&str>, trace: bool, exporting: bool) -> Self {
        let lower = request_id.map(|n| n.to_ascii_lowercase().into_bytes());
        Correlation {
            traceparent: PyBytes::new(py, b"traceparent").unbind(),
            wire: lower.as_deref().map(|l| PyBytes::new(py, l).unbind()),
            inner: correlation::Correlation {
                request_id: lower,
                trace,
                exporting,
            },
        }
    }

    /// For a request that brought no request id and no `traceparent` (and no span export): makes
    /// them and returns `(request_id, trace_id, forward, echo)` — the ids as text (None for a key
    /// that is off), the headers the origin is sent and the ones every response carries, as
    /// lower-case `(name, value)` bytes pairs. None when the request needs the general path.
    #[allow(clippy::type_complexity)]
    fn begin<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, Request>,
    ) -> PyResult<
        Option<(
            Option<Bound<'py, PyString>>,
            Option<Bound<'py, PyString>>,
            Bound<'py, PyTuple>,
            Bound<'py, PyTuple>,
        )>,
    > {
        let Some(begun) = self.inner.begin(&request.get().head) else {
            return Ok(None);
        };
        let mut echo = PyTuple::empty(py);
        let mut request_id = None;
        let mut id_pair = None;
        if let (Some(id), Some(wire)) = (begun.request_id, &self.wire) {
            request_id = Some(PyString::new(py, ascii(&id)));
            // One pair object, sent to the origin and echoed to the client.
            let pair = (wire.bind(py), PyBytes::new(py, &id)).into_pyobject(py)?;
            echo = (&pair,).into_pyobject(py)?;
            id_pair = Some(pair);
        }
        let mut trace_id = None;
        let mut trace_pair = None;
        if let Some((id, traceparent)) = begun.trace {
            trace_id = Some(PyString::new(py, ascii(&id)));
            trace_pair = Some(
                (self.traceparent.bind(py), PyBytes::new(py, &traceparent)).into_pyobject(py)?,
            );
        }
        let forward = match (id_pair, trace_pair) {
            (Some(a), Some(b)) => (a, b).into_pyobject(py)?,
            (Some(a), None) | (None, Some(a)) => (a,).into_pyobject(py)?,
            (None, None) => PyTuple::empty(py),
        };
        Ok(Some((request_id, trace_id, forward, echo)))
    }
}

/// The core's ids and headers are hex digits and dashes.
fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("ids are ASCII")
}

/// A worker's metrics tally (see `crate::observe::tally`): `record` per request, `drain` when the
/// figures go to prometheus_client.
#[pyclass(frozen, module = "gateway._core")]
pub struct Tally {
    inner: Mutex<tally::Tally>,
}

fn histogram<'py>(py: Python<'py>, h: &Histogram) -> PyResult<(Bound<'py, PyList>, f64)> {
    Ok((PyList::new(py, &h.counts)?, h.sum))
}

#[pymethods]
impl Tally {
    #[new]
    fn new(
        request_buckets: Vec<f64>,
        overhead_buckets: Vec<f64>,
        upstream_buckets: Vec<f64>,
    ) -> PyResult<Self> {
        let inner = tally::Tally::new(request_buckets, overhead_buckets, upstream_buckets)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Tally {
            inner: Mutex::new(inner),
        })
    }

    /// Adds one request. Times are `time.perf_counter()` seconds.
    #[pyo3(signature = (route, request, status, origin, auth_policy, auth_outcome, upstream_error, rate_limit, started, ended, upstream_seconds, head_sent))]
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        route: &str,
        request: &Bound<'_, Request>,
        status: u16,
        origin: Option<&str>,
        auth_policy: Option<&str>,
        auth_outcome: &str,
        upstream_error: Option<&str>,
        rate_limit: Option<(PyBackedStr, PyBackedStr)>,
        started: f64,
        ended: f64,
        upstream_seconds: Option<f64>,
        head_sent: Option<f64>,
    ) {
        let o = Observation {
            route,
            method: &request.get().head.method,
            status,
            origin,
            auth_policy,
            auth_outcome,
            upstream_error,
            rate_limit: rate_limit.as_ref().map(|(n, d)| (&**n, &**d)),
            started,
            ended,
            upstream_seconds,
            head_sent,
        };
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(&o);
    }

    /// Every entry since the last drain, and empties the tally: a list of
    /// `(route, method, status, origin, auth_policy, auth_outcome, upstream_error, rate_limit,
    /// request, overhead, upstream, requests)`, each histogram `(counts per bucket with +Inf last,
    /// sum in seconds)`.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let entries = self.inner.lock().unwrap_or_else(|e| e.into_inner()).drain();
        let out = PyList::empty(py);
        for (l, c) in entries {
            let item = (
                l.route,
                l.method,
                l.status,
                l.origin,
                l.auth_policy,
                l.auth_outcome,
                l.upstream_error,
                l.rate_limit,
                histogram(py, &c.request)?,
                histogram(py, &c.overhead)?,
                histogram(py, &c.upstream)?,
                c.requests,
            );
            out.append(item)?;
        }
        Ok(out)
    }

    fn __len__(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
