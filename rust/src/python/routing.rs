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

/// A regular expression matched in linear time (the `regex` crate: no backtracking, so no pattern
/// can make a match take more than time proportional to the text): claim rules' `matches`, whose
/// text a token's holder chooses. `fullmatch` is true when the whole text matches.
#[pyclass(frozen, module = "gateway._core")]
pub struct LinearRegex {
    whole: regex::Regex,
    pattern: String,
}

#[pymethods]
impl LinearRegex {
    /// Raises ValueError for a pattern the engine refuses (syntax, look-around, back-references) or
    /// one whose compiled program is over 1 MiB.
    #[new]
    fn new(pattern: &str) -> PyResult<Self> {
        let whole = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(LinearRegex {
            whole,
            pattern: pattern.to_owned(),
        })
    }

    fn fullmatch(&self, text: &str) -> bool {
        self.whole.is_match(text)
    }

    #[getter]
    fn pattern(&self) -> &str {
        &self.pattern
    }

    fn __repr__(&self) -> String {
        format!("LinearRegex({:?})", self.pattern)
    }
}
