"""[server] metrics_listen, request_id, trace, otlp_endpoint: what the loader and `gateway check`
accept and refuse (issue 12), and the W3C traceparent parser the correlation stage uses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from gateway.stages.correlation import parse_traceparent, random_hex
from gateway.tracing import traces_url
from tests.harness import GATEWAY_BIN, gateway_env

SITE = """
[origins.web]
url = "http://127.0.0.1:9000"

[[routes]]
match = "/:path*"
origin = "web"
"""


def server(text: str) -> str:
    return "[server]\n" + text + "\n" + SITE


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load(tmp_path / "gateway.toml", text)
    return e.value.problems


def test_the_documented_keys_load(tmp_path: Path) -> None:
    cfg = load(tmp_path / "g.toml", server('metrics_listen = "127.0.0.1:9464"\nrequest_id = "X-Request-Id"\ntrace = true\notlp_endpoint = "http://127.0.0.1:4318"'))
    s = cfg.server
    assert (s.metrics_listen, s.request_id, s.trace, s.otlp_endpoint) == ("127.0.0.1:9464", "X-Request-Id", True, "http://127.0.0.1:4318")
    # The client's copies of the headers the gateway sets are never forwarded as they came.
    for drop_untrusted, drop_trusted in cfg.forward_drop:
        for names in (drop_untrusted, drop_trusted):
            assert {"x-request-id", "traceparent", "tracestate"} <= set(names.names())


def test_everything_is_off_by_default(tmp_path: Path) -> None:
    s = load(tmp_path / "g.toml", SITE).server
    assert (s.metrics_listen, s.request_id, s.trace, s.otlp_endpoint) == (None, None, False, None)
    assert s.correlation_headers == frozenset()


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ('metrics_listen = "9464"', "server.metrics_listen", 'expected "HOST:PORT"'),
        ("metrics_listen = 9464", "server.metrics_listen", "expected a string"),
        ('metrics_listen = "127.0.0.1:8080"', "server.metrics_listen", "a listener of its own"),
        ('request_id = "X Request Id"', "server.request_id", "expected a header name"),
        ('request_id = "X-' + "Id" * 40 + '"', "server.request_id", "up to 64 characters"),
        ('request_id = ""', "server.request_id", "expected a header name"),
        ('request_id = "Authorization"', "server.request_id", "a header the gateway manages"),
        ('request_id = "traceparent"', "server.request_id", "a header the gateway manages"),
        ('request_id = "X-Forwarded-For"', "server.request_id", "a header the gateway manages"),
        # `_` is read as `-` (CGI, WSGI and Rack make both HTTP_X_FORWARDED_FOR)
        ('request_id = "X_Forwarded_For"', "server.request_id", "a header the gateway manages"),
        # Echoed on every answer: a name HTTP gives a meaning to would redirect, set a cookie, ...
        ('request_id = "Location"', "server.request_id", "HTTP gives a meaning to"),
        ('request_id = "Set_Cookie"', "server.request_id", "HTTP gives a meaning to"),
        ('request_id = "Access-Control-Allow-Origin"', "server.request_id", "HTTP gives a meaning to"),
        ('request_id = "RateLimit"', "server.request_id", "HTTP gives a meaning to"),
        ('request_id = "Vary"', "server.request_id", "HTTP gives a meaning to"),
        ("request_id = true", "server.request_id", "expected a string"),
        ('trace = "yes"', "server.trace", "expected true or false"),
        ('trace = true\notlp_endpoint = "127.0.0.1:4318"', "server.otlp_endpoint", "OTLP/HTTP URL"),
        ('trace = true\notlp_endpoint = "ftp://collector:4318"', "server.otlp_endpoint", "OTLP/HTTP URL"),
        ('otlp_endpoint = "http://127.0.0.1:4318"', "server.otlp_endpoint", "expected trace = true"),
    ],
)
def test_bad_values_are_refused_with_file_key_and_expectation(tmp_path: Path, line: str, key: str, expected: str) -> None:
    found = problems(tmp_path, server('listen = "127.0.0.1:8080"\n' + line))
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'gateway.toml'}: {key}: ") and expected in found[0], found


def test_a_route_or_a_claim_may_not_set_the_request_id_or_trace_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    text = """
[server]
request_id = "X-Correlation-Id"
trace = true

[origins.web]
url = "http://127.0.0.1:9000"

[auth.s]
secret = "env:JWT_SECRET"
forward_claims = { sub = "x-correlation-id" }

[[routes]]
match = "/:path*"
origin = "web"
request_headers = { "traceparent" = "00-x", "X-Correlation-ID" = "mine" }
"""
    found = problems(tmp_path, text)
    assert any("auth.s.forward_claims.sub" in p and "request_id or trace sets" in p for p in found), found
    assert any("routes[0].request_headers.traceparent" in p for p in found), found
    assert any("routes[0].request_headers.X-Correlation-ID" in p for p in found), found


def test_no_other_key_may_write_the_gateways_ids_in_any_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Claims, experiments and route templates, toward the origin; route templates toward the client
    (the request id is echoed): each refused with its key, `_` read as `-`."""
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    text = """
[server]
request_id = "X-Correlation-Id"
trace = true

[origins.web]
url = "http://127.0.0.1:9000"

[auth.s]
secret = "env:JWT_SECRET"
forward_claims = { sub = "X_Correlation_Id" }

[experiments.e]
cookie = "e"
variants = { a = 1 }
header = "TraceParent"

[[routes]]
match = "/:path*"
origin = "web"
experiment = "e"
request_headers = { "x_CORRELATION-id" = "x" }
response_headers = { "x_correlation_id" = "mine", "traceparent" = "fine: the gateway sends the client none" }
"""
    found = problems(tmp_path, text)
    for key in ("auth.s.forward_claims.sub", "experiments.e.header", "routes[0].request_headers.x_CORRELATION-id", "routes[0].response_headers.x_correlation_id"):
        assert any(f": {key}: " in p and "request_id or trace sets" in p for p in found), (key, found)
    assert len(found) == 4, found


def test_check_refuses_otlp_without_the_sdk_with_the_install_command(tmp_path: Path) -> None:
    # A module named `opentelemetry` that is not the package: importing the SDK fails exactly as
    # when the [otel] extra is not installed.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "opentelemetry.py").write_text("")
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(server('trace = true\notlp_endpoint = "http://127.0.0.1:4318"'))
    env = gateway_env({"PYTHONPATH": str(shadow) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    r = subprocess.run([GATEWAY_BIN, "check", "--config", str(cfg)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{cfg}: server.otlp_endpoint: needs the OpenTelemetry SDK, which is not installed" in r.stdout
    assert "pip install 'gateway[otel]'" in r.stdout
    # With the SDK importable, the same file is fine.
    ok = subprocess.run([GATEWAY_BIN, "check", "--config", str(cfg)], env=gateway_env(), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
        ("https://otel.example.com/otlp", "https://otel.example.com/otlp/v1/traces"),
        ("http://[::1]:4318/v1/traces", "http://[::1]:4318/v1/traces"),
        ("collector:4318", None),
        ("http://a b:4318", None),
    ],
)
def test_otlp_endpoint_is_a_base_url_like_the_sdk_environment_variable(endpoint: str, url: str | None) -> None:
    assert traces_url(endpoint) == url


TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (f"00-{TRACE}-{SPAN}-01", (TRACE, SPAN, "01")),
        (f"00-{TRACE}-{SPAN}-00", (TRACE, SPAN, "00")),
        # §3.2.4: a later version is read by its first four fields, followed by "-" and more.
        (f"cc-{TRACE}-{SPAN}-01", (TRACE, SPAN, "01")),
        (f"cc-{TRACE}-{SPAN}-01-what-the-future-holds", (TRACE, SPAN, "01")),
        (f"cc-{TRACE}-{SPAN}-01.x", None),
        (f"00-{TRACE}-{SPAN}-01-extra", None),  # version 00 is exactly 55 characters
        (f"ff-{TRACE}-{SPAN}-01", None),  # version ff is invalid
        (f"00-{TRACE.upper()}-{SPAN}-01", None),  # lowercase hex only
        (f"00-{'0' * 32}-{SPAN}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE[:-1]}-{SPAN}-01", None),
        (f"00-{TRACE}-{SPAN}-1", None),
        (f"00_{TRACE}_{SPAN}_01", None),
        (f" 00-{TRACE}-{SPAN}-01", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_traceparent_is_parsed_as_w3c_trace_context_says(value: str, parsed: tuple[str, str, str] | None) -> None:
    assert parse_traceparent(value) == parsed


def test_random_ids_are_hex_of_the_asked_length_and_do_not_repeat() -> None:
    ids = {random_hex(16) for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 32 and int(i, 16) != 0 and i == i.lower() for i in ids)
    spans = [random_hex(8) for _ in range(1000)]
    assert all(len(s) == 16 for s in spans)


def test_a_forked_child_never_hands_out_its_parents_pooled_ids() -> None:
    """The core draws ids from a pool of random bytes per thread; a worker forked after its parent
    drew one must not replay the rest of the parent's pool (rust/src/observe/ids.rs)."""
    from gateway import _core

    random_hex(16)  # the parent's pool is filled now
    children = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its next ids, then out without running the parent's cleanup
            try:
                os.close(read)
                ids = [random_hex(16) for _ in range(3)] + [_core.Correlation("X-Request-Id", True, False).begin(_bare_request())[0]]
                os.write(write, " ".join(ids).encode())
            except BaseException as e:  # shown by the assertion below
                os.write(write, repr(e).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as f:
            children.append(f.read().split())
        os.waitpid(pid, 0)
    parent = [random_hex(16) for _ in range(3)]
    drawn = parent + children[0] + children[1]
    assert all(len(i) == 32 for i in drawn) and len(children[0]) == len(children[1]) == 4, children
    assert len(set(drawn)) == len(drawn), drawn


def _bare_request() -> object:
    from gateway.request import from_url

    return from_url("GET", "http://example.com/", [], "127.0.0.1")


def test_the_cores_id_and_tally_refuse_bad_arguments() -> None:
    from gateway import _core

    for n in (0, 33, -1):
        with pytest.raises((ValueError, OverflowError)):
            random_hex(n)
    assert len(random_hex(32)) == 64
    for buckets in ([], [0.1, 0.1], [0.2, 0.1], [0.1, float("inf")], [float("nan")]):
        with pytest.raises(ValueError, match="bucket"):
            _core.Tally(buckets, [1.0], [1.0])
