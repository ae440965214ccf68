//! `best_language`: a thin wrapper over [`crate::locale`].

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::locale;

/// The entry of `supported` that best fits an Accept-Language header, or None.
#[pyfunction]
pub fn best_language(
    accept_language: &Bound<'_, PyString>,
    supported: Vec<String>,
) -> Option<String> {
    let accept_language = accept_language.to_string_lossy();
    locale::best_language(&accept_language, &supported).map(|i| supported[i].clone())
}
