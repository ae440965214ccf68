// Next.js middleware doing the reference workload with Web Crypto (the Edge runtime's default),
// proxying with NextResponse.rewrite to the origin. The origin and the secret come from the
// environment of `next start` (BENCH_ORIGIN, JWT_SECRET).
import { NextResponse } from 'next/server';

const enc = new TextEncoder();
const dec = new TextDecoder();
const COUNTRY_PREFIX = { KR: '/ko', JP: '/ja' };
const LANGUAGE_PREFIX = { ko: '/ko', ja: '/ja' };
const TRUSTED = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const CLEAR = 'auth-token=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax; Secure';
let keyPromise;

function hmacKey() {
  keyPromise ??= crypto.subtle.importKey('raw', enc.encode(process.env.JWT_SECRET || ''),
    { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return keyPromise;
}

function b64url(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

async function verify(token) {
  try {
    const [h, p, s, extra] = token.split('.');
    if (!s || extra !== undefined) return null;
    if (JSON.parse(dec.decode(b64url(h))).alg !== 'HS256') return null;
    if (!(await crypto.subtle.verify('HMAC', await hmacKey(), b64url(s), enc.encode(`${h}.${p}`)))) return null;
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

function redirect(req, clear) {
  // Next.js refuses a relative Location from middleware, so this one is absolute (same host).
  const login = new URL('/login', req.url);
  login.searchParams.set('next', req.nextUrl.pathname + req.nextUrl.search);
  const res = NextResponse.redirect(login, 302);
  if (clear) res.headers.append('Set-Cookie', CLEAR);
  return res;
}

function bearer(req) {
  const a = req.headers.get('authorization') || '';
  return a.toLowerCase().startsWith('bearer ') ? a.slice(7).trim() || null : null;
}

export async function middleware(req) {
  const url = req.nextUrl;
  let path = url.pathname;
  const origin = process.env.BENCH_ORIGIN || 'http://127.0.0.1:9000';
  const headers = new Headers(req.headers);
  headers.delete('x-user-id');

  if (under(path, '/dashboard') || under(path, '/api/protected')) {
    const api = under(path, '/api/protected');
    const token = api ? bearer(req) : (req.cookies.get('auth-token')?.value || bearer(req));
    const claims = token ? await verify(token) : null;
    if (!claims) {
      if (api) return NextResponse.json({ error: 'invalid_token' }, { status: 401, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
      return redirect(req, Boolean(token));
    }
    headers.set('x-user-id', String(claims.sub ?? ''));
    return NextResponse.rewrite(new URL(path + url.search, origin), { request: { headers } });
  }

  const peer = (headers.get('x-forwarded-for') || '').split(',').pop().trim() || '127.0.0.1';
  let country = 'US';
  if (TRUSTED.has(peer) && req.headers.get('cf-ipcountry')) country = req.headers.get('cf-ipcountry').toUpperCase();
  let prefix = COUNTRY_PREFIX[country];
  if (!prefix) { const l = bestLanguage(req.headers.get('accept-language')); prefix = l ? LANGUAGE_PREFIX[l] : undefined; }
  if (prefix && !under(path, prefix)) path = prefix + path;
  let variant = req.cookies.get('ab-group')?.value;
  const isNew = variant !== 'control' && variant !== 'variant';
  if (isNew) variant = Math.random() < 0.5 ? 'control' : 'variant';
  headers.set('x-ab-group', variant);
  const res = NextResponse.rewrite(new URL(path + url.search, origin), { request: { headers } });
  res.headers.set('X-Region', country);
  if (isNew) res.headers.append('Set-Cookie', `ab-group=${variant}; Path=/; Max-Age=86400; SameSite=Lax; Secure`);
  return res;
}

export const config = { matcher: '/:path*' };
