"""SPEC §6 auth: 401 for anything wrong with the token, 400 for bad claims, 403 students on the library."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.api.auth_attacks import ENDPOINTS, attack_every_endpoint, rsa_keypair
from tests.api.conftest import SECRET, auth, build_client, make_token

LIBRARY = "/institution/library/contents"
STORYBOARD = "/institution/reports/storyboard-usage?month=6&year=2026"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code and body["details"] is None and body["message"]
    return body


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    return rsa_keypair()


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwdw==",
        "Token abc",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer " + "x" * 5000,
    ],
    ids=[
        "missing",
        "empty",
        "bearer-no-token",
        "bearer-blank",
        "basic",
        "other-scheme",
        "garbled",
        "garbled-parts",
        "huge",
    ],
)
def test_missing_or_garbled_token_is_401(client: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    _assert_error(client.get(LIBRARY, headers=headers), 401, "unauthenticated")
    _assert_error(client.get(STORYBOARD, headers=headers), 401, "unauthenticated")


def test_expired_token_is_401(client: TestClient) -> None:
    token = make_token(exp=int(time.time()) - 3600)
    body = _assert_error(client.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}), 401, "unauthenticated")
    assert "expired" in body["message"]


def test_token_without_exp_is_accepted(client: TestClient) -> None:
    token = make_token(exp=None)
    assert client.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_bad_signature_is_401(client: TestClient) -> None:
    token = make_token(secret="another-secret-another-secret-0123456789")
    _assert_error(client.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}), 401, "unauthenticated")


def test_tampered_payload_is_401(client: TestClient) -> None:
    header, _, sig = make_token().split(".")
    forged = _b64({"institutionId": 2, "userId": 20, "subdomain": "beta", "privilegio_id": 2})
    _assert_error(
        client.get(LIBRARY, headers={"Authorization": f"Bearer {header}.{forged}.{sig}"}), 401, "unauthenticated"
    )


def test_alg_none_is_401(client: TestClient) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'institutionId': 1, 'userId': 10, 'subdomain': 'alfa', 'privilegio_id': 2})}."
    body = _assert_error(client.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}), 401, "unauthenticated")
    assert "not allowed" in body["message"]


def test_algorithm_outside_allow_list_is_401(client: TestClient) -> None:
    token = make_token(alg="HS512", secret="x" * 64)
    _assert_error(client.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}), 401, "unauthenticated")


def test_lowercase_bearer_scheme_is_accepted(client: TestClient) -> None:
    assert client.get(LIBRARY, headers={"Authorization": f"bearer {make_token()}"}).status_code == 200


def test_rs256_accepted_and_hs_rs_confusion_refused(settings, fake_dagster, rsa_keys) -> None:
    private, public = rsa_keys
    rs_settings = settings.model_copy(update={"jwt_algorithms": "RS256,HS256", "jwt_public_key": public})
    claims = {"institutionId": 1, "userId": 10, "subdomain": "alfa", "privilegio_id": 2}
    with build_client(rs_settings, fake_dagster) as client:
        good = jwt.encode(claims, private, algorithm="RS256")
        assert client.get(LIBRARY, headers={"Authorization": f"Bearer {good}"}).status_code == 200
        # Key confusion: an HS256 token MACed with the RSA *public* key must not verify.
        header = _b64({"alg": "HS256", "typ": "JWT"})
        payload = _b64(claims)
        import hashlib
        import hmac

        mac = hmac.new(public.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        confused = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        _assert_error(client.get(LIBRARY, headers={"Authorization": f"Bearer {confused}"}), 401, "unauthenticated")
        # The HS256 secret still works for HS256 tokens, as allowed.
        assert client.get(LIBRARY, headers={"Authorization": f"Bearer {make_token()}"}).status_code == 200


def test_rs256_not_allowed_when_only_hs256_configured(client: TestClient, rsa_keys) -> None:
    private, _ = rsa_keys
    token = jwt.encode({"institutionId": 1, "userId": 10, "subdomain": "alfa"}, private, algorithm="RS256")
    _assert_error(client.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}), 401, "unauthenticated")


@pytest.mark.parametrize(
    "claims, missing",
    [
        ({"institutionId": None}, "institutionId"),
        ({"userId": None}, "userId"),
        ({"subdomain": None}, "subdomain"),
        ({"institutionId": "abc"}, "institutionId"),
        ({"institutionId": True}, "institutionId"),
        ({"institutionId": -3}, "institutionId"),
        ({"institutionId": 1.5}, "institutionId"),
        ({"userId": [1]}, "userId"),
        ({"subdomain": 12}, "subdomain"),
        ({"subdomain": "  "}, "subdomain"),
    ],
)
def test_missing_or_mistyped_claims_are_400(client: TestClient, claims: dict, missing: str) -> None:
    for path in (LIBRARY, STORYBOARD):
        body = _assert_error(client.get(path, headers=auth(claims)), 400, "invalid_argument")
        assert missing in body["message"] and "JWT claims" in body["message"]


def test_userID_spelling_and_string_ids_are_accepted(client: TestClient) -> None:
    token = make_token({"userId": None, "userID": 10, "institutionId": "1"})
    assert client.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_library_requires_privilege_claim_and_refuses_students(client: TestClient) -> None:
    body = _assert_error(client.get(LIBRARY, headers=auth({"privilegio_id": None})), 400, "invalid_argument")
    assert "privilegio_id" in body["message"]
    _assert_error(client.get(LIBRARY, headers=auth({"privilegio_id": "x"})), 400, "invalid_argument")
    _assert_error(client.get(LIBRARY, headers=auth({"privilegio_id": 4, "userId": 11})), 403, "permission_denied")
    assert client.get(LIBRARY, headers=auth({"privilegio_id": 1})).status_code == 200


def _secured_operations(app) -> set[tuple[str, str]]:
    schema = app.openapi()
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    }


def test_the_attack_endpoint_list_covers_every_secured_operation(client: TestClient) -> None:
    listed = {(method, path.split("?")[0].replace("{job}", "{job_id}")) for method, path, _ in ENDPOINTS}
    assert listed == _secured_operations(client.app)


def test_every_attack_is_refused_on_every_endpoint_before_anything_happens(client: TestClient, fake_dagster) -> None:
    """Issue 10 #4/#6: out-of-range ids were 500s (after launching a run), a 100 KB token was accepted."""
    claims = {"institutionId": 1, "userId": 10, "subdomain": "alfa", "privilegio_id": 2}
    job = client.get(STORYBOARD, headers=auth()).json()["results"]["id"]
    launched = len(fake_dagster.launches())
    tried, _ = attack_every_endpoint(client, SECRET, claims, job)
    assert len(fake_dagster.launches()) == launched and fake_dagster.runs[job].status == "QUEUED"
    assert tried >= 30 * len(ENDPOINTS)


@pytest.mark.parametrize("value", [2**63, 2**63 - 1, 10**18, str(2**63), 1e19])
def test_ids_at_or_past_the_bound_are_400_naming_the_claim(client: TestClient, value) -> None:
    for claim in ("institutionId", "userId"):
        for path in (LIBRARY, STORYBOARD, "/institution/reports/jobs", "/institution/reports/jobs/x"):
            body = _assert_error(client.get(path, headers=auth({claim: value})), 400, "invalid_argument")
            assert claim in body["message"] and "below 10^18" in body["message"]


def test_largest_accepted_id_works(client: TestClient) -> None:
    response = client.get("/institution/reports/jobs", headers=auth({"userId": 10**18 - 1}))
    assert response.status_code == 200 and response.json()["total"] == 0
