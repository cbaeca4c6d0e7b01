"""The API process (``uvicorn api.app:app``) under ``LXP_ENV=production``: with a published or weak
secret it exits 2 with one clear message (no traceback); with strong secrets it serves. In
development (every other test) the defaults only log a warning."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.services.api_process import ApiProcess, api_process

STRONG_JWT = "api-production-jwt-secret-0123456789abcdef"
STRONG_LINK = "api-production-link-secret-0123456789abcdef"


def _settings(home: Path, warehouse_url: str, **extra: str) -> dict[str, str]:
    return {"LXP_HOME": str(home), "LXP_WAREHOUSE_URL": warehouse_url, "LXP_ENV": "production", **extra}


def test_the_api_refuses_to_start_with_default_or_weak_secrets(tmp_path: Path, warehouse_url: str) -> None:
    settings = _settings(
        tmp_path,
        warehouse_url,
        LXP_LINK_SECRET="short-link-secret",
        LXP_NOTIFY_URL="http://127.0.0.1:1/hook",
    )
    api = ApiProcess(settings, tmp_path / "uvicorn.log")
    with pytest.raises(AssertionError, match="the API exited early"):
        api.start(timeout=90)
    assert api.proc is not None and api.proc.returncode == 2
    text = api.log_text()
    assert "lxp-reports API: refusing to start with LXP_ENV=production:" in text
    assert "LXP_JWT_SECRET is the built-in development default (published in the source)" in text
    assert "LXP_LINK_SECRET is 17 bytes; at least 32 are required" in text
    assert "LXP_NOTIFY_SECRET is the built-in development default" in text
    assert "Traceback" not in text


def test_the_api_starts_in_production_with_strong_secrets(tmp_path: Path, warehouse_url: str) -> None:
    settings = _settings(tmp_path, warehouse_url, LXP_JWT_SECRET=STRONG_JWT, LXP_LINK_SECRET=STRONG_LINK)
    with api_process(settings, tmp_path / "uvicorn.log") as api:
        assert httpx.get(f"{api.base}/openapi.json", timeout=10).status_code == 200
        assert "refusing" not in api.log_text() and "SECURITY" not in api.log_text()
