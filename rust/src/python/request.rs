//! `Request` and the request-stage helpers (`normalize_path`, `percent_encode`, cookies):
//! thin wrappers over [`crate::request`].

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::convert::{bytes_of, latin1_str, wire_of};
use crate::error::Error;
use crate::request::cookie::{self, CookieAttrs, SameSite};
use crate::request::{self, path};

/// The value of the first cookie called `name` in a Cookie header, or None.
#[pyfunction]
pub fn cookie_value(
    cookie_header: &Bound<'_, PyString>,
    name: &Bound<'_, PyString>,
) -> Option<String> {
    // Lossy: hostile text (lone surrogates) must not raise, only fail to match.
    let header = cookie_header.to_string_lossy();
    let name = name.to_string_lossy();
    cookie::cookie_value(&header, &name).map(|v| v.into_owned())
}

/// Builds a Set-Cookie header value; raises ValueError for anything that could inject a header.
#[pyfunction]
#[pyo3(signature = (name, value, *, max_age=None, path=Some("/"), domain=None, secure=true, http_only=false, same_site=Some("Lax")))]
#[allow(clippy::too_many_arguments)]
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<i64>,
    path: Option<&str>,
    domain: Option<&str>,
    secure: bool,
    http_only: bool,
    same_site: Option<&str>,
) -> PyResult<String> {
    let same_site = same_site
        .map(|s| {
            SameSite::parse(s).ok_or_else(|| {
                PyValueError::new_err("same_site must be \"Strict\", \"Lax\" or \"None\"")
            })
        })
        .transpose()?;
    let attrs = CookieAttrs {
        max_age,
        path,
        domain,
        secure,
        http_only,
        same_site,
    };
    cookie::set_cookie(name, value, &attrs).map_err(PyValueError::new_err)
}

/// `text` with every character but `A-Z a-z 0-9 - . _ ~` percent-encoded as UTF-8, like
/// `urllib.parse.quote(text, safe="")`.
#[pyfunction]
pub fn percent_encode(text: &str) -> String {
    path::percent_encode_component(text)
}

/// Normalizes a raw request path; raises ValueError whose `.kind` (and message) says why a path
/// is refused.
#[pyfunction]
pub fn normalize_path(raw: &Bound<'_, PyAny>) -> PyResult<String> {
    path::normalize(bytes_of(raw, "path")?).map_err(|e| Error::from(e).into())
}

fn not_a_pair() -> PyErr {
    PyTypeError::new_err("each header must be a (name, value) pair")
}

/// The two items of a header pair given as any iterable of length 2.
fn pair_of<'py>(item: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let mut it = item.try_iter().map_err(|_| not_a_pair())?;
    let k = it.next().ok_or_else(not_a_pair)??;
    let v = it.next().ok_or_else(not_a_pair)??;
    if it.next().is_some() {
        return Err(not_a_pair());
    }
    Ok((k, v))
}

/// The request as the core sees it: built once from the ASGI scope, raw header bytes kept here,
/// the per-request facts (size, Host, framing) worked out in one pass, cookies parsed at most
/// once. Frozen, so every stage can read it from any thread without locks.
#[pyclass(frozen, module = "gateway._core")]
pub struct Request {
    pub(crate) head: request::Head,
    /// The caller's `(name, value)` tuples when each was a tuple of two `bytes`: forwarding hands
    /// back these same objects instead of making new ones.
    items: Option<Vec<Py<PyAny>>>,
}

#[pymethods]
impl Request {
    #[new]
    #[pyo3(signature = (method, raw_path, query_string, headers, client, scheme))]
    fn new(
        method: String,
        raw_path: &Bound<'_, PyAny>,
        query_string: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        client: Option<String>,
        scheme: String,
    ) -> PyResult<Self> {
        let raw_path = wire_of(raw_path, "raw_path")?;
        let query_string = wire_of(query_string, "query_string")?;
        let mut pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = Vec::new();
        let mut items = Vec::new();
        let mut reusable = true;
        for item in headers.try_iter()? {
            let item = item?;
            let (k, v) = if let Ok(t) = item.cast::<PyTuple>() {
                if t.len() != 2 {
                    return Err(not_a_pair());
                }
                (t.get_item(0)?, t.get_item(1)?)
            } else {
                // Any other pair of two (ASGI allows lists): taken, but made into new tuples when
                // forwarded.
                reusable = false;
                pair_of(&item)?
            };
            reusable &= k.is_instance_of::<PyBytes>() && v.is_instance_of::<PyBytes>();
            pairs.push((k, v));
            items.push(item.unbind());
        }
        let mut wire = Vec::with_capacity(pairs.len());
        for (k, v) in &pairs {
            wire.push((wire_of(k, "header name")?, wire_of(v, "header value")?));
        }
        let head = request::Head::new(
            method,
            &raw_path,
            &query_string,
            wire.iter().map(|(k, v)| (&**k, &**v)),
            client,
            scheme,
        );
        Ok(Request {
            head,
            items: reusable.then_some(items),
        })
    }

    #[getter]
    fn method(&self) -> &str {
        &self.head.method
    }

    #[getter]
    fn raw_path<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.head.raw_path)
    }

    /// The query with bytes outside 0x21..0x7E percent-encoded.
    #[getter]
    fn query(&self) -> &str {
        &self.head.query
    }

    #[getter]
    fn client(&self) -> Option<&str> {
        self.head.client.as_deref()
    }

    #[getter]
    fn scheme(&self) -> &str {
        &self.head.scheme
    }

    #[getter]
    fn head_size(&self) -> usize {
        self.head.head_size
    }

    #[getter]
    fn host_count(&self) -> usize {
        self.head.host_count
    }

    /// The first Host value as sent (latin-1 text).
    #[getter]
    fn host<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.head.host_raw().map(|h| latin1_str(py, h))
    }

    /// The Host for routing: lower-case, no port, no trailing dot, IPv6 without brackets.
    #[getter]
    fn host_name(&self) -> Option<&str> {
        self.head.host_name()
    }

    #[getter]
    fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    #[getter]
    fn content_length_valid(&self) -> bool {
        self.head.content_length_valid
    }

    #[getter]
    fn chunked(&self) -> bool {
        self.head.chunked
    }

    /// The first value of header `name`, as latin-1 text.
    fn header<'py>(&self, py: Python<'py>, name: &str) -> Option<Bound<'py, PyString>> {
        self.head.value(name.as_bytes()).map(|v| latin1_str(py, v))
    }

    /// Every value of header `name`, in order, as latin-1 text.
    fn header_values<'py>(&self, py: Python<'py>, name: &str) -> Vec<Bound<'py, PyString>> {
        self.head
            .values(name.as_bytes())
            .map(|v| latin1_str(py, v))
            .collect()
    }

    /// The first cookie called `name` (all Cookie headers, parsed once per request).
    fn cookie(&self, name: &str) -> Option<&str> {
        self.head.cookie(name)
    }

    /// Every cookie called `name`, in order, at most 8.
    fn cookies(&self, name: &str) -> Vec<&str> {
        self.head.cookies(name)
    }

    /// The raw header pairs minus the names in `drop` (lower-case) and the names listed in any
    /// Connection header: what may go on to the origin, byte for byte.
    fn forward_headers<'py>(
        &self,
        py: Python<'py>,
        drop: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        // A prebuilt HeaderNames (the config makes one per route) costs no conversion per request.
        let owned: Vec<Bound<'py, PyString>>;
        let names: Vec<&[u8]> = if let Ok(set) = drop.cast::<HeaderNames>() {
            set.get().names.iter().map(Vec::as_slice).collect()
        } else {
            owned = drop
                .try_iter()?
                .map(|n| {
                    n?.cast_into::<PyString>()
                        .map_err(|_| PyTypeError::new_err("drop must hold str header names"))
                })
                .collect::<PyResult<_>>()?;
            owned
                .iter()
                .map(|n| n.to_str().map(str::as_bytes))
                .collect::<PyResult<_>>()?
        };
        let keep = self.head.forward_indices(&names);
        match &self.items {
            // The caller's own tuples: no new objects at all.
            Some(items) => PyList::new(py, keep.iter().map(|&i| items[i].bind(py))),
            None => {
                let pairs = keep
                    .iter()
                    .map(|&i| {
                        let (k, v) = self.head.header_at(i);
                        PyTuple::new(py, [PyBytes::new(py, k), PyBytes::new(py, v)])
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, pairs)
            }
        }
    }

    /// Everything the origin is sent, in one call: the client's headers minus `drop` (as
    /// `forward_headers`), then `X-Forwarded-For` (appended to the client's chain when the peer is
    /// `trusted`, else just the peer), `X-Forwarded-Proto` and `X-Forwarded-Host` (the client's from
    /// a trusted peer, else the scheme and Host), then `set` (the headers the gateway sets:
    /// name -> text, sent as UTF-8), then `extra` (pairs made already: the correlation stage's).
    #[pyo3(signature = (drop, trusted, set, extra=None))]
    fn upstream_headers<'py>(
        &self,
        py: Python<'py>,
        drop: &Bound<'py, HeaderNames>,
        trusted: bool,
        set: &Bound<'py, PyDict>,
        extra: Option<&Bound<'py, PyTuple>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = self.forward_headers(py, drop.as_any())?;
        let head = &self.head;
        let mut chain: Vec<u8> = Vec::new();
        if trusted {
            for v in head.values(b"x-forwarded-for") {
                if !chain.is_empty() {
                    chain.extend_from_slice(b", ");
                }
                chain.extend_from_slice(v);
            }
        }
        if let Some(client) = head.client.as_deref() {
            if !chain.is_empty() {
                chain.extend_from_slice(b", ");
            }
            chain.extend_from_slice(client.as_bytes());
        }
        let pair =
            |k: &[u8], v: &[u8]| PyTuple::new(py, [PyBytes::new(py, k), PyBytes::new(py, v)]);
        if !chain.is_empty() {
            out.append(pair(b"x-forwarded-for", &chain)?)?;
        }
        let proto = trusted.then(|| head.value(b"x-forwarded-proto")).flatten();
        out.append(pair(
            b"x-forwarded-proto",
            proto.unwrap_or(head.scheme.as_bytes()),
        )?)?;
        if let Some(host) = head.host_raw() {
            let forwarded = trusted.then(|| head.value(b"x-forwarded-host")).flatten();
            out.append(pair(b"x-forwarded-host", forwarded.unwrap_or(host))?)?;
        }
        for (k, v) in set.iter() {
            let k = k
                .cast_into::<PyString>()
                .map_err(|_| PyTypeError::new_err("header names must be str"))?;
            let v = v
                .cast_into::<PyString>()
                .map_err(|_| PyTypeError::new_err("header values must be str"))?;
            out.append(pair(k.to_str()?.as_bytes(), v.to_str()?.as_bytes())?)?;
        }
        for item in extra.into_iter().flatten() {
            let ok = item
                .cast::<PyTuple>()
                .is_ok_and(|t| t.len() == 2 && t.iter().all(|x| x.is_instance_of::<PyBytes>()));
            if !ok {
                return Err(PyTypeError::new_err(
                    "extra headers must be (bytes, bytes) tuples",
                ));
            }
            out.append(item)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        // Method and path only: headers carry cookies and tokens.
        format!(
            "Request({} {:?})",
            crate::error::bounded(&self.head.method, 16),
            crate::error::bounded(&String::from_utf8_lossy(&self.head.raw_path), 64)
        )
    }
}

/// Header names, lower-cased once: the names a route never forwards from the client, built when
/// the config is loaded so that `Request.forward_headers` converts nothing per request.
#[pyclass(frozen, module = "gateway._core")]
pub struct HeaderNames {
    names: Vec<Vec<u8>>,
}

#[pymethods]
impl HeaderNames {
    #[new]
    fn new(names: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for n in names.try_iter()? {
            let n = n?;
            let n = n
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("header names must be str"))?;
            let lower = n.to_str()?.to_ascii_lowercase().into_bytes();
            if !out.contains(&lower) {
                out.push(lower);
            }
        }
        out.sort();
        Ok(HeaderNames { names: out })
    }

    fn __len__(&self) -> usize {
        self.names.len()
    }

    fn __contains__(&self, name: &str) -> bool {
        let name = name.as_bytes();
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// The names, lower-case and sorted.
    fn names(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("HeaderNames({:?})", self.names())
    }
}
