"""gateway.cookie_value, gateway.set_cookie and gateway.best_language."""

from __future__ import annotations

import time

import gateway
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- cookie_value -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name", "expected"),
    [
        ("a=1; b=2", "a", "1"),
        ("a=1; b=2", "b", "2"),
        ("a=1;b=2", "b", "2"),
        ("a=1; b=2; a=3", "a", "1"),
        ("a=1; a=2; a=3", "a", "1"),
        ("b=0; a=first; a=second", "a", "first"),
        ('a="hello"', "a", "hello"),
        ('x=1; a="quoted-value"; b=2', "a", "quoted-value"),
        ('a=""', "a", ""),
        ("a=", "a", ""),
        ("a=; b=2", "a", ""),
        ("a=b=c", "a", "b=c"),
        ("  a=1  ;  b=2  ", "a", "1"),
        ("  a=1  ;  b=2  ", "b", "2"),
        ("a = 1 ; b = 2", "b", "2"),
        ("\ta=1;\tb=2\t", "b", "2"),
        ("ab=1; a=2", "a", "2"),
        ("xa=1; a=2", "a", "2"),
        ("A=1; a=2", "a", "2"),
        ("a=1; A=2", "A", "2"),
        ("junk; a=1", "a", "1"),
        (";;==; a=1", "a", "1"),
        ("a=1;;;", "a", "1"),
        ("auth-token=eyJ.x.y; ab-group=control", "ab-group", "control"),
        ("auth-token=eyJ.x.y; ab-group=control", "auth-token", "eyJ.x.y"),
    ],
)
def test_cookie_value(header: str, name: str, expected: str) -> None:
    assert gateway.cookie_value(header, name) == expected


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("", "a"),
        ("a=1", "b"),
        ("A=1", "a"),
        ("a=1", "A"),
        ("ab=1", "a"),
        ("a=1", "ab"),
        (";;==;", "a"),
        (";;==;", "="),
        ("b", "b"),
        ("b; c", "b"),
        ("=", "a"),
        ("===", "a"),
        (";", "a"),
        ("a", "a"),
    ],
)
def test_cookie_missing(header: str, name: str) -> None:
    assert gateway.cookie_value(header, name) is None


def test_cookie_value_on_huge_headers_is_quick() -> None:
    big_value = "x" * (64 * 1024)
    header = f"a={big_value}; b=2"
    many = "; ".join(f"c{i}={i}" for i in range(10_000))
    junk = ";=" * 32 * 1024
    start = time.perf_counter()
    for _ in range(20):
        assert gateway.cookie_value(header, "a") == big_value
        assert gateway.cookie_value(header, "b") in {"2", None}
        assert gateway.cookie_value(header, "zz") is None
        assert gateway.cookie_value(many, "c0") == "0"
        assert gateway.cookie_value(many, "c9999") in {"9999", None}  # work may be bounded
        assert gateway.cookie_value(many, "missing") is None
        assert gateway.cookie_value(junk, "a") is None
        assert gateway.cookie_value("x" * 65536, "x") is None
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("header", ["a=1\x00; b=2", "a=\r\n1; b=2", "é=1; b=2", "a=😀; b=2", "\x7f; b=2", "\\; b=2"])
def test_cookie_value_odd_characters(header: str) -> None:
    assert gateway.cookie_value(header, "b") == "2"


def test_cookie_value_wrong_types() -> None:
    with pytest.raises(TypeError):
        gateway.cookie_value(None, "a")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gateway.cookie_value("a=1", 1)  # type: ignore[arg-type]


@SETTINGS
@given(header=st.text(max_size=500), name=st.text(max_size=10))
def test_cookie_value_never_raises(header: str, name: str) -> None:
    result = gateway.cookie_value(header, name)
    assert result is None or isinstance(result, str)
    if result is not None:
        assert result in header


@SETTINGS
@given(header=st.text(alphabet=st.sampled_from(list(';= \t"a\\,\x00')), max_size=200), name=st.sampled_from(["a", "=", ";", " a", '"']))
def test_cookie_value_never_raises_on_separator_soup(header: str, name: str) -> None:
    result = gateway.cookie_value(header, name)
    assert result is None or isinstance(result, str)


def test_cookie_value_with_lone_surrogates() -> None:
    """Hostile str input also includes lone surrogates; at most None, never an exception."""
    assert gateway.cookie_value("a=\udc80; b=2", "b") in {"2", None}
    assert gateway.cookie_value("a=1", "\ud800") is None


def test_best_language_with_lone_surrogates() -> None:
    """A header entry holding a lone surrogate is a malformed entry: ignored, not an exception."""
    assert gateway.best_language("\ud800, ko", ["ko"]) in {"ko", None}


TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
OCTET_CHARS = "".join(
    chr(b) for b in [0x21, *range(0x23, 0x2C), *range(0x2D, 0x3B), *range(0x3C, 0x5C), *range(0x5D, 0x7F)]
)


@SETTINGS
@given(
    pairs=st.lists(
        st.tuples(st.text(alphabet=TOKEN_CHARS[:6], min_size=1, max_size=3), st.text(alphabet=OCTET_CHARS, max_size=8)),
        max_size=30,
    ),
    name=st.text(alphabet=TOKEN_CHARS[:6], min_size=1, max_size=3),
)
def test_cookie_value_is_the_first_match(pairs: list[tuple[str, str]], name: str) -> None:
    header = "; ".join(f"{n}={v}" for n, v in pairs)
    expected = next((v for n, v in pairs if n == name), None)
    assert gateway.cookie_value(header, name) == expected


# --- set_cookie -------------------------------------------------------------------------------------


def attrs(cookie: str) -> list[str]:
    return cookie.split("; ")[1:]


def test_set_cookie_exact() -> None:
    assert (
        gateway.set_cookie("ab-group", "control", max_age=86400)
        == "ab-group=control; Path=/; Max-Age=86400; SameSite=Lax; Secure"
    )


def test_set_cookie_defaults() -> None:
    cookie = gateway.set_cookie("ab-group", "control")
    assert cookie.startswith("ab-group=control; ")
    assert sorted(attrs(cookie)) == sorted(["Path=/", "SameSite=Lax", "Secure"])


def test_set_cookie_attributes() -> None:
    cookie = gateway.set_cookie(
        "sid", "abc", max_age=60, path="/app", domain="example.com", secure=True, http_only=True, same_site="Strict"
    )
    assert cookie.startswith("sid=abc; ")
    assert sorted(attrs(cookie)) == sorted(
        ["Path=/app", "Domain=example.com", "Max-Age=60", "SameSite=Strict", "Secure", "HttpOnly"]
    )
    assert attrs(gateway.set_cookie("a", "b", path=None, same_site=None, secure=False)) == []
    assert "SameSite=None" in attrs(gateway.set_cookie("a", "b", same_site="None", secure=True))
    assert "Secure" not in attrs(gateway.set_cookie("a", "b", secure=False))
    assert gateway.set_cookie("a", "").startswith("a=; ")
    assert gateway.set_cookie("a", "x=y/z:1").startswith("a=x=y/z:1; ")


def test_set_cookie_max_age_zero_expires_in_1970() -> None:
    cookie = gateway.set_cookie("auth-token", "", max_age=0)
    assert "Max-Age=0" in attrs(cookie)
    expires = [a for a in attrs(cookie) if a.startswith("Expires=")]
    assert len(expires) == 1 and "1970" in expires[0]
    assert not any(a.startswith("Expires=") for a in attrs(gateway.set_cookie("a", "b", max_age=10)))


def test_same_site_none_needs_secure() -> None:
    with pytest.raises(ValueError):
        gateway.set_cookie("a", "b", same_site="None", secure=False)


UNSAFE = ["\r", "\n", "\r\n", ";", " ", '"', ",", "\t", "\x00", "\x7f", "\\", "é", "😀"]


@pytest.mark.parametrize("bad", UNSAFE, ids=repr)
def test_set_cookie_unsafe_name(bad: str) -> None:
    for name in (f"a{bad}b", bad, f"{bad}a", f"a{bad}"):
        with pytest.raises(ValueError):
            gateway.set_cookie(name, "v")


@pytest.mark.parametrize("bad", UNSAFE, ids=repr)
def test_set_cookie_unsafe_value(bad: str) -> None:
    for value in (f"a{bad}b", bad, f"{bad}a", f"a{bad}"):
        with pytest.raises(ValueError):
            gateway.set_cookie("a", value)


@pytest.mark.parametrize("name", ["", "a=b", "a(b)", "a<b>", "a@b", "a:b", "a/b", "a[b]", "a?b", "a{b}"])
def test_set_cookie_name_must_be_a_token(name: str) -> None:
    with pytest.raises(ValueError):
        gateway.set_cookie(name, "v")


def test_set_cookie_injection_through_attributes() -> None:
    with pytest.raises(ValueError):
        gateway.set_cookie("a", "b", path="/x; Domain=evil.example")
    with pytest.raises(ValueError):
        gateway.set_cookie("a", "b", path="/x\r\nSet-Cookie: evil=1")
    with pytest.raises(ValueError):
        gateway.set_cookie("a", "b", domain="example.com; Secure")
    with pytest.raises(ValueError):
        gateway.set_cookie("a", "b", domain="example.com\r\n")
    with pytest.raises(ValueError):
        gateway.set_cookie("a", "b", same_site="Lax; HttpOnly")


@SETTINGS
@given(name=st.text(max_size=12), value=st.text(max_size=20))
def test_set_cookie_never_emits_a_header_break(name: str, value: str) -> None:
    try:
        cookie = gateway.set_cookie(name, value)
    except ValueError:
        return
    assert cookie.startswith(f"{name}={value}; ")
    assert not any(c in cookie for c in "\r\n\x00")
    assert ";" not in name + value and " " not in name + value
    assert gateway.cookie_value(cookie.split(";")[0], name) == (value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value)


# --- best_language ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "supported", "expected"),
    [
        ("ko-KR,ko;q=0.9,en;q=0.8", ["en", "ko"], "ko"),
        ("ko-KR", ["en", "ko"], "ko"),
        ("en", ["en-US", "ko"], "en-US"),
        ("en-US", ["en", "ko"], "en"),
        ("en;q=0.5, ko;q=0.9", ["en", "ko"], "ko"),
        ("en;q=0.5, ko;q=0.4", ["en", "ko"], "en"),
        ("en, ko", ["ko", "en"], "en"),
        ("ko, en", ["en", "ko"], "ko"),
        ("en;q=0.8, ko;q=0.8", ["ko", "en"], "en"),
        ("fr, ko;q=0.1", ["en", "ko"], "ko"),
        ("*", ["en", "ko"], "en"),
        ("ko;q=0, *", ["ko", "en"], "en"),
        ("fr, *;q=0.1", ["ja", "ko"], "ja"),
        ("en;q=0, ko", ["en", "ko"], "ko"),
        ("en;q=0.0, ko;q=0.001", ["en", "ko"], "ko"),
        ("EN-us", ["en-US"], "en-US"),
        ("ko", ["KO"], "KO"),
        ("Ko-kr", ["ko-KR", "en"], "ko-KR"),
        ("zh-Hant-TW", ["zh", "zh-Hant"], "zh-Hant"),
        ("en;q=abc, ko", ["en", "ko"], "ko"),
        ("en;q=2, ko;q=0.1", ["en", "ko"], "ko"),
        ("en;q=1.0001, ko;q=0.1", ["en", "ko"], "ko"),
        ("en;q=-1, ko;q=0.1", ["en", "ko"], "ko"),
        ("!!!, ko", ["en", "ko"], "ko"),
        (";;,,, ko;q=0.5", ["en", "ko"], "ko"),
        ("en-, ko", ["en", "ko"], "ko"),
        ("toolonglanguage, ko", ["toolonglanguage", "ko"], "ko"),
        ("en;q=1.000", ["en"], "en"),
        ("en ; q=0.5 , ko ; q=0.4", ["en", "ko"], "en"),
    ],
)
def test_best_language(header: str, supported: list[str], expected: str) -> None:
    assert gateway.best_language(header, supported) == expected


@pytest.mark.parametrize(
    ("header", "supported"),
    [
        ("", ["en"]),
        ("fr", ["en", "ko"]),
        ("ko;q=0", ["ko"]),
        ("ko;q=0.000", ["ko"]),
        ("*;q=0", ["en"]),
        ("en", []),
        ("e", ["en"]),
        (";;==;", ["en"]),
        ("en;q=abc", ["en"]),
    ],
)
def test_best_language_none(header: str, supported: list[str]) -> None:
    assert gateway.best_language(header, supported) is None


def test_best_language_prefix_picks_a_supported_variant() -> None:
    assert gateway.best_language("en", ["en-GB", "en-US"]) in {"en-GB", "en-US"}
    assert gateway.best_language("en", ("ko", "en-GB")) == "en-GB"


def test_best_language_returns_the_supported_object_text() -> None:
    supported = ["en-us", "KO-kr"]
    assert gateway.best_language("ko-KR", supported) == "KO-kr"
    assert gateway.best_language("EN-US", supported) == "en-us"


def test_best_language_on_huge_headers_is_quick() -> None:
    many = ", ".join(f"x{i:04d};q=0.5" for i in range(10_000)) + ", ko"
    huge = "en;q=0.1," + "a" * 65536
    start = time.perf_counter()
    for _ in range(20):
        assert gateway.best_language(many, ["ko"]) in {"ko", None}
        assert gateway.best_language(huge, ["en", "ko"]) in {"en", None}
        assert gateway.best_language("," * 65536, ["en"]) is None
    assert time.perf_counter() - start < 2.0


@SETTINGS
@given(header=st.text(max_size=300), supported=st.lists(st.text(max_size=12), max_size=5))
def test_best_language_never_raises(header: str, supported: list[str]) -> None:
    result = gateway.best_language(header, supported)
    assert result is None or result in supported


@SETTINGS
@given(
    header=st.text(alphabet=st.sampled_from(list("enko-KRUS*;q=0.1, \t")), max_size=80),
    supported=st.lists(st.sampled_from(["en", "ko", "en-US", "ko-KR", "ja"]), max_size=4),
)
def test_best_language_never_raises_on_near_misses(header: str, supported: list[str]) -> None:
    result = gateway.best_language(header, supported)
    assert result is None or result in supported
