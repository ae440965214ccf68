"""gateway._core.percent_encode builds the `next` of login redirects: it must agree with
urllib.parse.quote(text, safe="") on every string, so a redirect can never carry a raw `/`, `\\`,
`?`, `#` or control character."""

from urllib.parse import quote, unquote

from hypothesis import given
from hypothesis import strategies as st

from gateway import _core


@given(st.text())
def test_agrees_with_quote_and_round_trips(text: str) -> None:
    try:
        expected = quote(text, safe="")
    except UnicodeEncodeError:  # lone surrogates cannot be a str the core receives
        return
    assert _core.percent_encode(text) == expected
    assert unquote(_core.percent_encode(text)) == text


def test_redirect_targets_stay_relative() -> None:
    for hostile in ["//evil.example", "/\\evil.example", "/%2F%2Fevil", "http://evil", "/a?b#c"]:
        out = _core.percent_encode(hostile)
        assert set(out) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%")
