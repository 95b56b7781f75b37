"""The attack corpus of issue 7, generated with fresh keys on every run.

`build(ctx)` returns Cases: each is one request (token, extra headers, path)
and the answer the filter must give. Every token here is refused; the test
(test_attacks.py) sends each through Envoy and checks that the counting
upstream never saw it. Tokens are assembled by hand (`sign_raw`) so headers
and payloads can be anything, duplicate members included.
"""

import base64
import datetime
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from jwt.algorithms import get_default_algorithms

import tokens

INVALID_TOKEN = (401, "invalid_token")
INVALID_REQUEST = (400, "invalid_request")
TOO_LARGE_FOR_ENVOY = (431, None)


@dataclass
class Case:
    name: str
    token: str | None = None  # sent as "Authorization: Bearer <token>"
    headers: list = field(default_factory=list)  # extra (name, value) pairs
    path: str = "/mcp"
    expect: tuple = INVALID_TOKEN  # (status, error= in WWW-Authenticate)


@dataclass
class Context:
    rsa: tokens.SigningKey  # trusted, published
    ec: tokens.SigningKey  # trusted, published
    attacker: tokens.SigningKey  # never published
    issuer: str
    audience: str
    attacker_jwks_url: str  # a live JWKS with the attacker's key: must never be fetched
    pss: tokens.SigningKey  # trusted, published, pinned to PS256


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def to_bytes(part):
    return part if isinstance(part, bytes) else json.dumps(part).encode()


def sign_raw(key, header, payload, alg=None):
    """`b64(header).b64(payload).sig` where header/payload are dicts or raw bytes."""
    signing_input = f"{b64(to_bytes(header))}.{b64(to_bytes(payload))}"
    algorithm = get_default_algorithms()[alg or key.alg]
    signature = algorithm.sign(signing_input.encode(), key.private_key)
    return f"{signing_input}.{b64(signature)}"


def plus_modulus(ctx):
    """A valid PS256 token whose signature s is re-encoded as s + n: the same integer mod n,
    so a verifier that skips RFC 8017's `s < n` accepts a second encoding of the token.
    Tokens are minted until s + n still fits in the modulus length (about a third do)."""
    n = ctx.pss.private_key.public_key().public_numbers().n
    size = (n.bit_length() + 7) // 8
    for jti in range(200):
        h, p, s = sign_raw(ctx.pss, header(ctx.pss), claims(ctx, jti=str(jti))).split(".")
        bigger = int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big") + n
        if bigger.bit_length() <= 8 * size:
            return f"{h}.{p}.{b64(bigger.to_bytes(size, 'big'))}"
    raise AssertionError("no PS256 signature left room for s + n")


def hmac_token(header, payload, secret):
    signing_input = f"{b64(to_bytes(header))}.{b64(to_bytes(payload))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def claims(ctx, **overrides):
    now = int(time.time())
    base = {"iss": ctx.issuer, "aud": ctx.audience, "sub": "e2e-user", "iat": now, "nbf": now, "exp": now + 300}
    base.update(overrides)
    return base


def header(key, **extra):
    return {"alg": key.alg, "typ": "JWT", "kid": key.kid, **extra}


def self_signed_cert(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.private_key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key.private_key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def raw_claims_json(ctx, *members):
    """A claims object with the members in order, duplicates allowed: raw JSON bytes."""
    base = claims(ctx)
    pairs = [(k, base[k]) for k in ("sub", "iat", "nbf")] + list(members)
    return ("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}").encode()


def build(ctx):
    rsa, ec, attacker = ctx.rsa, ctx.ec, ctx.attacker
    good = claims(ctx)
    valid = sign_raw(rsa, header(rsa), good)
    h, p, s = valid.split(".")
    rsa_public = rsa.private_key.public_key()
    pem = rsa_public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = rsa_public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pkcs1 = rsa_public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    ec_pem = ec.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    other = sign_raw(rsa, header(rsa), claims(ctx, sub="admin", aud="http://127.0.0.1:1/other"))
    padding = "x" * 20_000
    cases = [
        # alg: none, with and without a signature, in every spelling
        *(Case(f"alg {alg!r} unsigned", f"{b64(json.dumps({'alg': alg, 'kid': rsa.kid}))}.{p}.")
          for alg in ("none", "None", "NONE", "nOnE")),
        Case("alg none with a signature", f"{b64(json.dumps({'alg': 'none', 'kid': rsa.kid}))}.{p}.{s}"),
        Case("alg missing", f"{b64(json.dumps({'kid': rsa.kid}))}.{p}.{s}"),
        # HMAC keyed with the public key
        Case("HS256 keyed with RSA PEM", hmac_token({"alg": "HS256", "kid": rsa.kid}, good, pem)),
        Case("HS256 keyed with RSA DER (SPKI)", hmac_token({"alg": "HS256", "kid": rsa.kid}, good, der)),
        Case("HS256 keyed with RSA DER (PKCS1)", hmac_token({"alg": "HS256", "kid": rsa.kid}, good, pkcs1)),
        Case("HS256 keyed with EC PEM", hmac_token({"alg": "HS256", "kid": ec.kid}, good, ec_pem)),
        Case("HS512 keyed with RSA PEM, no kid", hmac_token({"alg": "HS512"}, good, pem)),
        # key-type confusion, signed with the real private keys
        Case("RS256 token naming the EC key", sign_raw(rsa, {"alg": "RS256", "kid": ec.kid}, good)),
        Case("ES256 token naming the RSA key", sign_raw(ec, {"alg": "ES256", "kid": rsa.kid}, good)),
        Case("PS256 token for an RS256-pinned key", sign_raw(rsa, {"alg": "PS256", "kid": rsa.kid}, good, "PS256")),
        # keys carried in the token
        Case("embedded jwk, attacker kid", sign_raw(attacker, header(attacker, jwk=attacker.public_jwk()), good)),
        Case("embedded jwk, trusted kid", sign_raw(attacker, header(rsa, jwk=attacker.public_jwk()), good)),
        Case("jku to attacker JWKS", sign_raw(attacker, header(attacker, jku=ctx.attacker_jwks_url), good)),
        Case("jku, trusted kid", sign_raw(attacker, header(rsa, jku=ctx.attacker_jwks_url), good)),
        Case("x5u to attacker", sign_raw(attacker, header(rsa, x5u=ctx.attacker_jwks_url), good)),
        Case("x5c self-signed", sign_raw(attacker, header(rsa, x5c=[self_signed_cert(attacker)]), good)),
        # kid injection
        *(Case(f"kid {kid!r}", sign_raw(attacker, {"alg": "RS256", "kid": kid}, good))
          for kid in ("../../../../../../dev/null", "/etc/passwd", "' OR '1'='1", f"{rsa.kid}\u0000",
                      "${jndi:ldap://127.0.0.1:1/a}", "*", "", f"{rsa.kid} ", rsa.kid.upper(),
                      f"../{rsa.kid}", "k" * 4000)),
        Case("kid as a number", sign_raw(rsa, {"alg": "RS256", "kid": 1}, good)),
        Case("kid as a list", sign_raw(rsa, {"alg": "RS256", "kid": [rsa.kid]}, good)),
        # crit and b64
        Case("crit unknown extension", sign_raw(rsa, header(rsa, crit=["urn:x:ext"], **{"urn:x:ext": 1}), good)),
        Case("crit naming exp", sign_raw(rsa, header(rsa, crit=["exp"], exp=good["exp"]), good)),
        Case("crit empty list", sign_raw(rsa, header(rsa, crit=[]), good)),
        Case("b64 false with crit", sign_raw(rsa, header(rsa, b64=False, crit=["b64"]), good)),
        Case("b64 false without crit", sign_raw(rsa, header(rsa, b64=False), good)),
        # duplicate members, properly signed
        Case("duplicate aud (other first)", sign_raw(rsa, header(rsa), raw_claims_json(
            ctx, ("iss", ctx.issuer), ("exp", good["exp"]), ("aud", "http://127.0.0.1:1/other"), ("aud", ctx.audience)))),
        Case("duplicate aud (ours first)", sign_raw(rsa, header(rsa), raw_claims_json(
            ctx, ("iss", ctx.issuer), ("exp", good["exp"]), ("aud", ctx.audience), ("aud", "http://127.0.0.1:1/other")))),
        Case("duplicate exp", sign_raw(rsa, header(rsa), raw_claims_json(
            ctx, ("iss", ctx.issuer), ("aud", ctx.audience), ("exp", 1), ("exp", good["exp"])))),
        Case("duplicate iss", sign_raw(rsa, header(rsa), raw_claims_json(
            ctx, ("iss", "http://evil"), ("iss", ctx.issuer), ("aud", ctx.audience), ("exp", good["exp"])))),
        Case("duplicate header alg", sign_raw(rsa, f'{{"alg":"none","alg":"RS256","kid":"{rsa.kid}"}}'.encode(), good)),
        # aud shapes
        Case("aud empty array", sign_raw(rsa, header(rsa), claims(ctx, aud=[]))),
        Case("aud array of non-strings", sign_raw(rsa, header(rsa), claims(ctx, aud=[1, None, True]))),
        Case("aud nested object", sign_raw(rsa, header(rsa), claims(ctx, aud={"aud": ctx.audience}))),
        Case("aud nested array", sign_raw(rsa, header(rsa), claims(ctx, aud=[[ctx.audience]]))),
        Case("aud with trailing slash", sign_raw(rsa, header(rsa), claims(ctx, aud=ctx.audience + "/"))),
        # exp shapes
        Case("exp as a string", sign_raw(rsa, header(rsa), claims(ctx, exp=str(good["exp"])))),
        Case("exp as a float", sign_raw(rsa, header(rsa), claims(ctx, exp=good["exp"] + 0.5))),
        Case("exp huge float", sign_raw(rsa, header(rsa), claims(ctx, exp=1e300))),
        Case("exp beyond i64", sign_raw(rsa, header(rsa), claims(ctx, exp=2**64 + 1))),
        Case("exp negative", sign_raw(rsa, header(rsa), claims(ctx, exp=-1))),
        Case("exp null", sign_raw(rsa, header(rsa), claims(ctx, exp=None))),
        Case("exp missing", sign_raw(rsa, header(rsa), {k: v for k, v in good.items() if k != "exp"})),
        Case("expired", sign_raw(rsa, header(rsa), claims(ctx, exp=int(time.time()) - 3600, nbf=0))),
        Case("nbf in the future", sign_raw(rsa, header(rsa), claims(ctx, nbf=int(time.time()) + 3600))),
        # iss shapes
        Case("iss with trailing slash", sign_raw(rsa, header(rsa), claims(ctx, iss=ctx.issuer + "/"))),
        Case("iss upper case", sign_raw(rsa, header(rsa), claims(ctx, iss=ctx.issuer.upper()))),
        Case("iss as a list", sign_raw(rsa, header(rsa), claims(ctx, iss=[ctx.issuer]))),
        Case("iss missing", sign_raw(rsa, header(rsa), {k: v for k, v in good.items() if k != "iss"})),
        # signature stripping, swapping, re-signing
        Case("signature stripped", f"{h}.{p}."),
        Case("signature segment dropped", f"{h}.{p}"),
        Case("four segments", f"{h}.{p}.{s}.{s}"),
        Case("payload swapped under a valid signature", f"{h}.{other.split('.')[1]}.{s}"),
        Case("signature from another valid token", f"{h}.{p}.{other.split('.')[2]}"),
        Case("PS256 signature re-encoded as s + n", plus_modulus(ctx)),
        Case("re-signed by attacker under trusted kid", sign_raw(attacker, header(rsa), good)),
        Case("re-signed by attacker, no kid", sign_raw(attacker, {"alg": "RS256"}, good)),
        Case("unknown kid", sign_raw(attacker, header(attacker), good)),
        # base64 damage
        Case("truncated signature", valid[:-1]),
        Case("truncated payload", f"{h}.{p[:-1]}.{s}"),
        Case("padded segments", f"{h}==.{p}=.{s}=="),
        Case("standard base64 alphabet", valid.replace("-", "+").replace("_", "/") if ("-" in valid or "_" in valid)
             else f"{h}.{p}+/.{s}"),
        Case("non-ASCII in payload segment", f"{h}.{p[:10]}é{p[10:]}.{s}"),
        Case("non-ASCII in signature segment", f"{h}.{p}.{s}\u00ff"),
        Case("whitespace inside the token", f"{h}. {p}.{s}"),
        # size
        Case("signed token over maxTokenBytes (~27 KiB)", sign_raw(rsa, header(rsa), claims(ctx, pad=padding))),
        Case("1 MiB token", "a" * (1 << 20), expect=TOO_LARGE_FOR_ENVOY),
        # request-level
        # Envoy joins repeated Authorization headers into one value ("Bearer a,Bearer b"); the
        # filter reads the comma as a second credential: RFC 6750's 400 invalid_request.
        Case("two Authorization headers", valid, headers=[("authorization", f"Bearer {valid}")],
             expect=INVALID_REQUEST),
        Case("two credentials in one Authorization header", f"{valid}, Bearer {valid}",
             expect=INVALID_REQUEST),
        Case("Authorization: Bearer (no token)", headers=[("authorization", "Bearer")], expect=INVALID_REQUEST),
        Case("Authorization: Bearer + spaces", headers=[("authorization", "Bearer    ")], expect=INVALID_REQUEST),
        Case("access_token in the query", path=f"/mcp?access_token={valid}", expect=INVALID_REQUEST),
        Case("access_token in the query and a header", valid, path=f"/mcp?access_token={valid}",
             expect=INVALID_REQUEST),
        Case("wrong audience (another resource)", sign_raw(rsa, header(rsa), claims(ctx, aud="http://127.0.0.1:1/mcp"))),
        Case("wrong audience, EC", sign_raw(ec, header(ec), claims(ctx, aud="http://other.example/mcp"))),
    ]
    return cases


def valid_tokens(ctx):
    """Positive controls: these must reach the upstream."""
    return {
        "RS256": sign_raw(ctx.rsa, header(ctx.rsa), claims(ctx)),
        "ES256": sign_raw(ctx.ec, header(ctx.ec), claims(ctx)),
        "PS256": sign_raw(ctx.pss, header(ctx.pss), claims(ctx)),
    }
