"""The identity of a report request.

Two requests that would produce the same file get the same key, whatever the
order of their filters or the spelling of their ids, so the API can return a
cached file or join a running job instead of launching a second run. The key
is a run tag (``lxp/cache_key``) and the primary key of the in-flight table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


def _normalize(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _normalize(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0])) if v is not None}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_normalize(v) for v in value]
        # Id lists are sets: order and duplicates do not change the report.
        return (
            sorted(set(items), key=lambda v: (not isinstance(v, int), str(v)))
            if all(isinstance(v, (int, str)) for v in items)
            else items
        )
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() and not text.startswith("0") else text


def canonical_params(params: Mapping[str, Any]) -> str:
    """Canonical JSON of the parameters (sorted keys, sorted id sets, no nulls)."""
    return json.dumps(_normalize(params), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(report_slug: str, institution_id: int, params: Mapping[str, Any]) -> str:
    """sha256 hex of report + institution + canonical params."""
    payload = json.dumps(
        {"report": report_slug, "institution": int(institution_id), "params": json.loads(canonical_params(params))},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
