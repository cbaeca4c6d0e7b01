"""Seed 003: the institution library listing (live, not a report run).

Search is a case- and accent-insensitive partial title match done in SQL that
runs unchanged on DuckDB and PostgreSQL: ``translate(lower(title), ...)``
folds the accented letters of Portuguese (and neighbours) on the column side,
and the same folding is applied to the search term in Python. No extension
(``unaccent``/``strip_accents``) is needed on either engine.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.dependencies import AdminPrincipal
from api.errors import ApiError, responses
from api.institutions import warehouse_error
from api.services import UsersDep, WarehouseDep, warehouse_version
from api.users import UserDirectory
from orchestration.warehouse.client import Warehouse

router = APIRouter(prefix="/institution/library", tags=["library"])

SUPPORTED_TYPES = ("text", "video_online", "html5")

# Upper- and lower-case accented letters -> plain lower-case letters. Upper
# case is listed because PostgreSQL's lower() leaves non-ASCII letters alone
# under the C collation.
_ACCENTED = "ÀÁÂÃÄÅàáâãäåÈÉÊËèéêëÌÍÎÏìíîïÒÓÔÕÖòóôõöÙÚÛÜùúûüÇçÑñÝýÿ"
_PLAIN = "aaaaaaaaaaaaeeeeeeeeiiiiiiiioooooooooouuuuuuuuccnnyyy"
assert len(_ACCENTED) == len(_PLAIN)


class ContentType(StrEnum):
    text = "text"
    video_online = "video_online"
    html5 = "html5"


class LibraryItem(BaseModel):
    id: int
    institutionId: int
    userId: int
    title: str
    description: str | None
    type: str = Field(description="text, video_online or html5.")
    monolithType: int
    status: int = Field(description="0: Draft. 1: Published.")
    body: str | None
    fileUrl: str | None
    videoUrl: str | None
    duration: int
    thumbnailUrl: str | None
    catalogCoverRectangularUrl: str | None
    cycleIds: list[int]
    cycleStageIds: list[int]
    disciplineIds: list[int]
    schoolIds: list[int]
    difficulty: str | None
    tags: str | None
    source: str | None
    authors: str | None
    disablePlayerControls: bool
    showInStudentCatalog: bool
    showInVisitorCatalog: bool
    blockCatalogLoggedOut: bool
    showCourseDetails: bool
    showInRelatedVideos: bool
    videoOrientation: str | None
    createdAt: str = Field(description="ISO 8601 UTC with milliseconds, e.g. 2026-06-15T12:00:00.000Z.")
    updatedAt: str


class LibraryPage(BaseModel):
    items: list[LibraryItem]
    total: int = Field(description="Total matching items across all pages.")
    page: int
    limit: int


def fold(text: str) -> str:
    """Lower-case, accent-free form of a search term (mirrors the SQL side)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def like_pattern(term: str) -> str:
    escaped = fold(term).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def iso_ms(value: datetime | None) -> str | None:
    """Naive UTC warehouse timestamp -> ``2026-06-15T12:00:00.000Z``."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _check_linked(users: UserDirectory, institution_id: int, user_id: int) -> None:
    """Seed 003: 403 when the token's user is not an (undeleted) user of its institution.

    Answered from the per-process user directory (cached for a minute, like institutions).
    """
    try:
        found = users.lookup(user_id, institution_id)
    except Exception as exc:
        raise warehouse_error(exc) from exc
    if found is None:
        raise ApiError("permission_denied", "User is not linked to this institution")


_DAY_COUNTS: OrderedDict[tuple[Any, ...], list[tuple[date, int]]] = OrderedDict()
_DAY_COUNTS_LOCK = threading.Lock()
_DAY_COUNTS_MAX = 128  # listings (institution x filters); a few hundred (day, n) pairs each


def _day_counts(warehouse: Warehouse, condition: str, params: dict[str, Any]) -> list[tuple[date, int]]:
    """Matching contents per creation day, newest day first.

    Every page of one listing needs the same counts, so they are kept per
    warehouse version when there is one (a DuckDB file is immutable until
    replaced, so the memo is exact); without one they are always queried.
    """
    version = warehouse_version(warehouse)
    key = None
    if version is not None:
        key = (
            version,
            condition,
            tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())),
        )
        with _DAY_COUNTS_LOCK:
            hit = _DAY_COUNTS.get(key)
            if hit is not None:
                _DAY_COUNTS.move_to_end(key)
                return hit
    days = warehouse.query(
        f"SELECT CAST(c.created_at AS DATE) AS day, COUNT(*) AS n FROM library_contents c WHERE {condition} GROUP BY 1",
        params,
    )
    counts = sorted(
        ((d, int(n)) for d, n in zip(days["day"].to_list(), days["n"].to_list(), strict=True)), reverse=True
    )
    if key is not None:
        with _DAY_COUNTS_LOCK:
            _DAY_COUNTS[key] = counts
            while len(_DAY_COUNTS) > _DAY_COUNTS_MAX:
                _DAY_COUNTS.popitem(last=False)
    return counts


def _page(warehouse: Warehouse, condition: str, params: dict[str, Any], *, offset: int, limit: int) -> dict[str, Any]:
    """Total, one page (newest first) and the page's links.

    Sorting every match of a 100k-content institution to take 20 rows costs
    more than the rest of the request. So the count is taken per creation day
    (one scan, as a plain count costs, and shared by every page of the
    listing), and the page query only sorts the days that can hold the page:
    every row of those days and of the newer ones, so the order and the
    offset are exactly those of the full sort.
    """
    counts = _day_counts(warehouse, condition, params)
    total = sum(n for _, n in counts)
    if offset >= total:
        return {"total": total, "page": None, "links": None}
    since, seen = None, 0
    for day, n in counts:
        seen += int(n)
        if seen >= offset + limit:
            since = datetime(day.year, day.month, day.day)
            break
    window = "" if since is None else " AND c.created_at >= :since"
    page = warehouse.query(
        f"SELECT c.* FROM library_contents c WHERE {condition}{window}"
        " ORDER BY c.created_at DESC, c.id DESC LIMIT :limit OFFSET :offset",
        {**params, "since": since, "limit": limit, "offset": offset},
    )
    ids = [int(v) for v in page["id"].to_list()]
    if not ids:  # rows deleted between the two queries
        return {"total": total, "page": page, "links": None}
    links = warehouse.query(
        "SELECT l.content_id, l.link_type, l.ref_id FROM library_content_links l "
        "WHERE l.institution_id = :institution_id AND l.content_id = ANY(:ids)",
        {"institution_id": params["institution_id"], "ids": ids},
    ).sort("content_id", "ref_id")
    return {"total": total, "page": page, "links": links}


_LINK_FIELDS = {
    "cycle": "cycleIds",
    "cycle_stage": "cycleStageIds",
    "discipline": "disciplineIds",
    "school": "schoolIds",
}


@router.get(
    "/contents",
    response_model=LibraryPage,
    responses=responses("invalid_argument", "unauthenticated", "permission_denied", "unavailable"),
    summary="List library contents",
    description=(
        "Standalone library contents of the token's institution (types text, video_online, html5), newest first. "
        "Requires an admin token: students (privilegio_id 4) and users not linked to the institution get 403."
    ),
)
def list_contents(
    principal: AdminPrincipal,
    users: UsersDep,
    warehouse: WarehouseDep,
    type: Annotated[
        ContentType | None,
        Query(
            description="Filter by type.", json_schema_extra={"accepted": "Must be one of: text, video_online, html5"}
        ),
    ] = None,
    status: Annotated[int | None, Query(ge=0, le=1, description="0: Draft. 1: Published.")] = None,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Partial title match, case- and accent-insensitive.",
            json_schema_extra={"accepted": "Must be a string of at most 200 characters"},
        ),
    ] = None,
    cycleId: Annotated[
        int | None, Query(ge=1, le=9_223_372_036_854_775_807, description="Linked cycle id (positive integer).")
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number. Default 1.")] = 1,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page. Default 20, maximum 100.")] = 20,
) -> dict[str, Any]:
    _check_linked(users, principal.institution_id, principal.user_id)
    # ``= ANY(list)`` rather than ``IN (...)``: the same on both engines, and DuckDB
    # evaluates it faster over 100k rows (psycopg2 sends the list as an ARRAY).
    where = ["c.institution_id = :institution_id", "c.deleted_at IS NULL", "c.type = ANY(:types)"]
    params: dict[str, Any] = {"institution_id": principal.institution_id, "types": list(SUPPORTED_TYPES)}
    if type is not None:
        where.append("c.type = :type")
        params["type"] = type.value
    if status is not None:
        where.append("c.status = :status")
        params["status"] = status
    if search is not None and search.strip():
        where.append("translate(lower(c.title), :accented, :plain) LIKE :pattern ESCAPE '\\'")
        params.update(accented=_ACCENTED, plain=_PLAIN, pattern=like_pattern(search.strip()))
    if cycleId is not None:
        where.append(
            "EXISTS (SELECT 1 FROM library_content_links l WHERE l.institution_id = c.institution_id "
            "AND l.content_id = c.id AND l.link_type = 'cycle' AND l.ref_id = :cycle_id)"
        )
        params["cycle_id"] = cycleId
    condition = " AND ".join(where)
    try:
        frames = _page(warehouse, condition, params, offset=(page - 1) * limit, limit=limit)
    except Exception as exc:
        raise warehouse_error(exc) from exc
    total = frames["total"]
    links: dict[int, dict[str, list[int]]] = {}
    if frames["page"] is None:
        return {"items": [], "total": total, "page": page, "limit": limit}
    for link in frames["links"].iter_rows(named=True) if frames["links"] is not None else ():
        field = _LINK_FIELDS.get(link["link_type"])
        if field:
            links.setdefault(int(link["content_id"]), {}).setdefault(field, []).append(int(link["ref_id"]))
    items = []
    for r in frames["page"].iter_rows(named=True):
        linked = links.get(int(r["id"]), {})
        items.append(
            {
                "id": int(r["id"]),
                "institutionId": int(r["institution_id"]),
                "userId": int(r["user_id"]),
                "title": r["title"],
                "description": r["description"],
                "type": r["type"],
                "monolithType": int(r["monolith_type"]),
                "status": int(r["status"]),
                "body": r["body"],
                "fileUrl": r["file_url"],
                "videoUrl": r["video_url"],
                "duration": int(r["duration"] or 0),
                "thumbnailUrl": r["thumbnail_url"],
                "catalogCoverRectangularUrl": r["catalog_cover_rectangular_url"],
                "cycleIds": linked.get("cycleIds", []),
                "cycleStageIds": linked.get("cycleStageIds", []),
                "disciplineIds": linked.get("disciplineIds", []),
                "schoolIds": linked.get("schoolIds", []),
                "difficulty": r["difficulty"],
                "tags": r["tags"],
                "source": r["source"],
                "authors": r["authors"],
                "disablePlayerControls": bool(r["disable_player_controls"]),
                "showInStudentCatalog": bool(r["show_in_student_catalog"]),
                "showInVisitorCatalog": bool(r["show_in_visitor_catalog"]),
                "blockCatalogLoggedOut": bool(r["block_catalog_logged_out"]),
                "showCourseDetails": bool(r["show_course_details"]),
                "showInRelatedVideos": bool(r["show_in_related_videos"]),
                "videoOrientation": r["video_orientation"],
                "createdAt": iso_ms(r["created_at"]),
                "updatedAt": iso_ms(r["updated_at"]),
            }
        )
    return {"items": items, "total": total, "page": page, "limit": limit}
