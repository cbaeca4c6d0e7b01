"""Tenant isolation on every endpoint of the real stack: a user of another institution,
and another user of the same institution, never see, cancel or download someone's job,
never get data by passing another institution's ids, and the library lists only the
caller's institution. Each probe counts; the figure printed is leaks=0."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import duckdb
import httpx
import pytest

from tests.e2e.stack import Person, Stack, months_ago
from tests.reliability.report import summary

pytestmark = pytest.mark.e2e

JOBS = "/institution/reports/jobs"


def _ids(home: Path, sql: str, institution: int) -> list:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return [r[0] for r in con.execute(sql, [institution]).fetchall()]


def _edit(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = changes.pop("path", parts.path)
    query.update(changes)
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def test_no_endpoint_leaks_across_tenants_or_users(
    stack: Stack, people: dict[int, list[Person]], rel_home: Path
) -> None:
    owner, colleague, outsider = people[1][5], people[1][6], people[2][2]
    year, month = months_ago(1)
    period = f"{year}-{month:02d}"
    launched = stack.request(
        "/institution/reports/catalog", owner.bearer, start_date=f"{period}-01", end_date=f"{period}-09"
    )
    assert launched.status_code == 200, launched.text
    job_id = launched.json()["results"]["id"]
    job = stack.wait_job(job_id, owner.bearer)
    assert job["status"] == "succeeded" and job["url"], job
    assert httpx.get(job["url"], timeout=30).status_code == 200  # the control: the owner's link works

    probes = 0
    leaks: list[str] = []

    def expect(what: str, response: httpx.Response, statuses: tuple[int, ...]) -> None:
        nonlocal probes
        probes += 1
        if response.status_code not in statuses:
            leaks.append(f"{what}: {response.status_code} {response.content[:200]!r}")

    def call(method: str, path: str, person: Person, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {person.bearer}"}
        return httpx.request(method, f"{stack.base}{path}", headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]

    for who in (colleague, outsider):
        expect(f"GET job as {who}", call("GET", f"{JOBS}/{job_id}", who), (404,))
        expect(f"DELETE job as {who}", call("DELETE", f"{JOBS}/{job_id}", who), (404,))
        history = call("GET", JOBS, who, params={"limit": 100})
        expect(f"history of {who}", history, (200,))
        if any(item["id"] == job_id for item in history.json()["items"]):
            leaks.append(f"history of {who} lists {job_id}")
    # The outsider forging the owner's institution with their own user id is still nobody's requester.
    forged = Person(owner.institution, outsider.user, "x", owner.subdomain)
    expect("GET job with forged institution", call("GET", f"{JOBS}/{job_id}", forged), (404,))
    expect("library with forged institution", call("GET", "/institution/library/contents", forged), (403,))

    # Edited download links: re-pointed at another institution's key, renamed, extended, unsigned.
    url = job["url"]
    other_key = (
        urlsplit(url).path.replace("institution%3D1/", "institution%3D2/").replace("institution=1/", "institution=2/")
    )
    assert other_key != urlsplit(url).path, url
    for what, edited in (
        ("other institution's key", _edit(url, path=other_key)),
        ("renamed file", _edit(url, fn="other.xlsx")),
        ("extended expiry", _edit(url, exp=str(int(parse_qs(urlsplit(url).query)["exp"][0]) + 3600))),
        ("forged recipient", _edit(url, rcp=str(outsider.user))),
        ("no signature", _edit(url, sig="")),
        ("another signature", _edit(url, sig="A" * 43)),
    ):
        response = httpx.get(edited, timeout=30)
        expect(f"edited link ({what})", response, (403, 404))
        if response.content[:2] == b"PK":
            leaks.append(f"edited link ({what}) downloaded a file")

    # Synchronous and async reports with the owner's institution's ids, as the outsider.
    groups = _ids(rel_home, "SELECT id FROM groups WHERE institution_id = ? ORDER BY id LIMIT 2", 1)
    schools = _ids(rel_home, "SELECT id FROM schools WHERE institution_id = ? ORDER BY id LIMIT 2", 1)
    ms = {"start_date": 1735689600000, "end_date": 1767225599999}
    for path, body in (
        ("/reports/questions", {**ms, "group_ids": groups}),
        ("/reports/bookings", {**ms, "school_ids": schools}),
        ("/reports/bookings-workload", {"school_ids": schools}),
        ("/reports/groups-usage", {**ms, "group_ids": groups}),
    ):
        expect(f"POST {path} with institution 1's ids", call("POST", path, outsider, json=body), (400,))
    school_list = ",".join(map(str, schools))
    catalog = {"start_date": f"{period}-01", "end_date": f"{period}-09", "school_ids": school_list}
    expect(
        "catalog with institution 1's schools",
        call("GET", "/institution/reports/catalog", outsider, params=catalog),
        (400,),
    )

    # Library: only the caller's institution, whatever the search.
    mine = set(_ids(rel_home, "SELECT id FROM library_contents WHERE institution_id = ?", outsider.institution))
    for params in ({"limit": 100}, {"limit": 100, "page": 2}, {"search": "a", "limit": 100}):
        response = call("GET", "/institution/library/contents", outsider, params=params)
        expect(f"library {params}", response, (200,))
        ids = {int(item["id"]) for item in response.json()["items"]}
        if not ids <= mine:
            leaks.append(f"library {params} lists another institution's contents: {sorted(ids - mine)}")

    assert leaks == [], leaks
    summary("tenant-isolation", probes=probes, leaks=len(leaks))
