"""Three example hooks for the gateway (docs/hooks.md), served by ``gateway.toml`` beside this file.

- ``tenant``: a tenant check: the token's ``tenant`` claim must be the ``:tenant`` path parameter.
- ``new_checkout``: a feature flag read from KV (``flags.json``): on for listed tenants and for a
  stable percentage of users; when on, the request goes to the new checkout.
- ``signed_download``: a signed download link: ``?expires=UNIX&sig=...``, an HMAC-SHA256 over the
  path and the expiry, checked in constant time before anything else (an ``early`` hook: no token
  needed, the link is the permission). ``signed_link()`` makes such links.

The signing key comes from the environment (``DOWNLOAD_SIGNING_KEY``, at least 32 bytes), read when
the module is imported: without it ``gateway check`` and ``gateway serve`` refuse the config.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from urllib.parse import parse_qs, quote

import gateway

# ------------------------------------------------------------------------------------------ tenant


@gateway.hook("request")
async def tenant(req: gateway.HookRequest) -> gateway.Respond | gateway.Forward:
    """/t/:tenant/...: only for tokens of that tenant; the origin is told which tenant it serves."""
    claimed = req.claims.get("tenant")
    if not isinstance(claimed, str) or claimed != req.params.get("tenant"):
        return gateway.Respond(403, json={"error": "wrong_tenant"})
    return gateway.Forward(set_headers={"X-Tenant": claimed})


# ---------------------------------------------------------------------------- feature flag from KV


def in_rollout(user: str, percent: float) -> bool:
    """Whether ``user`` is in the first ``percent`` of users: a stable bucket from a hash of the id,
    so a user keeps their side of the flag from request to request (and across gateway instances)."""
    bucket = int.from_bytes(hashlib.sha256(user.encode("utf-8")).digest()[:4], "big") % 10000
    return bucket < percent * 100


@gateway.hook("request")
async def new_checkout(req: gateway.HookRequest) -> gateway.Forward:
    """The ``new-checkout`` flag in the ``flags`` KV store: {"enabled", "tenants", "percent"}."""
    flag = await req.kv("flags", "new-checkout")
    on = False
    if isinstance(flag, dict) and flag.get("enabled") is True:
        tenants = flag.get("tenants") or []
        user = req.claims.get("sub")
        on = req.claims.get("tenant") in tenants or (isinstance(user, str) and in_rollout(user, float(flag.get("percent") or 0)))
    if not on:
        return gateway.Forward(set_headers={"X-Flag-New-Checkout": "off"})
    rest = req.params.get("path") or ""
    return gateway.Forward(path="/v2/checkout/" + rest, set_headers={"X-Flag-New-Checkout": "on"})


# --------------------------------------------------------------------------- signed download links

KEY_ENV = "DOWNLOAD_SIGNING_KEY"
_key = os.environ.get(KEY_ENV, "").encode("utf-8")
if len(_key) < 32:
    # Refused at import, so `gateway check` names the problem instead of every link failing later.
    raise RuntimeError(f"set {KEY_ENV} to a random secret of at least 32 bytes (e.g. `openssl rand -base64 48`)")
MAX_LIFETIME = 7 * 86400  # a link that claims to be valid for longer was not made by signed_link()


def _signature(key: bytes, path: str, expires: int) -> str:
    # The path and the expiry, separated so that neither can be shifted into the other.
    mac = hmac.new(key, f"{path}\n{expires}".encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def signed_link(path: str, lifetime: float, key: bytes | None = None, now: float | None = None) -> str:
    """``path?expires=...&sig=...``, valid for ``lifetime`` seconds. ``path`` as the gateway
    normalizes it (percent-encoded where needed; plain ASCII paths are unchanged)."""
    expires = int((time.time() if now is None else now) + lifetime)
    return f"{path}?expires={expires}&sig={quote(_signature(key or _key, path, expires))}"


@gateway.hook("early")
def signed_download(req: gateway.HookRequest) -> gateway.Respond | None:
    """Refuses a download link that is unsigned, tampered with or expired (403), before auth."""
    query = parse_qs(req.query, keep_blank_values=True)
    expires_s, sig = query.get("expires", []), query.get("sig", [])
    if len(expires_s) != 1 or len(sig) != 1 or not expires_s[0].isdigit() or len(expires_s[0]) > 12:
        return gateway.Respond(403, json={"error": "unsigned_link"})
    expires = int(expires_s[0])
    # Constant time (hmac.compare_digest): the comparison's duration says nothing about the expected value.
    if not hmac.compare_digest(sig[0].encode("ascii", "replace"), _signature(_key, req.path, expires).encode("ascii")):
        return gateway.Respond(403, json={"error": "bad_signature"})
    now = time.time()
    if expires < now:
        return gateway.Respond(403, json={"error": "link_expired"})
    if expires > now + MAX_LIFETIME:
        return gateway.Respond(403, json={"error": "bad_signature"})
    return None
