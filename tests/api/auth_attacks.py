"""The JWT attack set and the list of every authenticated endpoint, shared by the
in-process auth matrix (tests/api/test_auth.py, fake Dagster) and the reliability
suite (tests/reliability, the real stack): one definition of what an attacker tries.

Every attack must be refused on every endpoint with the Encore body, before the
route does anything (no run launched, nothing read): 401 for anything wrong with
the token itself, 400 ``invalid_argument`` for a genuine token whose claims are
missing, mistyped or out of range, 400 for a token larger than the cap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.limits import MAX_TOKEN_BYTES

#: (method, path, json body) of every operation that takes a token, with valid parameters.
#: ``{job}`` is replaced by a job id. test_auth checks this covers every secured route of the app.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/institution/reports/storyboard-usage?month=6&year=2026", None),
    ("GET", "/institution/reports/catalog?start_date=2026-01-01&end_date=2026-01-31", None),
    ("GET", "/institution/reports/jobs?page=1&limit=5", None),
    ("GET", "/institution/reports/jobs/{job}", None),
    ("DELETE", "/institution/reports/jobs/{job}", None),
    ("POST", "/reports/questions", {"start_date": 1772323200000, "end_date": 1775001599999}),
    ("POST", "/reports/bookings", {"start_date": 1772323200000, "end_date": 1775001599999}),
    ("POST", "/reports/bookings-workload", {}),
    ("POST", "/reports/groups-usage", {"start_date": 1772323200000, "end_date": 1775001599999, "group_ids": ["g"]}),
    ("GET", "/institution/library/contents?page=1&limit=5", None),
]


@dataclass(frozen=True)
class Attack:
    name: str
    authorization: str | None  # the whole Authorization header; None = absent
    status: int
    code: str


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_keypair() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh 2048-bit key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def attacks(secret: str, claims: dict[str, Any], *, rsa_private: str, rsa_public: str) -> Iterator[Attack]:
    """Every attack against a server that verifies HS256 with ``secret``; ``claims`` are a valid caller's."""
    now = int(time.time())
    good = {**claims, "exp": now + 600}

    def hs(payload: dict[str, Any], key: str = secret) -> str:
        return "Bearer " + jwt.encode(payload, key, algorithm="HS256")

    yield Attack("missing-header", None, 401, "unauthenticated")
    yield Attack("not-bearer", "Basic dXNlcjpwdw==", 401, "unauthenticated")
    yield Attack("garbled", "Bearer not.a.jwt", 401, "unauthenticated")
    yield Attack("alg-none", f"Bearer {b64({'alg': 'none', 'typ': 'JWT'})}.{b64(good)}.", 401, "unauthenticated")
    yield Attack("alg-none-upper", f"Bearer {b64({'alg': 'NONE', 'typ': 'JWT'})}.{b64(good)}.", 401, "unauthenticated")
    header, payload = b64({"alg": "HS256", "typ": "JWT"}), b64(good)
    mac = hmac.new(rsa_public.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    yield Attack("hs-rs-confusion", f"Bearer {header}.{payload}.{b64(mac)}", 401, "unauthenticated")
    yield Attack(
        "rs256-not-allowed", "Bearer " + jwt.encode(good, rsa_private, algorithm="RS256"), 401, "unauthenticated"
    )
    yield Attack("hs512", "Bearer " + jwt.encode(good, secret + "x" * 64, algorithm="HS512"), 401, "unauthenticated")
    yield Attack("wrong-key", hs(good, "another-secret-another-secret-0123456789"), 401, "unauthenticated")
    forged = {**good, "institutionId": int(claims["institutionId"]) + 1}
    real_header, _, real_sig = hs(good)[len("Bearer ") :].split(".")
    yield Attack("tampered-payload", f"Bearer {real_header}.{b64(forged)}.{real_sig}", 401, "unauthenticated")
    yield Attack("expired", hs({**claims, "exp": now - 3600}), 401, "unauthenticated")
    yield Attack("not-yet-valid", hs({**good, "nbf": now + 3600}), 401, "unauthenticated")
    yield Attack("exp-not-a-number", hs({**claims, "exp": "tomorrow"}), 401, "unauthenticated")
    for name, change in (
        ("missing-institutionId", {"institutionId": None}),
        ("missing-userId", {"userId": None}),
        ("missing-subdomain", {"subdomain": None}),
        ("institutionId-string", {"institutionId": "abc"}),
        ("institutionId-bool", {"institutionId": True}),
        ("institutionId-float", {"institutionId": 1.5}),
        ("institutionId-negative", {"institutionId": -3}),
        ("institutionId-zero", {"institutionId": 0}),
        ("userId-list", {"userId": [1]}),
        ("userId-object", {"userId": {"id": 1}}),
        ("subdomain-number", {"subdomain": 12}),
        ("institutionId-2^63", {"institutionId": 2**63}),
        ("userId-2^63", {"userId": 2**63}),
        ("userId-2^64-string", {"userId": str(2**64)}),
        ("userId-1e19-float", {"userId": 1e19}),
        ("institutionId-huge", {"institutionId": 10**40}),
    ):
        changed = {k: v for k, v in {**good, **change}.items() if v is not None}
        yield Attack(name, hs(changed), 400, "invalid_argument")
    yield Attack("oversized-token", hs({**good, "pad": "x" * (MAX_TOKEN_BYTES + 1)}), 400, "invalid_argument")
    yield Attack("100KB-token", hs({**good, "pad": "x" * 100_000}), 400, "invalid_argument")


def check_error_body(status: int, body: Any, attack: Attack, where: str) -> None:
    """The refusal ``attack`` expects, in the Encore shape."""
    assert status == attack.status, f"{attack.name} on {where}: {status} {body}"
    assert isinstance(body, dict) and set(body) == {"code", "message", "details"}, f"{attack.name} on {where}: {body}"
    assert body["code"] == attack.code and body["details"] is None and body["message"], f"{attack.name} {where}: {body}"


def attack_every_endpoint(client: Any, secret: str, claims: dict[str, Any], job: str) -> tuple[int, set[str]]:
    """Every attack on every endpoint through ``client`` (a TestClient or an ``httpx.Client``: both have
    ``request``), each refusal checked; returns (requests sent, attack names). ``job`` fills ``{job}``."""
    private, public = rsa_keypair()
    tried, names = 0, set()
    for attack in attacks(secret, claims, rsa_private=private, rsa_public=public):
        headers = {} if attack.authorization is None else {"Authorization": attack.authorization}
        for method, path, body in ENDPOINTS:
            url = path.replace("{job}", job)
            response = client.request(method, url, headers=headers, json=body)
            check_error_body(response.status_code, response.json(), attack, f"{method} {url}")
            tried += 1
        names.add(attack.name)
    return tried, names
