"""API test fixtures: a tiny hand-made DuckDB warehouse, the app in process
with a fake Dagster GraphQL transport, and JWT helpers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.dagster_client import DagsterClient
from api.services import Services
from orchestration.settings import Settings
from tests.api.fake_dagster import FakeDagster

SECRET = "test-secret-0123456789-0123456789-abcdef"
SCHEMA = Path(__file__).resolve().parents[2] / "assets" / "warehouse" / "schema.sql"

# Institution 1 (São Paulo) and 2 (Manaus) with schools, groups and library contents.
FIXTURE_SQL = """
INSERT INTO institutions VALUES (1, 'Escola Alfa', 'alfa', 'America/Sao_Paulo'), (2, 'Escola Beta', 'beta', 'America/Manaus');
INSERT INTO users VALUES
 (10, 1, 'u-10', 'e10', 'Ana', 'Souza', 'Ana Souza', 'ana@alfa.test', '123', NULL, 2, '2024-01-01', NULL, NULL),
 (11, 1, 'u-11', 'e11', 'João', 'Araújo', 'João Araújo', 'joao@alfa.test', NULL, NULL, 4, '2024-01-01', NULL, NULL),
 (12, 1, 'u-12', 'e12', 'Prof', 'Lima', 'Prof Lima', 'prof@alfa.test', NULL, NULL, 3, '2024-01-01', NULL, NULL),
 (20, 2, 'u-20', 'e20', 'Bia', 'Reis', 'Bia Reis', 'bia@beta.test', NULL, NULL, 2, '2024-01-01', NULL, NULL);
INSERT INTO schools VALUES (100, 1, 'Escola Norte'), (101, 1, 'Escola Sul'), (200, 2, 'Escola Beta Centro');
INSERT INTO groups VALUES ('g-a', 1, 100, 'Turma A'), ('g-b', 1, 101, 'Turma B'), ('g-x', 2, 200, 'Turma X');
INSERT INTO group_members VALUES (1, 'g-a', 11, 'student', '2024-01-01'), (1, 'g-a', 12, 'teacher', '2024-01-01'),
 (2, 'g-x', 20, 'student', '2024-01-01');
INSERT INTO disciplines VALUES (1, 1, 'Matemática'), (2, 2, 'Física');
INSERT INTO subjects VALUES (1, 1, 1, 'Álgebra');
INSERT INTO questions (id, institution_id, group_id, student_id, teacher_id, discipline_id, subject_id, description,
  anonymous, created_at, assigned_at, answered_at, answer_description, has_seen_answer) VALUES
 ('q-1', 1, 'g-a', 11, 12, 1, 1, 'Quanto é 2+2?', FALSE, '2026-03-10 13:00:00', '2026-03-10 13:05:00', '2026-03-10 14:00:00', '4', TRUE),
 ('q-2', 1, 'g-b', 11, NULL, 1, NULL, '=HYPERLINK(1)', FALSE, '2026-03-20 13:00:00', NULL, NULL, NULL, FALSE),
 ('q-x', 2, 'g-x', 20, NULL, 2, NULL, 'Outra instituição', FALSE, '2026-03-10 13:00:00', NULL, NULL, NULL, FALSE);
INSERT INTO teacher_schedules VALUES (1, 1, 100, 12, 1, 0, 480, 540), (2, 2, 200, 20, 2, 0, 480, 600);
INSERT INTO booking_rooms VALUES (1, 1, 100, 'Sala 1', 'Online');
INSERT INTO bookings (id, institution_id, school_id, group_id, student_id, teacher_id, discipline_id, booking_room_id,
  is_queue, created_at, scheduled_for) VALUES
 ('b-1', 1, 100, 'g-a', 11, 12, 1, 1, FALSE, '2026-03-01 12:00:00', '2026-03-05 15:00:00'),
 ('b-x', 2, 200, 'g-x', 20, NULL, 2, NULL, FALSE, '2026-03-01 12:00:00', '2026-03-05 15:00:00');
INSERT INTO library_contents (id, institution_id, user_id, title, description, type, monolith_type, status, body,
  duration, difficulty, tags, show_in_student_catalog, created_at, updated_at, deleted_at) VALUES
 (1, 1, 10, 'Introdução à Plataforma', 'Guia', 'text', 1, 1, '<p>Olá</p>', 0, 'medium', 'onboarding,guide', TRUE, '2026-06-15 12:00:00', '2026-06-15 12:00:00.123', NULL),
 (2, 1, 10, 'Vídeo de AVALIAÇÃO', NULL, 'video_online', 2, 0, NULL, 300, NULL, NULL, FALSE, '2026-06-16 12:00:00', '2026-06-16 12:00:00', NULL),
 (3, 1, 10, 'Pacote HTML5 100% interativo', NULL, 'html5', 3, 1, NULL, 0, NULL, NULL, FALSE, '2026-06-17 12:00:00', '2026-06-17 12:00:00', NULL),
 (4, 1, 10, 'Arquivo PDF', NULL, 'pdf', 4, 1, NULL, 0, NULL, NULL, FALSE, '2026-06-18 12:00:00', '2026-06-18 12:00:00', NULL),
 (5, 1, 10, 'Apagado', NULL, 'text', 1, 1, NULL, 0, NULL, NULL, FALSE, '2026-06-19 12:00:00', '2026-06-19 12:00:00', '2026-06-20 00:00:00'),
 (6, 2, 20, 'Introdução Beta', NULL, 'text', 1, 1, NULL, 0, NULL, NULL, FALSE, '2026-06-15 12:00:00', '2026-06-15 12:00:00', NULL);
INSERT INTO library_content_links VALUES (1, 1, 'cycle', 179), (1, 1, 'cycle', 180), (1, 1, 'school', 100),
 (1, 2, 'cycle', 180), (1, 2, 'discipline', 1), (2, 6, 'cycle', 179);
"""


@pytest.fixture(scope="session")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("api_wh") / "api.duckdb"
    con = duckdb.connect(str(path))
    con.execute(SCHEMA.read_text())
    con.execute(FIXTURE_SQL)
    con.close()
    return f"duckdb:///{path}"


@pytest.fixture
def settings(tmp_path: Path, warehouse_url: str) -> Settings:
    return Settings(
        home=tmp_path,
        warehouse_url=warehouse_url,
        jwt_secret=SECRET,
        jwt_algorithms="HS256",
        public_base_url="http://testserver",
        link_secret="link-secret-for-tests",
        rate_limit="1000/minute",
    )


@pytest.fixture
def fake_dagster() -> FakeDagster:
    return FakeDagster()


@pytest.fixture
def dagster_url(fake_dagster: FakeDagster) -> Iterator[str]:
    """The fake Dagster's GraphQL endpoint over real HTTP, for API subprocesses."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            response = fake_dagster.handle(httpx.Request("POST", f"http://fake{self.path}", content=body))
            self.send_response(response.status_code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def build_client(settings: Settings, fake: FakeDagster) -> TestClient:
    dagster = DagsterClient("http://dagster.test", transport=httpx.MockTransport(fake.handle))
    services = Services.from_settings(settings, dagster=dagster)
    return TestClient(create_app(settings, services=services), raise_server_exceptions=False)


@pytest.fixture
def client(settings: Settings, fake_dagster: FakeDagster) -> Iterator[TestClient]:
    with build_client(settings, fake_dagster) as c:
        yield c


def make_token(claims: dict[str, Any] | None = None, *, secret: str = SECRET, alg: str = "HS256", **extra: Any) -> str:
    payload: dict[str, Any] = {
        "institutionId": 1,
        "userId": 10,
        "subdomain": "alfa",
        "privilegio_id": 2,
        "exp": int(time.time()) + 600,
    }
    payload.update(claims or {})
    payload.update(extra)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm=alg)


def auth(claims: dict[str, Any] | None = None, **extra: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(claims, **extra)}"}


@pytest.fixture
def headers() -> Callable[..., dict[str, str]]:
    return auth
