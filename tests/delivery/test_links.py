"""Signed local download links: only the exact, unexpired link works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestration.delivery import links

SECRET = "s3cr3t-for-links"
BASE = "https://reports.example.com/"
KEY_A = "storyboard-usage/institution=1/2026-06/storyboard-usage_1_2026-06.xlsx"
KEY_B = "storyboard-usage/institution=2/2026-06/storyboard-usage_2_2026-06.xlsx"
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
EXP = NOW + timedelta(days=7)


def parts(url: str) -> tuple[str, dict[str, str]]:
    split = urlsplit(url)
    return split.path, {k: v[0] for k, v in parse_qs(split.query).items()}


def test_signed_link_shape_and_roundtrip() -> None:
    url = links.sign(KEY_A, "storyboard-usage_1_2026-06.xlsx", EXP, SECRET, BASE)
    path, query = parts(url)
    assert url.startswith("https://reports.example.com/downloads/storyboard-usage/institution%3D1/2026-06/")
    assert path == "/downloads/storyboard-usage/institution%3D1/2026-06/storyboard-usage_1_2026-06.xlsx"
    assert query["exp"] == str(int(EXP.timestamp()))
    assert query["fn"] == "storyboard-usage_1_2026-06.xlsx"
    verified = links.verify_url(url, SECRET, NOW)
    assert verified.key == KEY_A
    assert verified.filename == "storyboard-usage_1_2026-06.xlsx"
    assert verified.expires_at == int(EXP.timestamp())
    links.verify(KEY_A, query["exp"], query["fn"], query["sig"], SECRET, NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key", KEY_A.replace("2026-06", "2026-05")),
        ("filename", "evil.xlsx"),
        ("exp", str(int(EXP.timestamp()) + 86400)),
        ("sig", "A" * 43),
        ("secret", "another-secret"),
    ],
)
def test_any_tampered_field_is_rejected(field: str, value: str) -> None:
    url = links.sign(KEY_A, "r.xlsx", EXP, SECRET, BASE)
    _, query = parts(url)
    args = {"key": KEY_A, "exp": query["exp"], "filename": query["fn"], "sig": query["sig"], "secret": SECRET}
    args[field] = value
    with pytest.raises(links.LinkInvalid):
        links.verify(args["key"], args["exp"], args["filename"], args["sig"], args["secret"], NOW)


def test_tampered_expiry_is_invalid_not_expired() -> None:
    url = links.sign(KEY_A, "r.xlsx", NOW - timedelta(seconds=1), SECRET, BASE)
    _, query = parts(url)
    with pytest.raises(links.LinkExpired):
        links.verify(KEY_A, query["exp"], "r.xlsx", query["sig"], SECRET, NOW)
    # Pushing the expiry into the future breaks the signature.
    with pytest.raises(links.LinkInvalid):
        links.verify(KEY_A, str(int(EXP.timestamp())), "r.xlsx", query["sig"], SECRET, NOW)


def test_expired_link_is_rejected_at_and_after_expiry() -> None:
    url = links.sign(KEY_A, "r.xlsx", EXP, SECRET, BASE)
    links.verify_url(url, SECRET, EXP - timedelta(seconds=1))
    with pytest.raises(links.LinkExpired):
        links.verify_url(url, SECRET, EXP)
    with pytest.raises(links.LinkExpired):
        links.verify_url(url, SECRET, EXP.timestamp() + 3600)


def test_link_for_file_a_cannot_fetch_file_b() -> None:
    url = links.sign(KEY_A, "storyboard-usage_1_2026-06.xlsx", EXP, SECRET, BASE)
    _, query = parts(url)
    with pytest.raises(links.LinkInvalid):
        links.verify(KEY_B, query["exp"], query["fn"], query["sig"], SECRET, NOW)
    foreign = url.replace("institution%3D1", "institution%3D2").replace("_1_", "_2_")
    with pytest.raises(links.LinkInvalid):
        links.verify_url(foreign, SECRET, NOW)


def test_recipient_is_bound_when_given() -> None:
    url = links.sign(KEY_A, "r.xlsx", EXP, SECRET, BASE, recipient="1:42")
    assert links.verify_url(url, SECRET, NOW).recipient == "1:42"
    with pytest.raises(links.LinkInvalid):
        links.verify_url(url.replace("rcp=1%3A42", "rcp=1%3A43"), SECRET, NOW)
    with pytest.raises(links.LinkInvalid):
        links.verify_url(url.replace("&rcp=1%3A42", ""), SECRET, NOW)


@pytest.mark.parametrize("exp", [None, "", "soon", "+1900000000", " 1900000000", "1.9e9"])
def test_malformed_or_missing_parameters_are_invalid(exp: str | None) -> None:
    url = links.sign(KEY_A, "r.xlsx", 1_900_000_000, SECRET, BASE)
    _, query = parts(url)
    with pytest.raises(links.LinkInvalid):
        links.verify(KEY_A, exp, "r.xlsx", query["sig"], SECRET, NOW)


def test_missing_signature_and_repeated_parameters_are_invalid() -> None:
    url = links.sign(KEY_A, "r.xlsx", EXP, SECRET, BASE)
    _, query = parts(url)
    with pytest.raises(links.LinkInvalid):
        links.verify(KEY_A, query["exp"], "r.xlsx", None, SECRET, NOW)
    with pytest.raises(links.LinkInvalid):
        links.verify_url(url + "&fn=other.xlsx", SECRET, NOW)
    with pytest.raises(links.LinkInvalid):
        links.verify_url(url.replace("/downloads/", "/files/"), SECRET, NOW)


def test_unicode_filename_roundtrips() -> None:
    url = links.sign(KEY_A, "relatório de uso.xlsx", EXP, SECRET, BASE)
    assert links.verify_url(url, SECRET, NOW).filename == "relatório de uso.xlsx"
