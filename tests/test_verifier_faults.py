"""The verifier faults issue 10 lists, each kind with several inputs.

- Public-key material in any form people keep on disk is never an HMAC secret
  (``public_key_as_secret``): through ``verify()``, ``Verifier()``, a ``{kid: secret}`` mapping,
  ``encode()`` and ``gateway check`` with a secret file. The keys and certificates are made by the
  test with ``cryptography``, ``openssl`` and ``ssh-keygen`` (the tools whose output people paste).
- Numbers that do not fit an f64 (``1e400``) anywhere in the claims are MalformedToken.
- A header ``alg`` that is missing, null or not a string is one kind: MalformedToken.
- ``max_length``/``cache_size`` out of range are ValueError kind ``bad_option``.
- ``encode`` never writes a header ``verify`` refuses (non-string kid/typ/cty, crit, b64).
- ``iat`` later than now + leeway is NotYetValid; non-string ``sub``/``jti`` are MalformedToken;
  a required claim that is JSON null is MissingClaim.
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gateway
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.asym_support import KeyPair, keypair, make_token
from tests.jwt_support import KEY, NOW, assert_no_leak, make

# --- public-key material as an HMAC secret --------------------------------------------------------


def _certificate(pair: KeyPair) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.test")])
    signer = keypair("p256", 9)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pair.public)
        .serial_number(4242)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(signer.private, hashes.SHA256())
    )


def _openssl_text(cert_pem: bytes) -> bytes:
    """What ``openssl x509 -text`` writes: the explanation, then the PEM (RFC 7468 §5.2)."""
    out = subprocess.run(["openssl", "x509", "-text"], input=cert_pem, capture_output=True, check=True).stdout
    assert out.index(b"-----BEGIN CERTIFICATE-----") > 100, "openssl wrote explanatory text first"
    return out


def _ssh_keygen(tmp: Path, *args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, capture_output=True, stdin=subprocess.DEVNULL)


def public_material(tmp: Path) -> dict[str, bytes]:
    """Public-key material in the forms people have on disk, each as exact bytes."""
    rsa_pair, p256, p521, ed = keypair("rsa"), keypair("p256"), keypair("p521"), keypair("ed25519")
    cert = _certificate(rsa_pair)
    cert_pem = cert.public_bytes(ser.Encoding.PEM)
    forms: dict[str, bytes] = {
        "rsa-spki-pem": rsa_pair.public_pem,
        "rsa-pkcs1-pem": rsa_pair.public.public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1),
        "p256-spki-pem": p256.public_pem,
        "p521-spki-pem": p521.public_pem,
        "ed25519-spki-pem": ed.public_pem,
        "certificate-pem": cert_pem,
        "certificate-openssl-text": _openssl_text(cert_pem),
        "pem-crlf": rsa_pair.public_pem.replace(b"\n", b"\r\n"),
        "pem-indented-no-final-newline": b"    " + rsa_pair.public_pem.rstrip(b"\n").replace(b"\n", b"\n    "),
        "pem-after-comment-text": b"# idp signing key, rotated 2026-01\n\n" + p256.public_pem,
        "certificate-chain": cert_pem + _certificate(p256).public_bytes(ser.Encoding.PEM),
        "rsa-spki-der": rsa_pair.public_der,
        "rsa-pkcs1-der": rsa_pair.public.public_bytes(ser.Encoding.DER, ser.PublicFormat.PKCS1),
        "p256-spki-der": p256.public_der,
        "ed25519-spki-der": ed.public_der,
        "certificate-der": cert.public_bytes(ser.Encoding.DER),
        "jwk-json": json.dumps(rsa_pair.public_jwk()).encode(),
        "jwk-json-spaces": json.dumps(p256.public_jwk(kid="k1", use="sig"), indent=2).encode(),
        "jwk-json-leading-space": b"\n  " + json.dumps(ed.public_jwk()).encode(),
        "jwks-json": json.dumps({"keys": [rsa_pair.public_jwk(kid="a"), p256.public_jwk(kid="b")]}).encode(),
        "ssh-rsa": rsa_pair.public.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH) + b" deploy@host\n",
        "ssh-ecdsa": p256.public.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH),
        "ssh-ed25519": ed.public.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH) + b" me@laptop",
    }
    return forms


# Forms people also keep on disk that the core does not recognise yet (reported to the lead, issue 10:
# "recognise public-key material ... in every form people have on disk"). Each is a real public key
# in a real tool's format; anyone holding the public key could mint HS256 tokens if one were accepted.
def unrecognised_material(tmp: Path) -> dict[str, bytes]:
    rsa_pair, ed = keypair("rsa"), keypair("ed25519")
    ssh_ed = ed.public.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    ssh_rsa = rsa_pair.public.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    # ssh-keygen itself: an RFC 4716 export and an OpenSSH certificate of the key.
    key_file = tmp / "id_ed25519"
    _ssh_keygen(tmp, "-t", "ed25519", "-N", "", "-f", str(key_file))
    rfc4716 = subprocess.run(["ssh-keygen", "-e", "-f", str(key_file) + ".pub"], capture_output=True, check=True).stdout
    _ssh_keygen(tmp, "-s", str(key_file), "-I", "test-cert", "-n", "deploy", str(key_file) + ".pub")
    ssh_cert = (tmp / "id_ed25519-cert.pub").read_bytes()
    return {
        # Keycloak's realm "Public key" and many IdP consoles show the bare base64 of the SPKI DER.
        "bare-base64-spki": base64.b64encode(rsa_pair.public_der),
        "ssh2-rfc4716": rfc4716,
        "ssh-certificate": ssh_cert,
        "authorized_keys-with-options": b'restrict,from="10.0.0.0/8" ' + ssh_rsa + b" ci\n",
        "known_hosts-line": b"idp.example.test,10.0.0.7 " + ssh_ed + b"\n",
    }


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return public_material(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def unrecognised(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return unrecognised_material(tmp_path_factory.mktemp("ssh"))


FORMS = [
    "rsa-spki-pem", "rsa-pkcs1-pem", "p256-spki-pem", "p521-spki-pem", "ed25519-spki-pem", "certificate-pem",
    "certificate-openssl-text", "pem-crlf", "pem-indented-no-final-newline", "pem-after-comment-text",
    "certificate-chain", "rsa-spki-der", "rsa-pkcs1-der", "p256-spki-der", "ed25519-spki-der", "certificate-der",
    "jwk-json", "jwk-json-spaces", "jwk-json-leading-space", "jwks-json", "ssh-rsa", "ssh-ecdsa", "ssh-ed25519",
]  # fmt: skip
UNRECOGNISED = ["bare-base64-spki", "ssh2-rfc4716", "ssh-certificate", "authorized_keys-with-options", "known_hosts-line"]


def _as_secret_everywhere(secret: bytes | str) -> list[tuple[str, Callable[[], Any]]]:
    """Every library door through which a value becomes an HMAC secret."""
    token = make({"sub": "x"})
    return [
        ("Verifier", lambda: gateway.Verifier(secret, algorithms=["HS256"])),
        ("Verifier-HS512-weak-allowed", lambda: gateway.Verifier(secret, algorithms=["HS512"], allow_weak_key=True)),
        ("verify", lambda: gateway.verify(token, secret, algorithms=["HS256"], now=NOW)),
        ("kid-mapping", lambda: gateway.Verifier({"k1": KEY, "k2": secret}, algorithms=["HS256"])),
        ("encode", lambda: gateway.encode({"sub": "x"}, secret, algorithm="HS256")),
    ]


def _refused_as_public_key(material_bytes: bytes) -> None:
    forms: list[bytes | str] = [material_bytes]
    if material_bytes.isascii():  # text forms are passed as str too; DER only as bytes
        forms.append(material_bytes.decode("ascii"))
    for as_type in forms:
        for door, call in _as_secret_everywhere(as_type):
            with pytest.raises(ValueError) as info:
                call()
            assert not isinstance(info.value, gateway.JWTError), (door, info.value)
            assert info.value.kind == "public_key_as_secret", (door, info.value)
            assert "public" in str(info.value)
            assert_no_leak(info.value, keys=[])
            assert material_bytes.decode("latin-1")[40:80] not in str(info.value)


@pytest.mark.parametrize("form", FORMS)
def test_public_key_material_is_never_an_hmac_secret(material: dict[str, bytes], form: str) -> None:
    _refused_as_public_key(material[form])


@pytest.mark.parametrize("form", UNRECOGNISED)
def test_more_public_key_forms_are_never_an_hmac_secret(unrecognised: dict[str, bytes], form: str) -> None:
    _refused_as_public_key(unrecognised[form])


def test_the_forms_above_really_are_keys(material: dict[str, bytes]) -> None:
    """No test above passes because its input was junk: each PEM/DER/JWK form verifies a token as a
    public key (with an asymmetric algorithm), and each SSH line parses with cryptography."""
    for form, data in material.items():
        if form.startswith("ssh-"):
            ser.load_ssh_public_key(data.split(b" ", 2)[0] + b" " + data.split(b" ", 2)[1])
            continue
        pair = {"rsa": keypair("rsa"), "p2": keypair("p256"), "p5": keypair("p521"), "ed": keypair("ed25519")}
        owner = next((p for k, p in pair.items() if form.startswith(k)), keypair("rsa"))
        if form.startswith(("jwk-json-spaces", "pem-after")):
            owner = keypair("p256")
        if form == "jwk-json-leading-space":
            owner = keypair("ed25519")
        alg = {"rsa": "RS256", "p256": "ES256", "p521": "ES512", "ed25519": "EdDSA"}[owner.kind]
        token = make_token(alg, owner.private, {"sub": form}, header={"alg": alg, **({"kid": "a"} if form == "jwks-json" else {})})
        assert gateway.verify(token, data, algorithms=[alg]) == {"sub": form}, form


def test_a_real_secret_that_mentions_keys_is_still_a_secret() -> None:
    """The check is a parser's, not a word search: random secrets, and text that merely talks about
    keys, stay usable."""
    for secret in [
        b"K3y-for-gateway-tests-0123456789-----BEGIN",
        b"ssh-rsa-is-not-a-key-type-here-0123456789",
        b"\x30\x82\x01\x22" + bytes(range(40)),  # starts like DER, is not
        b'{"note": "not a JWK", "padding": "0123456789abcdef"}',
        bytes(range(256)),
    ]:
        v = gateway.Verifier(secret, algorithms=["HS256"])
        assert v.verify(make({"sub": "s"}, key=secret), now=NOW) == {"sub": "s"}


def _der_ending_in_newline() -> bytes:
    """A P-256 SPKI whose last byte is LF: a config loader that strips line ends from a secret file
    must not strip the key out of recognition."""
    for _ in range(5000):
        der = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
        if der.endswith(b"\n"):
            return der
    raise AssertionError("no key ending in LF in 5000 tries")


CONFIG_HEAD = """
[server]
listen = "127.0.0.1:8080"
[origins.web]
url = "http://127.0.0.1:9000"
[[routes]]
match = "/:path*"
origin = "web"
"""


def _check(tmp: Path, secrets: dict[str, bytes]) -> str:
    """``gateway check`` on a config with one auth policy per secret file; its output."""
    text = CONFIG_HEAD
    for i, (name, data) in enumerate(secrets.items()):
        (tmp / f"secret-{i}.bin").write_bytes(data)
        text += f'\n[auth.p{i}]\nalgorithms = ["HS256"]\nsecret = "file:secret-{i}.bin"\n'
    cfg = tmp / "gateway.toml"
    cfg.write_text(text)
    r = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_gateway_check_refuses_every_form_as_a_secret_file(tmp_path: Path, material: dict[str, bytes]) -> None:
    secrets = {form: material[form] for form in FORMS}
    out = _check(tmp_path, secrets)
    cfg = tmp_path / "gateway.toml"
    for i, form in enumerate(secrets):
        line = next((ln for ln in out.splitlines() if ln.startswith(f"{cfg}: auth.p{i}.secret:")), None)
        assert line is not None, f"{form} was not refused:\n{out}"
        assert "public" in line.lower(), line
    for data in secrets.values():
        text = data.decode("latin-1")
        for piece in (text[len(text) // 2 :][:40], base64.b64encode(data)[40:80].decode()):
            assert len(piece) >= 16 and piece not in out, "key material echoed"


def test_gateway_check_refuses_a_der_key_whose_last_byte_is_a_newline(tmp_path: Path) -> None:
    der = _der_ending_in_newline()
    _refused_as_public_key(der)  # the library recognises it
    out = _check(tmp_path, {"der-ending-in-lf": der})
    assert f"{tmp_path / 'gateway.toml'}: auth.p0.secret:" in out, out


def test_gateway_check_refuses_the_unrecognised_forms(tmp_path: Path, unrecognised: dict[str, bytes]) -> None:
    out = _check(tmp_path, unrecognised)
    for i in range(len(unrecognised)):
        assert f": auth.p{i}.secret:" in out, out


# --- numbers beyond f64 -----------------------------------------------------------------------------

OVERFLOWING = [
    b'{"exp":1e400}',
    b'{"nbf":-1e400}',
    b'{"iat":1E400}',
    b'{"exp":1.7976931348623159e308}',  # just past f64::MAX
    b'{"sub":"a","custom":-1e400}',
    b'{"roles":["a",1e999]}',
    b'{"ctx":{"deep":[{"n":1e400}]}}',
    b'{"exp":2000000000,"x":1e309}',
]


@pytest.mark.parametrize("payload", OVERFLOWING)
def test_a_number_beyond_f64_is_malformed_never_infinity(payload: bytes) -> None:
    hs = make(raw_payload=payload)
    with pytest.raises(gateway.MalformedToken):
        gateway.verify(hs, KEY, now=NOW)
    with pytest.raises(gateway.MalformedToken):
        gateway.Verifier(KEY, cache_size=4).verify(hs, now=NOW)
    pair = keypair("p256")
    h = base64.urlsafe_b64encode(b'{"alg":"ES256"}').rstrip(b"=").decode()
    p = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    from tests.asym_support import b64e, raw_sign

    es = f"{h}.{p}.{b64e(raw_sign('ES256', pair.private, f'{h}.{p}'.encode()))}"
    with pytest.raises(gateway.MalformedToken):
        gateway.verify(es, pair.public_pem, algorithms=["ES256"], now=NOW)


def test_numbers_that_fit_are_kept() -> None:
    payload = b'{"exp":1.7976931348623157e308,"tiny":1e-400,"big":123456789012345678901234567890,"neg":-0.0}'
    claims = gateway.verify(make(raw_payload=payload), KEY, now=NOW)
    assert claims["exp"] == 1.7976931348623157e308
    assert claims["tiny"] == 0.0
    assert claims["big"] == 123456789012345678901234567890


# --- the header's alg -------------------------------------------------------------------------------

NO_STRING_ALG = [b'{"typ":"JWT"}', b'{"alg":null}', b'{"alg":256}', b'{"alg":["HS256"]}', b'{"alg":{"name":"HS256"}}', b'{"alg":true}', b"{}"]


@pytest.mark.parametrize("header", NO_STRING_ALG)
def test_alg_missing_null_or_not_a_string_is_one_kind(header: bytes) -> None:
    with pytest.raises(gateway.MalformedToken) as info:
        gateway.verify(make({"sub": "x"}, raw_header=header), KEY, now=NOW)
    assert info.value.kind == "malformed_token"
    pair = keypair("rsa")
    token = make_token("RS256", pair.private, {"sub": "x"}, raw_header=header)
    with pytest.raises(gateway.MalformedToken):
        gateway.verify(token, pair.public_pem, algorithms=["RS256"], now=NOW)


@pytest.mark.parametrize("alg", ["", "hs256", "rs256", "none", "None", "NONE", "HS256 ", "ES256K", "Ed25519", "RS1"])
def test_alg_string_not_allowed_is_algorithm_not_allowed(alg: str) -> None:
    pair = keypair("rsa")
    token = make_token("RS256", pair.private, {"sub": "x"}, header={"alg": alg})
    with pytest.raises(gateway.AlgorithmNotAllowed):
        gateway.verify(token, pair.public_pem, algorithms=["RS256"], now=NOW)


# --- options out of range -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, -100, 0, 15, (1 << 24) + 1])
def test_max_length_out_of_range_is_a_bad_option(value: int) -> None:
    for call in (lambda: gateway.Verifier(KEY, max_length=value), lambda: gateway.verify(make({}), KEY, max_length=value)):
        with pytest.raises(ValueError) as info:
            call()
        assert not isinstance(info.value, gateway.JWTError)
        assert info.value.kind == "bad_option"


@pytest.mark.parametrize("value", [1 << 63, 1 << 70])
def test_huge_max_length_and_cache_size_are_bad_options(value: int) -> None:
    for call in (
        lambda: gateway.Verifier(KEY, max_length=value),
        lambda: gateway.verify(make({}), KEY, max_length=value),
        lambda: gateway.Verifier(KEY, cache_size=value),
    ):
        with pytest.raises(ValueError) as info:
            call()
        assert info.value.kind == "bad_option"


@pytest.mark.parametrize("value", [-1, -(1 << 40)])
def test_negative_cache_size_is_a_bad_option(value: int) -> None:
    with pytest.raises(ValueError) as info:
        gateway.Verifier(KEY, cache_size=value)
    assert info.value.kind == "bad_option"


# --- encode writes only what verify accepts -------------------------------------------------------

BAD_HEADERS = [
    {"kid": 7},
    {"kid": None},
    {"kid": ["k1"]},
    {"typ": None},
    {"typ": 1},
    {"cty": {"a": 1}},
    {"crit": ["exp"]},
    {"crit": []},
    {"b64": False},
    {"b64": True},
    {"alg": "HS512"},
    {"alg": None},
]


@pytest.mark.parametrize("headers", BAD_HEADERS, ids=lambda h: json.dumps(h))
@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
def test_encode_refuses_headers_verify_would_refuse(headers: dict[str, Any], alg: str) -> None:
    key = KEY if alg == "HS256" else keypair({"RS256": "rsa", "ES256": "p256", "EdDSA": "ed25519"}[alg]).private_pem
    with pytest.raises(ValueError) as info:
        gateway.encode({"sub": "x"}, key, algorithm=alg, headers=headers)
    assert not isinstance(info.value, gateway.JWTError)
    assert_no_leak(info.value, keys=[key])


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
def test_encode_writes_string_headers_that_verify_accepts(alg: str) -> None:
    kind = {"RS256": "rsa", "ES256": "p256", "EdDSA": "ed25519"}.get(alg)
    key = KEY if kind is None else keypair(kind).private_pem
    verify_key = KEY if kind is None else keypair(kind).public_pem
    headers = {"kid": "k-1", "typ": "at+jwt", "cty": "JWT", "x-custom": [1, {"a": None}], "alg": alg}
    token = gateway.encode({"sub": "x"}, key, algorithm=alg, headers=headers)
    assert gateway.unverified_header(token) == headers
    assert gateway.verify(token, verify_key, algorithms=[alg]) == {"sub": "x"}


# --- iat, sub, jti, required nulls ----------------------------------------------------------------


@pytest.mark.parametrize(("iat", "leeway", "ok"), [(NOW, 0, True), (NOW + 1, 0, False), (NOW + 30, 30, True), (NOW + 31, 30, False), (NOW + 0.5, 0, False), (NOW - 10**6, 0, True)])
def test_iat_later_than_now_plus_leeway_is_not_yet_valid(iat: float, leeway: int, ok: bool) -> None:
    for key, token, algs in (
        (KEY, make({"iat": iat}), ["HS256"]),
        (keypair("ed25519").public_pem, make_token("EdDSA", keypair("ed25519").private, {"iat": iat}), ["EdDSA"]),
    ):
        if ok:
            assert gateway.verify(token, key, algorithms=algs, now=NOW, leeway=leeway) == {"iat": iat}
        else:
            with pytest.raises(gateway.NotYetValid):
                gateway.verify(token, key, algorithms=algs, now=NOW, leeway=leeway)
            # PyJWT's option turns the check off; the claim must still be a number.
            assert gateway.verify(token, key, algorithms=algs, now=NOW, leeway=leeway, options={"verify_iat": False}) == {"iat": iat}


@pytest.mark.parametrize("claim", ["sub", "jti"])
@pytest.mark.parametrize("value", [1, 0, None, True, 1.5, [], ["a"], {}, {"a": "b"}])
def test_non_string_sub_and_jti_are_malformed(claim: str, value: Any) -> None:
    with pytest.raises(gateway.MalformedToken):
        gateway.verify(make({claim: value}), KEY, now=NOW)
    assert gateway.verify(make({claim: "ok"}), KEY, now=NOW) == {claim: "ok"}


# (a null sub/jti is malformed whether required or not: see above)
@pytest.mark.parametrize("claim", ["foo", "exp", "aud", "iss", "nbf", "iat"])
def test_a_required_claim_that_is_null_is_missing(claim: str) -> None:
    token = make({claim: None})
    with pytest.raises(gateway.MissingClaim):
        gateway.verify(token, KEY, now=NOW, require=[claim])
    with pytest.raises(gateway.MissingClaim):
        gateway.verify(token, KEY, now=NOW, options={"require": [claim]})
    with pytest.raises(gateway.MissingClaim):
        gateway.Verifier(KEY, require=[claim], cache_size=8).verify(token, now=NOW)


def test_gateway_check_refuses_a_public_key_secret_whatever_the_algorithms(tmp_path: Path, material: dict[str, bytes]) -> None:
    """Listing an asymmetric algorithm beside HS256 does not turn the public key into a usable secret."""
    (tmp_path / "pub.pem").write_bytes(material["rsa-spki-pem"])
    text = CONFIG_HEAD
    for i, algs in enumerate((["RS256", "HS256"], ["HS512", "ES256"], ["HS384"])):
        text += f'\n[auth.p{i}]\nalgorithms = {json.dumps(algs)}\nsecret = "file:pub.pem"\nallow_weak_key = true\n'
    text += '\n[auth.env]\nalgorithms = ["HS256"]\nsecret = "env:IDP_JWK"\n'
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(text)
    env = {"PATH": "/usr/bin:/bin", "IDP_JWK": material["jwk-json-spaces"].decode()}
    r = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(cfg)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1, r.stdout
    for name in ("p0", "p1", "p2", "env"):
        assert f"{cfg}: auth.{name}" in r.stdout, r.stdout
    assert json.loads(material["jwk-json-spaces"])["x"] not in r.stdout
