"""Errors from the core say what went wrong by `.kind`, so callers (the config loader, the request
pipeline) never read an error's wording; and the faults found by testing (encoded control
characters in paths, unnamed route parameters) are fixed by kind, not by input."""

from __future__ import annotations

import pytest

from gateway import _core

STRONG = "k" * 64
PEM = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"


@pytest.mark.parametrize(
    ("args", "kwargs", "kind", "exc"),
    [
        (("short",), {}, "weak_key", ValueError),
        ((STRONG[:40], ["HS512"]), {}, "weak_key", ValueError),
        (({"k1": "short"},), {}, "weak_key", ValueError),
        ((PEM,), {"allow_weak_key": True}, "public_key_as_secret", ValueError),
        (("ssh-rsa AAAAB3NzaC1yc2E" + "A" * 40,), {}, "public_key_as_secret", ValueError),
        (("",), {}, "empty_key", ValueError),
        (({},), {}, "empty_key", ValueError),
        ((STRONG, ["HS999"]), {}, "unknown_algorithm", ValueError),
        ((STRONG, ["none"]), {}, "unknown_algorithm", ValueError),
        ((STRONG, ["RS256"]), {}, "key_type_mismatch", ValueError),  # a secret is not a public key
        ((STRONG, ["Ed448"]), {}, "unsupported_algorithm", ValueError),
        ((STRONG, ["HS256", "RS256"]), {}, "key_type_mismatch", ValueError),
        ((STRONG, []), {}, "bad_option", ValueError),
        ((STRONG,), {"leeway": -1}, "bad_option", ValueError),
        ((STRONG,), {"audience": []}, "bad_option", ValueError),
        ((STRONG,), {"issuer": []}, "bad_option", ValueError),
        ((STRONG,), {"max_length": 4}, "bad_option", ValueError),
        ((12345,), {}, "bad_option", TypeError),
        ((STRONG, "HS256"), {"require": [1]}, "bad_option", TypeError),
    ],
)
def test_verifier_construction_errors_carry_a_kind(args: tuple, kwargs: dict, kind: str, exc: type) -> None:
    with pytest.raises(exc) as info:
        _core.Verifier(*args, **kwargs)
    assert getattr(info.value, "kind", None) == kind, str(info.value)
    assert str(info.value), "the message still says it in words"


def test_weak_key_message_names_the_lengths_not_the_key() -> None:
    with pytest.raises(ValueError) as info:
        _core.Verifier("sixteen-byte-key")
    assert "16 bytes" in str(info.value) and "sixteen-byte-key" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("dashboard", "not_absolute"),
        ("/a%2fb", "encoded_slash"),
        ("/a%5Cb", "encoded_slash"),
        ("/a\\b", "backslash"),
        ("/a;b=1", "semicolon"),
        ("/a%zz", "bad_percent_encoding"),
        ("/a%0", "bad_percent_encoding"),
        ("/" + "a" * 9000, "path_too_long"),
        ("/dashboard%00", "control_character"),
        ("/dashboard%09", "control_character"),
        ("/dashboard%0a", "control_character"),
        ("/dashboard%0D%0A", "control_character"),
        ("/dashboard%7f", "control_character"),
        ("/dashboard%7F", "control_character"),
        ("/dashboard%1b[31m", "control_character"),
        ("/a\tb", "control_character"),
        ("/a\x7fb", "control_character"),
    ],
)
def test_normalize_path_refusals_carry_a_kind(raw: str, kind: str) -> None:
    with pytest.raises(ValueError) as info:
        _core.normalize_path(raw)
    assert getattr(info.value, "kind", None) == kind, str(info.value)


@pytest.mark.parametrize("byte", [*range(0x20), 0x7F])
def test_every_control_character_is_refused_raw_and_encoded(byte: int) -> None:
    for raw in (f"/x%{byte:02x}y".encode(), f"/x%{byte:02X}y".encode(), b"/x" + bytes([byte]) + b"y"):
        with pytest.raises(ValueError) as info:
            _core.normalize_path(raw)
        assert info.value.kind == "control_character", raw  # type: ignore[attr-defined]


def test_characters_next_to_controls_still_pass() -> None:
    assert _core.normalize_path("/x%20y") == "/x%20y"
    assert _core.normalize_path("/x%7Ey") == "/x~y"
    assert _core.normalize_path("/x%80y") == "/x%80y"


@pytest.mark.parametrize(
    ("patterns", "path", "names"),
    [
        (["/(api|rpc)/:x"], "/rpc/7", ["0", "x"]),
        (["/dashboard/:path*"], "/dashboard/a/b", ["path"]),
        (["/u/:id(\\d+)/(edit|view)"], "/u/1/view", ["id", "0"]),
        (["/static"], "/static", []),
    ],
)
def test_param_names_are_exactly_what_params_produces(patterns: list[str], path: str, names: list[str]) -> None:
    rs = _core.RouteSet([patterns])
    params = rs.params(0, path)
    assert params is not None
    assert rs.param_names(0) == names
    assert sorted(params) == sorted(names)


def test_param_names_cover_every_pattern_of_a_route() -> None:
    rs = _core.RouteSet([["/a/:x/(b|c)", "/d/:y/:x"], ["/:path*"]])
    assert rs.param_names(0) == ["x", "0", "y"]
    assert rs.param_names(1) == ["path"]
    with pytest.raises(IndexError):
        rs.param_names(2)


@pytest.mark.parametrize(
    ("cls", "kind", "status"),
    [
        (_core.MalformedToken, "malformed_token", 401),
        (_core.InvalidSignature, "invalid_signature", 401),
        (_core.AlgorithmNotAllowed, "algorithm_not_allowed", 401),
        (_core.ExpiredToken, "expired_token", 401),
        (_core.NotYetValid, "not_yet_valid", 401),
        (_core.InvalidIssuer, "invalid_issuer", 401),
        (_core.InvalidAudience, "invalid_audience", 401),
        (_core.MissingClaim, "missing_claim", 401),
        (_core.UpstreamError, "upstream_failed", 502),
        (_core.UpstreamConnectError, "upstream_connect", 502),
        (_core.UpstreamTimeout, "upstream_timeout", 504),
    ],
)
def test_every_core_exception_class_has_a_kind_with_a_status(cls: type, kind: str, status: int) -> None:
    assert cls.kind == kind  # type: ignore[attr-defined]
    assert _core.ERROR_STATUS[kind] == status


def test_a_raised_token_error_answers_kind() -> None:
    with pytest.raises(_core.JWTError) as info:
        _core.Verifier(STRONG).verify("not.a.token")
    assert info.value.kind == "malformed_token"  # type: ignore[attr-defined]


def test_error_status_covers_the_value_error_kinds() -> None:
    for kind in ("weak_key", "public_key_as_secret", "bad_option", "encoded_slash", "control_character", "path_too_long"):
        assert kind in _core.ERROR_STATUS
    assert _core.ERROR_STATUS["encoded_slash"] == 400
