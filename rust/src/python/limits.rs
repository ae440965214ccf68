//! `RateTable` and `monotonic_us`: thin wrappers over [`crate::limits`].

use std::path::PathBuf;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::limits::{self, Table, TableError};

fn table_err(path: &std::path::Path, e: TableError) -> PyErr {
    match e {
        TableError::Io(io) => PyOSError::new_err(format!("{}: {io}", path.display())),
        other => PyValueError::new_err(format!("{}: {other}", path.display())),
    }
}

/// Microseconds of CLOCK_MONOTONIC, the clock `RateTable.check` uses when given no `now_us`.
#[pyfunction]
pub fn monotonic_us() -> u64 {
    limits::monotonic_us()
}

/// A fixed-size GCRA table in a file mapped by every worker of one gateway instance.
#[pyclass(frozen, module = "gateway._core")]
pub struct RateTable {
    inner: Table,
    #[pyo3(get)]
    path: PathBuf,
}

#[pymethods]
impl RateTable {
    /// Creates the file (it must not exist) with `slots` slots and the 16-byte hashing `key`.
    #[staticmethod]
    fn create(path: PathBuf, slots: u64, key: &[u8]) -> PyResult<Self> {
        let key: [u8; 16] = key
            .try_into()
            .map_err(|_| PyValueError::new_err("key must be 16 bytes"))?;
        let inner = Table::create(&path, slots, key).map_err(|e| table_err(&path, e))?;
        Ok(RateTable { inner, path })
    }

    /// Maps a table another process created.
    #[staticmethod]
    fn open(path: PathBuf) -> PyResult<Self> {
        let inner = Table::open(&path).map_err(|e| table_err(&path, e))?;
        Ok(RateTable { inner, path })
    }

    #[getter]
    fn slots(&self) -> u64 {
        self.inner.slots()
    }

    #[getter]
    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }

    /// Slots holding a key that is still counting at `now_us` (default: now).
    #[pyo3(signature = (now_us=None))]
    fn live(&self, now_us: Option<u64>) -> u64 {
        self.inner.live(now_us.unwrap_or_else(limits::monotonic_us))
    }

    /// One GCRA check of the key `key` + `value` (UTF-8; hashed as if joined, never stored):
    /// (allowed, remaining, retry_after_us, reset_us). `consume=False` writes nothing.
    #[pyo3(signature = (key, value, interval_us, tolerance_us, consume=true, now_us=None))]
    #[allow(clippy::too_many_arguments)]
    fn check(
        &self,
        key: &[u8],
        value: Option<&str>,
        interval_us: u64,
        tolerance_us: u64,
        consume: bool,
        now_us: Option<u64>,
    ) -> PyResult<(bool, u64, u64, u64)> {
        if interval_us == 0 {
            return Err(PyValueError::new_err("interval_us must be at least 1"));
        }
        let now = now_us.unwrap_or_else(limits::monotonic_us);
        let d = match value {
            Some(v) => self.inner.check(
                &[key, v.as_bytes()],
                interval_us,
                tolerance_us,
                now,
                consume,
            ),
            None => self
                .inner
                .check(&[key], interval_us, tolerance_us, now, consume),
        };
        Ok((d.allowed, d.remaining, d.retry_after_us, d.reset_us))
    }
}
