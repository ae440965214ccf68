"""Config files for the origin and for each system under test, all on loopback."""

from __future__ import annotations

from pathlib import Path

BODY = "x" * 1000  # with nginx's headers, a ~1 KB response
BODY_KO = "k" * 1000

# The origin: answers any path with ~1 KB. Paths under /ko/ and /ja/ answer with a header naming the
# prefix (so a check can see that the system under test rewrote the path), /dashboard/ and /api/
# echo the X-User-Id they received (so a check can see the forwarded claim).
ORIGIN_NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/origin.pid;
error_log {tmp}/origin-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  default_type text/plain;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ return 200 "{body}"; }}
    location /ko/ {{ add_header X-Origin-Locale ko; return 200 "{body_ko}"; }}
    location /ja/ {{ add_header X-Origin-Locale ja; return 200 "{body}"; }}
    location /dashboard {{ add_header X-Origin-User "$http_x_user_id"; return 200 "{body}"; }}
    location /api/ {{ add_header X-Origin-User "$http_x_user_id"; return 200 "{body}"; }}
  }}
  # The same answers over TLS (S6, issue 11): HTTP/1.1 only, as nginx and HAProxy speak to upstreams,
  # so every system does the same work; sessions are resumable (what a pool reconnecting relies on).
  server {{
    listen 127.0.0.1:{tls_port} ssl backlog=4096;
    ssl_certificate {tls_cert};
    ssl_certificate_key {tls_key};
    ssl_session_cache shared:bench:1m;
    location / {{ return 200 "{body}"; }}
    location /ko/ {{ add_header X-Origin-Locale ko; return 200 "{body_ko}"; }}
    location /ja/ {{ add_header X-Origin-Locale ja; return 200 "{body}"; }}
    location /dashboard {{ add_header X-Origin-User "$http_x_user_id"; return 200 "{body}"; }}
    location /api/ {{ add_header X-Origin-User "$http_x_user_id"; return 200 "{body}"; }}
  }}
}}
"""

# nginx as a plain reverse proxy to the TLS origin (S6): pooled TLS upstream connections
# (keepalive + session reuse), the certificate and name verified against the bench CA.
PROXY_NGINX_HTTPS = """
worker_processes 1;
daemon off;
pid {tmp}/proxy-https.pid;
error_log {tmp}/proxy-https-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/hbody;
  proxy_temp_path {tmp}/hproxy;
  fastcgi_temp_path {tmp}/hfastcgi;
  uwsgi_temp_path {tmp}/huwsgi;
  scgi_temp_path {tmp}/hscgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  upstream origin_tls {{ server 127.0.0.1:{origin_tls}; keepalive 128; keepalive_requests 10000000; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass https://origin_tls;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate {ca};
      proxy_ssl_name {tls_name};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
      proxy_buffering on;
    }}
  }}
}}
"""

# nginx as a plain reverse proxy with no auth: the proxying ceiling.
PROXY_NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/proxy.pid;
error_log {tmp}/proxy-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/pbody;
  proxy_temp_path {tmp}/pproxy;
  fastcgi_temp_path {tmp}/pfastcgi;
  uwsgi_temp_path {tmp}/puwsgi;
  scgi_temp_path {tmp}/pscgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 128; keepalive_requests 10000000; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering on;
    }}
  }}
}}
"""

# The gateway: the README's example config (python/gateway/examples/gateway.toml, the reference
# workload of issues 3 and 4) with both origins on the benchmark's nginx, the KV file in the run's
# folder, the access log off, and without the example's KV-backed X-Currency response header: the
# workload asks for X-Region only, which is all the peers do.
_X_CURRENCY = ', "X-Currency" = "{kv.regions[{country}].currency|USD}"'


def gateway_toml(
    port: int, origin: int, tmp: Path, extra_routes: str = "", https_origin: tuple[int, Path] | None = None, server: str = "",
    idp: bool = False, token_cache: int | None = None,
) -> str:
    """`server` adds lines to the [server] table (the observability variant's keys); `idp` adds S5's RS256
    policy and its route (issue 10), with `token_cache` when given."""
    from gateway.cli import EXAMPLE_CATCH_ALL, example_config_text

    text = example_config_text(origin, origin)
    if idp:
        extra_routes = IDP_ROUTE + extra_routes
    for old, new in (
        (_X_CURRENCY, ""),
        ('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{port}"\naccess_log = false' + (f"\n{server.strip()}" if server else "")),
        ('path = "regions.json"', f'path = "{tmp}/regions.json"'),
        (EXAMPLE_CATCH_ALL, extra_routes + "\n" + EXAMPLE_CATCH_ALL),
    ):
        assert old in text, f"the example config no longer has {old!r}"
        text = text.replace(old, new, 1)
    if https_origin is not None:
        # S6: the "web" origin (every proxied route of the workload) over TLS, verified against the
        # bench CA; the name checked is the certificate's "localhost" (sni), the Host sent the
        # client's, as with the plain origin and as the peers send it.
        tls_port, ca = https_origin
        old = f'[origins.web]\nurl = "http://127.0.0.1:{origin}"'
        assert old in text, f"the example config no longer has {old!r}"
        text = text.replace(old, f'[origins.web]\nurl = "https://127.0.0.1:{tls_port}"\nca_file = "file:{ca}"\nsni = "localhost"\nhost_header = "client"', 1)
    if idp:
        text += "\n" + idp_policy(tmp, token_cache)
    return text


# S5 (issue 10): a policy whose keys are a static JWK Set file (what `keys = "file:..."` reads), RS256
# only, the same checks as HAProxy's S5 (signature, exp/nbf with 30 s leeway), the sub forwarded.
IDP_ROUTE = '[[routes]]\nmatch = "/api/idp/:path*"\nauth = "idp"\norigin = "web"\n'


def idp_policy(tmp: Path, token_cache: int | None = None) -> str:
    from benches.load.common import IDP_JWKS

    cache = "" if token_cache is None else f"token_cache = {token_cache}\n"
    return (
        "[auth.idp]\n"
        'algorithms = ["RS256"]\n'
        f'keys = "file:{tmp}/{IDP_JWKS}"\n'
        'token_from = ["bearer"]\n'
        'leeway = "30s"\n'
        "on_missing = { status = 401 }\n"
        "on_invalid = { status = 401 }\n"
        'forward_claims = { sub = "X-User-Id" }\n' + cache
    )


def idp_unsupported(tmp: Path) -> str | None:
    """None when this gateway build loads S5's policy (`keys = "file:..."`, issue 10); else why not.

    Asked of the gateway's own config loader with a minimal config, so the answer is the build's, not
    a guess from its version."""
    from gateway.config import ConfigError, load

    cfg = tmp / "idp-probe.toml"
    cfg.write_text(
        '[server]\nlisten = "127.0.0.1:1"\n\n[origins.web]\nurl = "http://127.0.0.1:1"\n\n'
        + idp_policy(tmp) + "\n" + IDP_ROUTE
    )
    try:
        load(cfg)
    except ConfigError as e:
        said = " | ".join(ln.replace(f"{cfg}: ", "") for ln in str(e).strip().splitlines())
        return f"this gateway build refuses a static key-set policy (keys = \"file:...\", issue 10): {said[:200]}"
    return None


def haproxy_cfg(port: int, origin: int, idp_pem: Path | None) -> str:
    """HAProxy's workload config; S5's RS256 check reads `idp_pem`, and without one (no S5 key this run)
    its jwt_verify line is left out, since HAProxy refuses a config whose key file is missing (the
    /api/idp/ route then answers 401)."""
    text = HAPROXY_CFG.format(port=port, origin=origin, idp_pem=idp_pem or "")
    if idp_pem is None:
        text = "\n".join(ln for ln in text.splitlines() if 'jwt_verify("RS256"' not in ln) + "\n"
    return text


def haproxy_https_cfg(port: int, origin: int, origin_tls: int, ca: Path, tls_name: str, idp_pem: Path | None = None) -> str:
    """HAProxy's workload config with the web backend over TLS (S6): `ssl verify required` against
    the bench CA, SNI and the checked name "localhost", idle TLS connections reused (http-reuse)."""
    text = haproxy_cfg(port, origin, idp_pem)
    old = f"    server web 127.0.0.1:{origin} maxconn 1000"
    assert old in text
    return text.replace(old, f"    server web 127.0.0.1:{origin_tls} maxconn 1000 ssl verify required ca-file {ca} sni str({tls_name}) verifyhost {tls_name}", 1)


REGIONS_JSON = '{"KR": {"currency": "KRW"}, "JP": {"currency": "JPY"}, "US": {"currency": "USD"}}'


def extra_routes(n: int) -> str:
    """n routes of mixed shapes that never match the benchmark's paths, placed before the catch-all."""
    shapes = [
        'match = "/section{i}/:slug"',
        'match = "/shop{i}/:category/:item*"',
        'match = "/items{i}/:id(\\\\d+)"',
        'match = ["/docs{i}/:page+", "/guides{i}/:page?"]',
        'match = "/blog{i}/:year(\\\\d{{4}})/:slug"',
    ]
    out = []
    for i in range(n):
        out.append("[[routes]]\n" + shapes[i % len(shapes)].format(i=i) + '\norigin = "web"\n')
    return "\n" + "\n".join(out)


# HAProxy doing the same workload with its jwt_verify converter, one thread. The secret comes from the
# environment ("${JWT_SECRET}" is expanded by HAProxy's config parser).
HAPROXY_CFG = """
global
    nbthread 1
    maxconn 4096
    tune.bufsize 16384

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive
    option forwardfor

frontend gateway
    bind 127.0.0.1:{port}
    acl trusted src 127.0.0.1/32 ::1/128

    # /dashboard/:path* -> session policy (cookie auth-token, then bearer); /api/protected/:path* -> api policy (bearer)
    acl is_session path -i /dashboard
    acl is_session path_beg -i /dashboard/
    acl is_api path -i /api/protected
    acl is_api path_beg -i /api/protected/
    acl is_resize path -i /api/resize /api/resize/
    # S5 (issue 10): /api/idp/:path* -> idp policy (bearer, RS256 against the key set's public key as PEM)
    acl is_idp path_beg -i /api/idp/

    http-request del-header x-user-id
    http-request set-var(txn.tok) req.cook(auth-token) if is_session {{ req.cook(auth-token) -m len gt 0 }}
    http-request set-var(txn.tok) http_auth_bearer if is_session !{{ var(txn.tok) -m found }} {{ http_auth_bearer -m len gt 0 }}
    http-request set-var(txn.tok) http_auth_bearer if is_api {{ http_auth_bearer -m len gt 0 }}
    http-request set-var(txn.tok) http_auth_bearer if is_idp {{ http_auth_bearer -m len gt 0 }}

    acl has_tok var(txn.tok) -m found

    # missing
    http-request return status 302 hdr Location "/login?next=%[pathq,url_enc]" if is_session !has_tok
    http-request return status 401 content-type application/json string "{{\\"error\\":\\"invalid_token\\"}}" hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" if is_api !has_tok
    http-request return status 401 content-type application/json string "{{\\"error\\":\\"invalid_token\\"}}" hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" if is_idp !has_tok

    # verify: HS256 only (RS256 only on /api/idp/), signature, exp/nbf with 30 s leeway
    http-request set-var(txn.alg) var(txn.tok),jwt_header_query('$.alg') if has_tok
    http-request set-var(txn.sig) var(txn.tok),jwt_verify("HS256","${{JWT_SECRET}}") if has_tok !is_idp {{ var(txn.alg) -m str HS256 }}
    http-request set-var(txn.sig) var(txn.tok),jwt_verify("RS256","{idp_pem}") if has_tok is_idp {{ var(txn.alg) -m str RS256 }}
    acl sig_ok var(txn.sig) -m int 1
    http-request set-var(txn.now) date() if has_tok sig_ok
    http-request set-var(txn.exp) var(txn.tok),jwt_payload_query('$.exp','int') if has_tok sig_ok
    http-request set-var(txn.nbf) var(txn.tok),jwt_payload_query('$.nbf','int') if has_tok sig_ok
    acl expired var(txn.exp),add(30),sub(txn.now) lt 0
    acl early var(txn.nbf),sub(txn.now) gt 30
    acl tok_ok var(txn.sig) -m int 1
    http-request set-var(txn.bad) bool(1) if has_tok !tok_ok
    http-request set-var(txn.bad) bool(1) if has_tok expired
    http-request set-var(txn.bad) bool(1) if has_tok early
    acl bad var(txn.bad) -m bool

    http-request return status 302 hdr Location "/login?next=%[pathq,url_enc]" hdr Set-Cookie "auth-token=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax; Secure" if is_session bad
    http-request return status 401 content-type application/json string "{{\\"error\\":\\"invalid_token\\"}}" hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" if is_api bad
    http-request return status 401 content-type application/json string "{{\\"error\\":\\"invalid_token\\"}}" hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" if is_idp bad
    http-request set-header X-User-Id %[var(txn.tok),jwt_payload_query('$.sub')] if has_tok !bad

    # every other path: country (trusted peers only) -> /ko or /ja, Accept-Language fallback, A/B cookie
    http-request set-var(txn.public) bool(1) if !is_session !is_api !is_resize !is_idp
    acl public var(txn.public) -m bool
    http-request set-var(txn.country) req.hdr(cf-ipcountry),upper if public trusted {{ req.hdr(cf-ipcountry) -m len gt 0 }}
    http-request set-var(txn.country) str(US) if public !{{ var(txn.country) -m found }}
    http-request set-var(txn.prefix) str(/ko) if public {{ var(txn.country) -m str KR }}
    http-request set-var(txn.prefix) str(/ja) if public {{ var(txn.country) -m str JP }}
    http-request set-var(txn.lang) req.fhdr(accept-language),language(ko;ja) if public !{{ var(txn.prefix) -m found }} {{ req.fhdr(accept-language) -m found }}
    http-request set-var(txn.prefix) str(/ko) if public !{{ var(txn.prefix) -m found }} {{ var(txn.lang) -m str ko }}
    http-request set-var(txn.prefix) str(/ja) if public !{{ var(txn.prefix) -m found }} {{ var(txn.lang) -m str ja }}
    acl in_ko path -i /ko
    acl in_ko path_beg -i /ko/
    acl in_ja path -i /ja
    acl in_ja path_beg -i /ja/
    http-request set-path /ko%[path] if public {{ var(txn.prefix) -m str /ko }} !in_ko
    http-request set-path /ja%[path] if public {{ var(txn.prefix) -m str /ja }} !in_ja

    acl ab_ok req.cook(ab-group) -m str control variant
    http-request set-var(txn.ab) req.cook(ab-group) if public ab_ok
    http-request set-var(txn.ab) str(control) if public !ab_ok {{ rand(100) lt 50 }}
    http-request set-var(txn.ab) str(variant) if public !ab_ok !{{ var(txn.ab) -m found }}
    http-request set-var(txn.abnew) bool(1) if public !ab_ok
    http-request set-header X-AB-Group %[var(txn.ab)] if public

    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]

    http-response set-header X-Region %[var(txn.country)] if {{ var(txn.country) -m found }}
    http-response add-header Set-Cookie "ab-group=%[var(txn.ab)]; Path=/; Max-Age=86400; SameSite=Lax; Secure" if {{ var(txn.abnew) -m bool }}

    use_backend regional if is_resize METH_POST
    default_backend web

backend web
    http-reuse always
    server web 127.0.0.1:{origin} maxconn 1000

backend regional
    http-reuse always
    timeout server 30s
    server regional 127.0.0.1:{origin} maxconn 1000
"""


# Issue 12: S2 with metrics, request ids and tracing on (no OTLP export) vs the same config without.
# {metrics_port} is filled in with a free port when the system starts.
OBSERVABILITY_SERVER = """
metrics_listen = "127.0.0.1:{metrics_port}"
request_id = "X-Request-Id"
trace = true
"""


# nginx as a WebSocket reverse proxy (the WS scenario, issue 11): the documented upgrade set-up.
WS_NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/ws-proxy.pid;
error_log {tmp}/ws-proxy-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/wbody;
  proxy_temp_path {tmp}/wproxy;
  fastcgi_temp_path {tmp}/wfastcgi;
  uwsgi_temp_path {tmp}/wuwsgi;
  scgi_temp_path {tmp}/wscgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://127.0.0.1:{origin};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 3600s;
    }}
  }}
}}
"""

# The gateway in the WS scenario: one route to the WebSocket origin, no auth (nginx has none either).
WS_GATEWAY = """
[server]
listen = "127.0.0.1:{port}"
access_log = false

[origins.ws]
url = "http://127.0.0.1:{origin}"

[[routes]]
match = "/:path*"
origin = "ws"
"""

# Issue 13: one no-op async `request` hook on a copy of the S2 route, placed before it, so the same
# gateway serves S2 without hooks (/dashboard/x) and with one (/dashboard/h/x): same auth, same origin
# location, same answer. The hook returns None after being handed its snapshot.
HOOKS_PY = """
import gateway


@gateway.hook("request")
async def noop(req):
    return None
"""

_FIRST_ROUTE = "[[routes]]\nmatch = \"/dashboard/:path*\""
HOOKS_TABLE = """[hooks]
module = "file:{tmp}/hooks.py"
timeout = "50ms"

[[routes]]
match = "/dashboard/h/:path*"
auth = "session"
hooks = ["noop"]
origin = "web"

"""


def with_hooks(text: str, tmp: Path) -> str:
    """The gateway config with a [hooks] table and the hooked copy of the S2 route before it."""
    assert _FIRST_ROUTE in text, "the example config no longer starts its routes with /dashboard/:path*"
    (tmp / "hooks.py").write_text(HOOKS_PY)
    return text.replace(_FIRST_ROUTE, HOOKS_TABLE.format(tmp=tmp) + _FIRST_ROUTE, 1)
