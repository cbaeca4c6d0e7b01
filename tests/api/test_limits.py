"""Request size caps (issue 10 #6), in process: a 10 MB body and a 100 KB token were accepted.

The streamed-body and access-log checks against a real uvicorn process are in
tests/api/test_uvicorn_process.py.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from api.limits import MAX_HEADER_BYTES, MAX_TOKEN_BYTES
from tests.api.conftest import auth, build_client

QUESTIONS = "/reports/questions"
BODY = {"start_date": 1772323200000, "end_date": 1775001599999}


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == "invalid_argument"
    return str(body["message"])


def test_a_10mb_body_is_413_and_a_normal_one_is_answered(client: TestClient) -> None:
    huge = json.dumps({**BODY, "unknown": "x" * 10_000_000})
    message = _error(client.post(QUESTIONS, headers=auth(), content=huge), 413)
    assert "at most 1048576 bytes" in message
    assert client.post(QUESTIONS, headers=auth(), json=BODY).status_code == 200
    # Just under the cap: read, the unknown field ignored.
    fits = json.dumps({**BODY, "unknown": "x" * (1024 * 1024 - 200)})
    json_headers = {**auth(), "Content-Type": "application/json"}
    assert client.post(QUESTIONS, headers=json_headers, content=fits).status_code == 200


def test_the_cap_is_configurable(settings, fake_dagster) -> None:
    with build_client(settings.model_copy(update={"max_body_bytes": 100}), fake_dagster) as client:
        assert client.post(QUESTIONS, headers=auth(), json={**BODY, "pad": "x" * 100}).status_code == 413
        assert client.post(QUESTIONS, headers=auth(), json=BODY).status_code == 200


def test_streamed_body_without_length_is_cut_off(settings, fake_dagster) -> None:
    def chunks():
        yield json.dumps(BODY)[:-1].encode() + b', "pad": "'
        for _ in range(50):
            yield b"x" * 100_000
        yield b'"}'

    with build_client(settings.model_copy(update={"max_body_bytes": 1000}), fake_dagster) as client:
        response = client.post(QUESTIONS, headers={**auth(), "Content-Type": "application/json"}, content=chunks())
        _error(response, 413)


def test_bad_content_length_is_400(client: TestClient) -> None:
    response = client.post(QUESTIONS, headers={**auth(), "Content-Length": "12abc"}, content=b"{}")
    assert response.status_code in (400, 413) and response.json()["code"] == "invalid_argument"


def test_token_and_header_caps(client: TestClient) -> None:
    token_header = "Bearer " + "x" * MAX_TOKEN_BYTES
    message = _error(client.get("/institution/reports/jobs", headers={"Authorization": token_header}), 400)
    assert "Authorization header too large" in message
    many = {f"x-h{i}": "y" * 1000 for i in range(MAX_HEADER_BYTES // 1000 + 1)}
    _error(client.get("/institution/reports/jobs", headers={**auth(), **many}), 431)
    # A normal token with the usual headers is fine.
    assert client.get("/institution/reports/jobs", headers=auth()).status_code == 200
