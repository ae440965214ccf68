"""Claim rules (issue 12): a route's ``require = { all = [...], any = [...] }`` on a verified token.

Served by a real `gateway serve` with a RecordingOrigin, with real tokens: each predicate passing
and failing, nested paths, space-separated scopes, missing claims and claims of the wrong type (a
number where an array is expected, an object where a string is) — always 403 or the origin, never a
500. A failing token on a redirect policy gets 403, not the login page; the access log says
``forbidden``; explain names the rule that failed. The config side: every malformed rule is refused
with the file, the key and the expected form. A property (hypothesis): no claims value makes the
rules raise.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import gateway
import pytest
from gateway.claim_rules import ClaimRules
from gateway.config import ConfigError, load
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import GATEWAY_BIN, SECRET, Gateway, gateway_env, gateway_serve, write_config
from tests.recording_origin import RecordingOrigin

# One route per rule, so each predicate is served on its own; the example is /admin.
RULES = {
    "admin": 'all = [ { claim = "roles", contains = "admin" } ], any = [ { claim = "org.tier", in = ["pro", "team"] }, { claim = "scope", contains = "admin:all" } ]',
    "equals": 'all = [ { claim = "tenant", equals = "acme" } ]',
    "equals-num": 'all = [ { claim = "level", equals = 3 } ]',
    "equals-bool": 'all = [ { claim = "email_verified", equals = true } ]',
    "in": 'all = [ { claim = "org.tier", in = ["pro", "team"] } ]',
    "contains": 'all = [ { claim = "scope", contains = "read:reports" } ]',
    "matches": 'all = [ { claim = "email", matches = "[a-z.]+@example\\\\.com" } ]',
    "exists": 'all = [ { claim = "org.id", exists = true } ]',
    "absent": 'all = [ { claim = "impersonator", exists = false } ]',
    "deep": 'all = [ { claim = "a.b.c.d", equals = "x" } ]',
    "dotted": 'all = [ { claim = ["https://example.com/claims", "roles"], contains = "admin" } ]',
}

CONFIG = """
[origins.web]
url = "http://127.0.0.1:{web}"

[auth.session]
secret = "env:JWT_SECRET"
token_from = ["cookie:auth-token", "bearer"]
on_missing = {{ redirect = "/login" }}
on_invalid = {{ redirect = "/login", clear_cookie = "auth-token" }}
"""
ROUTE = """
[[routes]]
match = "/{name}/:p*"
auth = "session"
require = {{ {rule} }}
origin = "web"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, RecordingOrigin]]:
    tmp = tmp_path_factory.mktemp("claims")
    with ExitStack() as stack:
        web = RecordingOrigin("web")
        stack.callback(web.close)
        text = CONFIG.format(web=web.port) + "".join(ROUTE.format(name=n, rule=r) for n, r in RULES.items())
        gw = stack.enter_context(gateway_serve(write_config(tmp, text)))
        yield gw, web


def token(**claims: Any) -> str:
    now = int(time.time())
    return gateway.encode({"sub": "alice", "iat": now, "exp": now + 600, **claims}, SECRET)


CASES: list[tuple[str, dict[str, Any], bool]] = [
    # the example: all roles contains admin, and any of org.tier / scope
    ("admin", {"roles": ["admin"], "org": {"tier": "pro"}}, True),
    ("admin", {"roles": ["user", "admin"], "scope": "read admin:all"}, True),
    ("admin", {"roles": "admin", "org": {"tier": "team"}}, True),  # a space-separated string
    ("admin", {"roles": ["admin"]}, False),  # no rule of any holds
    ("admin", {"roles": ["admin"], "org": {"tier": "free"}, "scope": "admin"}, False),
    ("admin", {"roles": ["administrator"], "org": {"tier": "pro"}}, False),
    ("admin", {"roles": "superadmin", "org": {"tier": "pro"}}, False),
    ("admin", {"roles": 5, "org": {"tier": "pro"}}, False),  # a number where an array is expected
    ("admin", {"roles": {"admin": True}, "org": {"tier": "pro"}}, False),
    ("admin", {"roles": None, "org": {"tier": "pro"}}, False),
    ("admin", {"roles": ["admin"], "org": "pro"}, False),  # not an object: no org.tier
    ("admin", {"roles": ["admin"], "org": ["tier"]}, False),
    ("admin", {"roles": ["admin"], "org": {"tier": ["pro"]}}, False),  # in compares the value itself
    ("equals", {"tenant": "acme"}, True),
    ("equals", {"tenant": "ACME"}, False),
    ("equals", {"tenant": ["acme"]}, False),
    ("equals", {}, False),
    ("equals-num", {"level": 3}, True),
    ("equals-num", {"level": 3.0}, True),
    ("equals-num", {"level": "3"}, False),  # never coerced
    ("equals-num", {"level": True}, False),
    ("equals-bool", {"email_verified": True}, True),
    ("equals-bool", {"email_verified": 1}, False),
    ("equals-bool", {"email_verified": "true"}, False),
    ("in", {"org": {"tier": "team"}}, True),
    ("in", {"org": {"tier": "Team"}}, False),
    ("in", {"org": {}}, False),
    ("contains", {"scope": "openid read:reports write"}, True),
    ("contains", {"scope": "read:reports"}, True),
    ("contains", {"scope": ["read:reports"]}, True),
    ("contains", {"scope": "read:reports-all"}, False),
    ("contains", {"scope": "openid read:reportsx"}, False),
    ("contains", {"scope": 42}, False),
    ("matches", {"email": "jo.ann@example.com"}, True),
    ("matches", {"email": "jo@example.com.evil.com"}, False),  # the whole value must match
    ("matches", {"email": "evil@example.computer"}, False),
    ("matches", {"email": ["jo@example.com"]}, False),
    ("matches", {"email": "a" * 5000 + "@example.com"}, False),  # over the length a pattern is run on
    ("exists", {"org": {"id": 0}}, True),
    ("exists", {"org": {"id": False}}, True),
    ("exists", {"org": {"id": None}}, False),  # null counts as absent
    ("exists", {"org": {}}, False),
    ("exists", {"org": 7}, False),
    ("absent", {}, True),
    ("absent", {"impersonator": "mallory"}, False),
    ("deep", {"a": {"b": {"c": {"d": "x"}}}}, True),
    ("deep", {"a": {"b": {"c": "d"}}}, False),
    ("deep", {"a.b.c.d": "x"}, False),  # a dotted path is nested objects, never a literal name
    ("dotted", {"https://example.com/claims": {"roles": ["admin"]}}, True),
    ("dotted", {"https://example": {"com/claims": {"roles": ["admin"]}}}, False),
]


@pytest.mark.parametrize(("name", "claims", "passes"), CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
def test_each_predicate_over_a_real_gateway(site: tuple[Gateway, RecordingOrigin], name: str, claims: dict[str, Any], passes: bool) -> None:
    gw, web = site
    mark = web.mark()
    r = gw.get(f"/{name}/x", headers={"Authorization": f"Bearer {token(**claims)}", "Accept": "text/html"})
    if passes:
        assert r.status_code == 200, r.text
        assert len(web.since(mark)[0]) == 1
    else:
        assert r.status_code == 403, r.text
        assert r.json() == {"error": "forbidden", "detail": "the token's claims do not satisfy this route's require rules"}
        assert r.headers["www-authenticate"] == 'Bearer realm="gateway", error="insufficient_scope"'
        assert web.since(mark) == ([], [])


def test_a_failing_cookie_session_gets_403_not_the_login_redirect_and_keeps_its_cookie(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, _ = site
    with gw.client() as c:
        c.cookies.set("auth-token", token(roles=["user"]))
        r = c.get("/admin/dashboard", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 403 and "location" not in r.headers
    assert "set-cookie" not in r.headers  # a valid session is not cleared
    line = gw.wait_log(lambda e: e["path"] == "/admin/dashboard")
    assert line is not None and line["auth"] == "forbidden" and line["status"] == 403


def test_the_response_never_says_which_claim_failed(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, _ = site
    r = gw.get("/admin/x", headers={"Authorization": f"Bearer {token(roles=['user'])}"})
    assert r.status_code == 403 and "roles" not in r.text and "admin" not in r.text


def test_no_token_and_a_bad_token_are_still_the_policys_answers(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, _ = site
    assert gw.get("/admin/x", headers={"Accept": "text/html"}).status_code == 302
    assert gw.get("/admin/x", headers={"Authorization": "Bearer x.y.z", "Accept": "text/html"}).status_code == 302


def test_explain_names_the_predicate_that_failed(site: tuple[Gateway, RecordingOrigin]) -> None:
    gw, _ = site
    tok = token(roles=["admin"], org={"tier": "free"}, scope=7)
    out = subprocess.run(
        [GATEWAY_BIN, "explain", "--config", str(gw.config), "--json", "-H", f"Authorization: Bearer {tok}", "http://h/admin/x"],
        capture_output=True, text=True, env=gateway_env(), check=True,
    )  # fmt: skip
    e = json.loads(out.stdout)
    assert e["status"] == 403 and e["auth"]["outcome"] == "forbidden"
    assert e["require"]["rules"].startswith('all of roles contains "admin"')
    outcome = e["require"]["outcome"]
    assert outcome.startswith("failed: no rule of any held")
    assert 'any[0] org.tier in ["pro", "team"]: claim org.tier is none of the values' in outcome
    assert 'any[1] scope contains "admin:all": claim scope is a number' in outcome
    assert [s["stage"] for s in e["stages"]][-1] == "require" and "free" not in outcome  # names, not values
    e = json.loads(subprocess.run(
        [GATEWAY_BIN, "explain", "--config", str(gw.config), "--json", "-H", f"Authorization: Bearer {token(roles=['admin'], scope='admin:all')}", "http://h/admin/x"],
        capture_output=True, text=True, env=gateway_env(), check=True,
    ).stdout)  # fmt: skip
    assert e["action"] == "proxy" and e["require"]["outcome"].startswith("passed")


# --------------------------------------------------------------------------------------------
# the config
# --------------------------------------------------------------------------------------------

BASE = '[origins.web]\nurl = "http://127.0.0.1:9"\n[auth.s]\nsecret = "env:JWT_SECRET"\n[[routes]]\nmatch = "/:p*"\norigin = "web"\n'


@pytest.mark.parametrize(
    ("route", "key", "expected"),
    [
        ('auth = "s"\nrequire = { all = [ { claim = "roles", has = "admin" } ] }', "routes[0].require.all[0].has", "unknown key"),
        ('auth = "s"\nrequire = { all = [ { claim = "roles" } ] }', "routes[0].require.all[0]", "has no predicate"),
        ('auth = "s"\nrequire = { all = [ { claim = "roles", contains = "a", equals = "b" } ] }', "routes[0].require.all[0]", "has 2 predicates"),
        ('auth = "s"\nrequire = { all = [ { contains = "a" } ] }', "routes[0].require.all[0].claim", "is missing"),
        ('auth = "s"\nrequire = { all = [ { claim = "org..tier", equals = "a" } ] }', "routes[0].require.all[0].claim", "dotted path"),
        ('auth = "s"\nrequire = { all = [ { claim = 5, equals = "a" } ] }', "routes[0].require.all[0].claim", "dotted path"),
        ('auth = "s"\nrequire = { all = [ { claim = "a", equals = ["x"] } ] }', "routes[0].require.all[0].equals", "non-empty string, a number or a boolean"),
        ('auth = "s"\nrequire = { all = [ { claim = "a", contains = { x = 1 } } ] }', "routes[0].require.all[0].contains", "non-empty string, a number or a boolean"),
        ('auth = "s"\nrequire = { all = [ { claim = "a", in = "pro" } ] }', "routes[0].require.all[0].in", "non-empty list"),
        ('auth = "s"\nrequire = { all = [ { claim = "a", in = [] } ] }', "routes[0].require.all[0].in", "non-empty list"),
        ('auth = "s"\nrequire = { all = [ { claim = "a", in = [[1]] } ] }', "routes[0].require.all[0].in", "non-empty list"),
        ('auth = "s"\nrequire = { all = [ { claim = "a", exists = "yes" } ] }', "routes[0].require.all[0].exists", "true or false"),
        ('auth = "s"\nrequire = { all = [ { claim = "a", matches = "(" } ] }', "routes[0].require.all[0].matches", "not a valid regex"),
        ('auth = "s"\nrequire = { all = [ { claim = "a", matches = 5 } ] }', "routes[0].require.all[0].matches", "regular expression"),
        (f'auth = "s"\nrequire = {{ all = [ {{ claim = "a", matches = "{"a" * 300}" }} ] }}', "routes[0].require.all[0].matches", "at most 256"),
        ('auth = "s"\nrequire = { all = [] }', "routes[0].require.all", "non-empty list"),
        ('auth = "s"\nrequire = { one = [ { claim = "a", exists = true } ] }', "routes[0].require.one", "unknown key"),
        ('auth = "s"\nrequire = {}', "routes[0].require", "neither all nor any"),
        ('auth = "s"\nrequire = "admin"', "routes[0].require", "expected a table"),
        ('require = { all = [ { claim = "roles", contains = "admin" } ] }', "routes[0].require", "without auth"),
    ],
)
def test_a_bad_rule_is_refused_with_file_key_and_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str, key: str, expected: str) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    path = write_config(tmp_path, BASE + route + "\n")
    with pytest.raises(ConfigError) as e:
        load(path)
    assert any(line.startswith(f"{path}: {key}:") and expected in line for line in e.value.problems), e.value.problems


def test_gateway_check_refuses_require_without_auth(tmp_path: Path) -> None:
    path = write_config(tmp_path, BASE + 'require = { all = [ { claim = "roles", contains = "admin" } ] }\n')
    r = subprocess.run([GATEWAY_BIN, "check", "--config", str(path)], capture_output=True, text=True, env=gateway_env(), check=False)
    assert r.returncode == 1 and f"{path}: routes[0].require: is set on a route without auth" in r.stdout + r.stderr


# --------------------------------------------------------------------------------------------
# property: a token cannot make the rules raise
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_rules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClaimRules]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JWT_SECRET", SECRET)
        rules = load(write_config(tmp_path_factory.mktemp("rules"), BASE + 'auth = "s"\nrequire = { ' + RULES["admin"] + " }\n")).routes[0].require
    assert rules is not None
    yield rules


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20) | st.sampled_from(["admin", "pro", "admin:all", "read admin:all"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["roles", "org", "tier", "scope", "x"]), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(claims=st.dictionaries(st.sampled_from(["roles", "org", "scope", "sub", "x"]), json_values, max_size=5))
def test_no_claims_make_the_rules_raise(admin_rules: ClaimRules, claims: dict[str, Any]) -> None:
    why = admin_rules.failure(claims)
    roles, org, scope = claims.get("roles"), claims.get("org"), claims.get("scope")
    admin = (isinstance(roles, list) and "admin" in [r for r in roles if isinstance(r, str)]) or (isinstance(roles, str) and "admin" in roles.split(" "))
    tier = isinstance(org, dict) and org.get("tier") in ("pro", "team") and isinstance(org.get("tier"), str)
    has_scope = (isinstance(scope, list) and "admin:all" in [s for s in scope if isinstance(s, str)]) or (isinstance(scope, str) and "admin:all" in scope.split(" "))
    assert (why is None) == (admin and (tier or has_scope)), (claims, why)
