"""End to end with S3 storage (moto in server mode): the run writes the file to
the bucket, the webhook and the e-mail carry presigned links that download the
exact object, and a colleague served from the cache gets their own fresh link
while the first requester gets nothing new — even when the platform answers
the colleague's webhook too late and it is sent again (same Idempotency-Key,
so the receiver drops the copy) — and a later rebuild of the partition (the
monthly backfill, or an operator in the UI) leaves the object byte-identical,
so every link already sent still matches the recorded checksum."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from assets.contract import TAG_MONTH, TAG_TRIGGER
from assets.periods import partition_key
from assets.registry import by_slug
from orchestration.delivery.storage import report_key
from tests.e2e.checks import (
    accepted_webhooks,
    check_webhook,
    download,
    links_in,
    mails_to,
    plain_text,
    wait_mail,
    wait_webhook,
)
from tests.e2e.stack import Person, Stack, months_ago, new_home, sha256
from tests.services.http_receiver import HttpReceiver
from tests.services.s3 import CREDENTIALS
from tests.services.smtp import SmtpRecorder

pytestmark = pytest.mark.e2e

REPORT = "storyboard-usage"
PATH = f"/institution/reports/{REPORT}"
YEAR, MONTH = months_ago(1)
PERIOD = f"{YEAR}-{MONTH:02d}"
PREFIX = "lxp/reports"
NOTIFY_TIMEOUT = 120
WEBHOOK_TIMEOUT = 2


@pytest.fixture(scope="module")
def bucket(s3_client: Any) -> str:
    name = "e2e-reports"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_warehouse_path: Path,
    s3_endpoint: str,
    bucket: str,
    receiver: HttpReceiver,
    smtp: SmtpRecorder,
) -> Iterator[Stack]:
    stack = Stack(
        new_home(tmp_path_factory.mktemp("e2e_s3"), tiny_warehouse_path),
        {
            "LXP_STORAGE": f"s3://{bucket}/{PREFIX}",
            "LXP_S3_ENDPOINT_URL": s3_endpoint,
            **CREDENTIALS,
            "LXP_NOTIFY_URL": receiver.url,
            "LXP_SMTP_URL": smtp.url,
            "LXP_OUTBOX_BACKOFF_SECONDS": "1",
            "LXP_NOTIFY_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT),
        },
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def stored(stack: Stack, people: dict[int, list[Person]], s3_client: Any, bucket: str) -> dict[str, Any]:
    """A's request, run to completion; the object as the bucket holds it."""
    a = people[1][0]
    response = stack.request(PATH, a.bearer, month=MONTH, year=YEAR)
    assert response.status_code == 200, response.text
    job_id = response.json()["results"]["id"]
    job = stack.wait_job(job_id, a.bearer)
    assert job["status"] == "succeeded", job
    key = f"{PREFIX}/{report_key(REPORT, 1, PERIOD, 'xlsx')}"
    obj = s3_client.get_object(Bucket=bucket, Key=key)
    data = obj["Body"].read()
    return {
        "person": a,
        "job_id": job_id,
        "job": job,
        "key": key,
        "sha256": sha256(data),
        "metadata": obj["Metadata"],
        "last_modified": obj["LastModified"],
    }


def test_run_writes_to_s3_and_the_requester_gets_presigned_links_to_the_object(
    stack: Stack, stored: dict[str, Any], s3_endpoint: str, receiver: HttpReceiver, smtp: SmtpRecorder
) -> None:
    a: Person = stored["person"]
    assert stored["metadata"].get("sha256") == stored["sha256"]  # written with its checksum
    assert stored["job"]["url"].startswith(f"{s3_endpoint}/")
    assert sha256(download(stored["job"]["url"]).content) == stored["sha256"]

    (hook,) = wait_webhook(receiver, a.user, NOTIFY_TIMEOUT)
    body = check_webhook(hook, user=a.user, institution=1, subdomain=a.subdomain, report=REPORT)
    assert (body["status"], body["jobId"], body["cached"]) == ("succeeded", stored["job_id"], False)
    assert body["url"].startswith(f"{s3_endpoint}/") and "X-Amz-Signature=" in body["url"]
    got = download(body["url"])
    assert sha256(got.content) == stored["sha256"]
    assert f"{REPORT}_1_{PERIOD}.xlsx" in got.headers["content-disposition"]

    (mail,) = wait_mail(smtp, a.email, NOTIFY_TIMEOUT)
    assert mail.message["To"] == a.email and mail.message["Subject"].endswith(" está pronto")
    (link,) = links_in(plain_text(mail))
    assert sha256(download(link).content) == stored["sha256"]


def _signed_at(url: str) -> datetime:
    """When a SigV4 presigned URL was signed (``X-Amz-Date``, whole seconds, UTC)."""
    (stamp,) = parse_qs(urlsplit(url).query)["X-Amz-Date"]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def test_cache_hit_from_s3_notifies_only_the_new_requester_and_a_late_answer_is_resent_under_the_same_key(
    stack: Stack, stored: dict[str, Any], people: dict[int, list[Person]], receiver: HttpReceiver, smtp: SmtpRecorder
) -> None:
    a: Person = stored["person"]
    (first,) = wait_webhook(receiver, a.user, NOTIFY_TIMEOUT)
    b = people[1][1]
    # The platform processes B's first call but answers after our timeout.
    receiver.hang_next(1, seconds=WEBHOOK_TIMEOUT + 2)
    asked = datetime.now(UTC).replace(microsecond=0)
    response = stack.request(PATH, b.bearer, month=MONTH, year=YEAR)
    assert response.status_code == 200 and response.json() == {"results": {"cached": True}}, response.text

    late, resent = wait_webhook(receiver, b.user, NOTIFY_TIMEOUT, count=2)
    assert late.idempotency_key == resent.idempotency_key
    assert receiver.processed[late.idempotency_key] is late and receiver.duplicates == [resent]
    for hook in (late, resent):
        body = check_webhook(hook, user=b.user, institution=1, subdomain=b.subdomain, report=REPORT)
        assert body["status"] == "succeeded" and body["cached"] is True and body["jobId"].startswith("cache:")
        # A fresh link: signed when B's notification was sent (a presigned URL names no recipient, so one
        # signed in the same second as A's is the same URL; what matters is its full lifetime from now).
        assert _signed_at(body["url"]) >= max(asked, _signed_at(first.json()["url"]))
        assert sha256(download(body["url"]).content) == stored["sha256"]
    (mail,) = wait_mail(smtp, b.email, NOTIFY_TIMEOUT)
    (link,) = links_in(plain_text(mail))
    assert sha256(download(link).content) == stored["sha256"]

    assert len(accepted_webhooks(receiver, a.user)) == 1
    assert len(mails_to(smtp, a.email)) == 1
    assert len(accepted_webhooks(receiver, b.user)) == 2 and len(mails_to(smtp, b.email)) == 1


def test_rebuilding_the_partition_leaves_the_object_and_every_sent_link_byte_identical(
    stack: Stack, stored: dict[str, Any], s3_client: Any, bucket: str, receiver: HttpReceiver
) -> None:
    """The monthly backfill rebuilds last month for every institution, including
    partitions a requester was just sent a link to (CI once saw exactly that: the
    rebuilt xlsx carried a new zip timestamp and the cache-hit link's bytes no
    longer matched)."""
    a: Person = stored["person"]
    backfill = stack.launch_backfill(
        [by_slug(REPORT).name], [partition_key(1, date(YEAR, MONTH, 1))], {TAG_TRIGGER: "monthly", TAG_MONTH: PERIOD}
    )
    assert stack.wait_backfill(backfill, timeout=180)["status"] in ("COMPLETED", "COMPLETED_SUCCESS")
    obj = s3_client.get_object(Bucket=bucket, Key=stored["key"])
    assert obj["LastModified"] > stored["last_modified"]  # it was written again
    assert sha256(obj["Body"].read()) == stored["sha256"] == obj["Metadata"].get("sha256")
    (hook,) = wait_webhook(receiver, a.user, NOTIFY_TIMEOUT)
    assert sha256(download(hook.json()["url"]).content) == stored["sha256"]
