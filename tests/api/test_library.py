"""Seed 003: library listing filters, paging, item shape and tenant scoping."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.routers.library import fold, like_pattern
from tests.api.conftest import auth

URL = "/institution/library/contents"

SEED_ITEM_KEYS = [
    "id",
    "institutionId",
    "userId",
    "title",
    "description",
    "type",
    "monolithType",
    "status",
    "body",
    "fileUrl",
    "videoUrl",
    "duration",
    "thumbnailUrl",
    "catalogCoverRectangularUrl",
    "cycleIds",
    "cycleStageIds",
    "disciplineIds",
    "schoolIds",
    "difficulty",
    "tags",
    "source",
    "authors",
    "disablePlayerControls",
    "showInStudentCatalog",
    "showInVisitorCatalog",
    "blockCatalogLoggedOut",
    "showCourseDetails",
    "showInRelatedVideos",
    "videoOrientation",
    "createdAt",
    "updatedAt",
]


def _ids(client: TestClient, query: str = "", **claims) -> list[int]:
    response = client.get(f"{URL}{query}", headers=auth(claims or None))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_default_listing_newest_first_supported_types_only(client: TestClient) -> None:
    body = client.get(URL, headers=auth()).json()
    assert [i["id"] for i in body["items"]] == [3, 2, 1]  # no pdf (4), no deleted (5), not institution 2's (6)
    assert body["total"] == 3 and body["page"] == 1 and body["limit"] == 20


def test_item_has_every_seed_field_with_iso_ms_timestamps(client: TestClient) -> None:
    item = next(i for i in client.get(URL, headers=auth()).json()["items"] if i["id"] == 1)
    assert list(item) == SEED_ITEM_KEYS
    assert item == {
        "id": 1,
        "institutionId": 1,
        "userId": 10,
        "title": "Introdução à Plataforma",
        "description": "Guia",
        "type": "text",
        "monolithType": 1,
        "status": 1,
        "body": "<p>Olá</p>",
        "fileUrl": None,
        "videoUrl": None,
        "duration": 0,
        "thumbnailUrl": None,
        "catalogCoverRectangularUrl": None,
        "cycleIds": [179, 180],
        "cycleStageIds": [],
        "disciplineIds": [],
        "schoolIds": [100],
        "difficulty": "medium",
        "tags": "onboarding,guide",
        "source": None,
        "authors": None,
        "disablePlayerControls": False,
        "showInStudentCatalog": True,
        "showInVisitorCatalog": False,
        "blockCatalogLoggedOut": False,
        "showCourseDetails": False,
        "showInRelatedVideos": False,
        "videoOrientation": None,
        "createdAt": "2026-06-15T12:00:00.000Z",
        "updatedAt": "2026-06-15T12:00:00.123Z",
    }


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?type=text", [1]),
        ("?type=video_online", [2]),
        ("?status=0", [2]),
        ("?status=1", [3, 1]),
        ("?cycleId=179", [1]),
        ("?cycleId=180", [2, 1]),
        ("?cycleId=999", []),
        ("?search=introducao", [1]),
        ("?search=INTRODUÇÃO", [1]),
        ("?search=avaliacao", [2]),
        ("?search=Plata", [1]),
        ("?search=100%25", [3]),
        ("?search=%25", [3]),  # a literal %, not a wildcard
        ("?search=_", []),
        ("?search=video&type=video_online&status=0&cycleId=180", [2]),
        ("?search=", [3, 2, 1]),
    ],
)
def test_filters(client: TestClient, query: str, expected: list[int]) -> None:
    assert _ids(client, query) == expected


def test_paging_and_total(client: TestClient) -> None:
    first = client.get(f"{URL}?limit=2", headers=auth()).json()
    assert [i["id"] for i in first["items"]] == [3, 2] and first["total"] == 3
    second = client.get(f"{URL}?limit=2&page=2", headers=auth()).json()
    assert [i["id"] for i in second["items"]] == [1] and second["total"] == 3 and second["page"] == 2
    beyond = client.get(f"{URL}?limit=2&page=9", headers=auth()).json()
    assert beyond["items"] == [] and beyond["total"] == 3


def test_other_institution_sees_only_its_own(client: TestClient) -> None:
    assert _ids(client, institutionId=2, userId=20, subdomain="beta") == [6]
    assert _ids(client, "?cycleId=179", institutionId=2, userId=20, subdomain="beta") == [6]


@pytest.mark.parametrize(
    "query, message",
    [
        ("?limit=101", "Invalid limit. Must be between 1 and 100"),
        ("?limit=0", "Invalid limit. Must be between 1 and 100"),
        ("?page=0", "Invalid page. Must be between 1 and 1000000"),
        ("?page=abc", "Invalid page. Must be between 1 and 1000000"),
        ("?status=2", "Invalid status. Must be between 0 and 1"),
        ("?type=pdf", "Invalid type. Must be one of: text, video_online, html5"),
        ("?cycleId=0", "Invalid cycleId. Must be between 1 and 9223372036854775807"),
        ("?search=" + "a" * 201, "Invalid search. Must be a string of at most 200 characters"),
    ],
)
def test_invalid_parameters(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"{URL}{query}", headers=auth())
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_argument", "message": message, "details": None}


def test_fold_and_like_pattern() -> None:
    assert fold("AÇÃO Ñandú") == "acao nandu"
    assert like_pattern("50%_x\\") == "%50\\%\\_x\\\\%"


def test_user_not_linked_to_the_institution_is_403(client: TestClient) -> None:
    for claims in ({"userId": 20}, {"userId": 999}, {"institutionId": 2, "userId": 10, "subdomain": "beta"}):
        response = client.get(URL, headers=auth(claims))
        assert response.status_code == 403
        assert response.json() == {
            "code": "permission_denied",
            "message": "User is not linked to this institution",
            "details": None,
        }
