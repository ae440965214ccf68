//! Conversions at the boundary: bytes or latin-1 text in, latin-1 text out.

use std::borrow::Cow;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// `str` or `bytes` → bytes, borrowed.
pub(crate) fn bytes_of<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a [u8]> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes());
    }
    Err(PyTypeError::new_err(format!("{what} must be str or bytes")))
}

/// A header name or value given as `bytes`, or as `str` holding latin-1 text (one character per
/// wire byte, the way ASGI servers and this module hand header text over). Borrowed when it can be.
pub(crate) fn wire_of<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let text = s.to_str()?;
        if text.is_ascii() {
            return Ok(Cow::Borrowed(text.as_bytes()));
        }
        return text
            .chars()
            .map(|c| u8::try_from(u32::from(c)))
            .collect::<Result<Vec<u8>, _>>()
            .map(Cow::Owned)
            .map_err(|_| {
                PyValueError::new_err(format!(
                    "{what}: a character above U+00FF; header text is latin-1, one character per byte"
                ))
            });
    }
    Err(PyTypeError::new_err(format!("{what} must be bytes or str")))
}

/// Wire bytes as latin-1 `str`: one character per byte, whatever the bytes are.
pub(crate) fn latin1_str<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    // SAFETY: latin-1 decoding cannot fail; it returns a new reference (or NULL on memory
    // exhaustion, which `from_owned_ptr` turns into a panic rather than undefined behaviour).
    unsafe {
        Bound::from_owned_ptr(
            py,
            pyo3::ffi::PyUnicode_DecodeLatin1(
                bytes.as_ptr().cast(),
                bytes.len() as pyo3::ffi::Py_ssize_t,
                std::ptr::null(),
            ),
        )
        .cast_into_unchecked::<PyString>()
    }
}
