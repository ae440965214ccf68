//! The Python boundary: `gateway._core`. Every PyO3 line of the crate is in this folder:
//! module init here, the exception tree in [`errors`], and one thin wrapper module per stage of
//! the core ([`request`], [`routing`], [`jwt`] with [`claims`], [`locale`], [`limits`], [`observe`], [`upstream`]).

mod claims;
mod convert;
mod errors;
mod jwt;
mod keys;
mod limits;
mod locale;
mod observe;
mod request;
mod routing;
mod token_cache;
mod upstream;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
pub mod _core {
    #[pymodule_export]
    use super::jwt::{
        b64url_decode, b64url_encode, encode, unverified_claims, unverified_header, verify,
        Verifier,
    };

    #[pymodule_export]
    use super::request::{
        cookie_value, normalize_path, percent_encode, set_cookie, HeaderNames, Request,
    };

    #[pymodule_export]
    use super::routing::{compile_pattern, LinearRegex, RouteSet};

    #[pymodule_export]
    use super::locale::best_language;

    #[pymodule_export]
    use super::limits::{monotonic_us, RateTable};

    #[pymodule_export]
    use super::observe::{random_hex, Correlation, Tally};

    #[pymodule_export]
    use super::errors::{
        AlgorithmNotAllowed, ExpiredToken, InvalidAudience, InvalidIssuer, InvalidSignature,
        JWTError, KeyNotFound, KeySetUnavailable, MalformedToken, MissingClaim, NotYetValid,
    };

    #[pymodule_export]
    use super::keys::KeySet;

    #[pymodule_export]
    use super::errors::{UpstreamConnectError, UpstreamError, UpstreamTLSError, UpstreamTimeout};

    #[pymodule_export]
    use super::upstream::{BodySender, OriginTls, Upstream, UpstreamResponse};

    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::types::PyModuleMethods;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        // The auth stage needs the bound to know whether `Request.cookies` handed over every one.
        m.add(
            "MAX_SAME_NAME_COOKIES",
            crate::request::head::MAX_SAME_NAME_COOKIES,
        )?;
        super::errors::init(m)
    }
}
