"""``/downloads/<key>``: files of local report storage behind signed links.

The link itself is the credential (it is opened from an e-mail, without a
token): the HMAC covers key, expiry and file name, so a tampered, expired or
re-pointed link gets 403 and never the file. With S3 storage the links are
presigned S3 URLs and this route answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from api.errors import ApiError, responses
from api.services import SettingsDep, StorageDep
from orchestration import links
from orchestration.storage import LocalReportStorage, content_disposition

router = APIRouter(tags=["downloads"])

_CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


@router.get(
    "/downloads/{key:path}",
    response_class=FileResponse,
    responses={
        200: {"description": "The report file, as an attachment with its readable file name."},
        **responses("permission_denied", "not_found"),
    },
    summary="Download a report file (signed link)",
    description="Serves a file of local report storage when the link's signature and expiry are valid.",
)
def download(
    storage: StorageDep,
    settings: SettingsDep,
    key: Annotated[str, Path(description="Storage key of the file.")],
    exp: Annotated[str | None, Query(description="Expiry, unix seconds.")] = None,
    fn: Annotated[str | None, Query(description="Download file name.")] = None,
    sig: Annotated[str | None, Query(description="HMAC-SHA256 signature.")] = None,
    rcp: Annotated[str | None, Query(description="Recipient the link was issued to, when bound.")] = None,
) -> FileResponse:
    if not isinstance(storage, LocalReportStorage):
        raise ApiError("not_found", "Downloads are served by the object store for this deployment")
    try:
        links.verify(key, exp, fn, sig, settings.link_secret, datetime.now(UTC), recipient=rcp)
    except links.LinkExpired:
        raise ApiError("permission_denied", "This download link has expired; request the report again") from None
    except links.LinkError:
        raise ApiError("permission_denied", "Invalid download link") from None
    try:
        path = storage.path(key)
    except ValueError:
        raise ApiError("permission_denied", "Invalid download link") from None
    if not path.is_file():
        raise ApiError("not_found", "The file of this link no longer exists")
    assert fn is not None
    ext = fn.rsplit(".", 1)[-1].lower()
    return FileResponse(
        path,
        media_type=_CONTENT_TYPES.get(ext, "application/octet-stream"),
        headers={"Content-Disposition": content_disposition(fn), "Cache-Control": "private, no-store"},
    )
