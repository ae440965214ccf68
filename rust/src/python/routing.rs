//! `RouteSet` and `compile_pattern`: thin wrappers over [`crate::routing`].

use std::collections::HashMap;

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;

/// Compiles a Next.js-style path pattern to the anchored regex the router uses.
#[pyfunction]
pub fn compile_pattern(pattern: &str) -> PyResult<String> {
    crate::routing::compile(pattern)
        .map(|(src, _)| src)
        .map_err(|e| PyValueError::new_err(e.0))
}

/// Every route's path patterns compiled into one set; matching cost does not grow per route.
#[pyclass(frozen, module = "gateway._core")]
pub struct RouteSet {
    inner: crate::routing::RouteSet,
}

#[pymethods]
impl RouteSet {
    #[new]
    fn new(routes: Vec<Vec<String>>) -> PyResult<Self> {
        crate::routing::RouteSet::new(&routes)
            .map(|inner| RouteSet { inner })
            .map_err(|(r, p, e)| PyValueError::new_err((r, p, e.0)))
    }

    /// Indices of the routes whose patterns match `path`, in file order.
    fn matching_routes(&self, path: &str) -> Vec<usize> {
        self.inner.matching_routes(path)
    }

    /// The names `params(route, ...)` can produce (named and unnamed groups), in pattern order.
    fn param_names(&self, route: usize) -> PyResult<Vec<String>> {
        self.inner
            .param_names(route)
            .ok_or_else(|| PyIndexError::new_err(format!("there is no route {route}")))
    }

    /// The named parameters of `route` for `path`, or None when it does not match.
    fn params(&self, route: usize, path: &str) -> Option<HashMap<String, String>> {
        self.inner
            .params(route, path)
            .map(|v| v.into_iter().collect())
    }
}
