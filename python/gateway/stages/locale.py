"""Stage 4, locale: the visitor's country and language, and the locale prefix for the upstream path.

The country comes from ``[locale] country_from`` (e.g. Cloudflare's ``cf-ipcountry``) only when the
peer is one of ``server.trusted_proxies``: anyone else could claim any country. Otherwise, or when the
header is absent or not two letters, it is ``default_country``. The language is the best match of
Accept-Language among ``[locale] languages`` (``*`` is no preference). The country's prefix wins over
the language's; a path already under a locale prefix is left alone. Routes without ``locale = true``
skip this stage, so ``{country}`` and ``{lang}`` are empty there (``gateway check`` warns).
"""

from __future__ import annotations

from gateway import _core
from gateway.context import RequestContext
from gateway.respond import Answer

NAME = "locale"


def run(ctx: RequestContext) -> Answer | None:
    route = ctx.route
    assert route is not None
    loc = ctx.config.locale
    if not route.locale or loc is None:
        if ctx.trace is not None:
            ctx.note(NAME, "not applied: this route has no locale = true, so {country} and {lang} are empty" if loc is not None else "not applied: no [locale] table")
        return None
    req = ctx.request
    country = None
    why = ""
    if loc.country_header:
        raw = req.header(loc.country_header)
        if raw is None:
            why = f"no {loc.country_header} header"
        elif not ctx.config.server.is_trusted(req.client):
            why = f"{loc.country_header} ignored: peer {req.client} is not in server.trusted_proxies"
        else:
            value = raw.strip().upper()
            if len(value) == 2 and value.isascii() and value.isalpha():
                country = value
                why = f"from {loc.country_header}"
            else:
                why = f"{loc.country_header} is not a two-letter country code"
    else:
        why = "no locale.country_from"
    if country is None:
        country = loc.default_country
        why += "; the default country"
    ctx.country = country
    accept = req.header("accept-language")
    lang = None
    if accept and loc.languages:
        # "*" says any language will do: that is no reason to move the visitor to a locale.
        accept = ",".join(e for e in accept.split(",") if e.split(";")[0].strip() != "*")
        lang = _core.best_language(accept, list(loc.languages)) if accept else None
    ctx.lang = lang
    path = ctx.upstream_path
    assert path is not None
    prefix = loc.countries.get(country) or (loc.languages.get(lang) if lang else None)
    # Route literals match without case, so /KO/x is already under /ko.
    folded = path.lower()
    already = folded in ctx.config.locale_prefix_set or folded.startswith(ctx.config.locale_prefix_dirs)
    if prefix and not already:
        ctx.upstream_path = prefix if path == "/" else prefix + path
    if ctx.trace is not None:
        move = f"path -> {ctx.upstream_path}" if ctx.upstream_path != path else ("path already under a locale prefix" if already and prefix else "no prefix for them")
        ctx.note(NAME, f"country {country} ({why}), language {lang or 'none'} (Accept-Language {'absent' if not req.header('accept-language') else 'matched' if lang else 'no supported match'}); {move}")
    return None
