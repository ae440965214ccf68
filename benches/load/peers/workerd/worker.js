// Cloudflare workerd doing the reference workload with Web Crypto, proxying with fetch() to the
// origin (the `origin` external service is the worker's global outbound). The secret is a binding
// taken from workerd's environment (JWT_SECRET).
const enc = new TextEncoder();
const dec = new TextDecoder();
const COUNTRY_PREFIX = { KR: '/ko', JP: '/ja' };
const LANGUAGE_PREFIX = { ko: '/ko', ja: '/ja' };
const CLEAR = 'auth-token=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax; Secure';
let keyPromise;

function hmacKey(secret) {
  keyPromise ??= crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return keyPromise;
}

function b64url(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

async function verify(token, secret) {
  try {
    const [h, p, s, extra] = token.split('.');
    if (!s || extra !== undefined) return null;
    if (JSON.parse(dec.decode(b64url(h))).alg !== 'HS256') return null;
    if (!(await crypto.subtle.verify('HMAC', await hmacKey(secret), b64url(s), enc.encode(`${h}.${p}`)))) return null;
    const claims = JSON.parse(dec.decode(b64url(p)));
    const now = Date.now() / 1000;
    if (typeof claims.exp === 'number' && now > claims.exp + 30) return null;
    if (typeof claims.nbf === 'number' && now + 30 < claims.nbf) return null;
    return claims;
  } catch {
    return null;
  }
}

const under = (path, prefix) => { const p = path.toLowerCase(); return p === prefix || p.startsWith(prefix + '/'); };

function cookie(req, name) {
  for (const part of (req.headers.get('cookie') || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}

function bestLanguage(header) {
  let best = null, bestQ = 0;
  for (const part of (header || '').split(',')) {
    const [lang, ...params] = part.trim().split(';');
    let q = 1;
    for (const prm of params) if (prm.trim().startsWith('q=')) q = parseFloat(prm.trim().slice(2)) || 0;
    const primary = lang.trim().toLowerCase().split('-')[0];
    if (primary in LANGUAGE_PREFIX && q > bestQ) { best = primary; bestQ = q; }
  }
  return best;
}

function bearer(req) {
  const a = req.headers.get('authorization') || '';
  return a.toLowerCase().startsWith('bearer ') ? a.slice(7).trim() || null : null;
}

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    let path = url.pathname;
    const headers = new Headers(req.headers);
    headers.delete('x-user-id');
    let region = null, newVariant = null;

    if (under(path, '/dashboard') || under(path, '/api/protected')) {
      const api = under(path, '/api/protected');
      const token = api ? bearer(req) : (cookie(req, 'auth-token') || bearer(req));
      const claims = token ? await verify(token, env.JWT_SECRET) : null;
      if (!claims) {
        if (api) return Response.json({ error: 'invalid_token' }, { status: 401, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
        const h = new Headers({ Location: '/login?next=' + encodeURIComponent(path + url.search) });
        if (token) h.append('Set-Cookie', CLEAR);
        return new Response(null, { status: 302, headers: h });
      }
      headers.set('x-user-id', String(claims.sub ?? ''));
    } else {
      // workerd listens on loopback only here, so every peer is trusted to set cf-ipcountry.
      const country = (req.headers.get('cf-ipcountry') || 'US').toUpperCase();
      let prefix = COUNTRY_PREFIX[country];
      if (!prefix) { const l = bestLanguage(req.headers.get('accept-language')); prefix = l ? LANGUAGE_PREFIX[l] : undefined; }
      if (prefix && !under(path, prefix)) path = prefix + path;
      let variant = cookie(req, 'ab-group');
      if (variant !== 'control' && variant !== 'variant') variant = newVariant = Math.random() < 0.5 ? 'control' : 'variant';
      headers.set('x-ab-group', variant);
      region = country;
    }

    const upstream = await fetch(`http://origin${path}${url.search}`, {
      method: req.method, headers, body: req.body, redirect: 'manual',
    });
    const res = new Response(upstream.body, upstream);
    if (region) res.headers.set('X-Region', region);
    if (newVariant) res.headers.append('Set-Cookie', `ab-group=${newVariant}; Path=/; Max-Age=86400; SameSite=Lax; Secure`);
    return res;
  },
};
