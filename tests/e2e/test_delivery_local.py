"""End to end with local storage: request -> Dagster run -> file -> webhook + e-mail -> download.

One `lxp-reports up` per module (the tests run in file order and build on each
other's requests): the requester's signed webhook and pt-BR e-mail carry a link
that downloads the exact stored file (for an ad-hoc catalog run too, with the
seed's ``typeReport=catalog``); a colleague served from the cache gets
their own notification while the first requester gets nothing new; a failed
run notifies its requester without a link; a webhook that fails its first
calls still sees exactly one accepted delivery per (job, recipient); and a
stack stopped mid-delivery (plus a worker that died holding leases) delivers
everything exactly once after a restart.

How the failed run fails: institution 2's storage directory for the month is
occupied by a plain file before the stack starts, so the run's write fails
(``NotADirectoryError``) the way a full disk or a read-only mount would. The
API is unaffected; only the Dagster run fails.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestration.delivery.storage import report_key
from orchestration.ledger import Ledger, idempotency_key
from orchestration.settings import Settings
from tests.e2e.checks import (
    accepted_webhooks,
    check_webhook,
    download,
    links_in,
    mails_to,
    plain_text,
    wait_mail,
    wait_webhook,
    webhook_calls,
)
from tests.e2e.stack import Person, Stack, months_ago, new_home, sha256, wait_until
from tests.services.http_receiver import HttpReceiver
from tests.services.smtp import SmtpRecorder

pytestmark = pytest.mark.e2e

REPORT = "storyboard-usage"
PATH = f"/institution/reports/{REPORT}"
CATALOG = "/institution/reports/catalog"
YEAR, MONTH = months_ago(1)
PERIOD = f"{YEAR}-{MONTH:02d}"
WEBHOOK_FAILURES = 2
CACHED = {"results": {"cached": True}}
#: A run finishes in ~10 s; its notification goes out at the next sensor tick
#: (every ~10 s) or, after a failed call, the one after.
NOTIFY_TIMEOUT = 120


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, tiny_warehouse_path: Path) -> Path:
    home = new_home(tmp_path_factory.mktemp("e2e_local"), tiny_warehouse_path)
    blocker = home / "reports" / Path(report_key(REPORT, 2, PERIOD, "xlsx")).parent
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a plain file where the run wants a directory\n")
    return home


@pytest.fixture(scope="module")
def stack(home: Path, receiver: HttpReceiver, smtp: SmtpRecorder) -> Iterator[Stack]:
    receiver.fail_next(WEBHOOK_FAILURES, 500)  # the platform's first answers are errors
    stack = Stack(
        home,
        {
            "LXP_NOTIFY_URL": receiver.url,
            "LXP_SMTP_URL": smtp.url,
            "LXP_OUTBOX_BACKOFF_SECONDS": "1",
        },
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def outbox(home: Path) -> Iterator[Ledger]:
    box = Ledger(f"sqlite:///{home / 'outbox.sqlite'}")
    yield box
    box.dispose()


@pytest.fixture(scope="module")
def launched(stack: Stack, people: dict[int, list[Person]]) -> dict[str, tuple[Person, str]]:
    """The runs start at once: A's monthly report for institution 1, F's (doomed)
    one for institution 2 and G's ad-hoc catalog (a date range) for institution 3."""
    out = {}
    for name, person in (("a", people[1][0]), ("f", people[2][0])):
        response = stack.request(PATH, person.bearer, month=MONTH, year=YEAR)
        assert response.status_code == 200, response.text
        out[name] = (person, response.json()["results"]["id"])
    g = people[3][0]
    response = stack.request(CATALOG, g.bearer, start_date=f"{PERIOD}-01", end_date=f"{PERIOD}-10")
    assert response.status_code == 200, response.text
    out["g"] = (g, response.json()["results"]["id"])
    return out


def _stored_sha(home: Path, institution: int, period: str = PERIOD) -> str:
    path = home / "reports" / report_key(REPORT, institution, period, "xlsx")
    assert path.is_file(), path
    return sha256(path.read_bytes())


def webhook_rows(outbox: Ledger, user: int, job_id: str | None = None) -> list[Any]:
    """The user's webhook deliveries (or their notification before it is routed to channels)."""
    return [n for n in outbox.deliveries.list(job_id=job_id, recipient_user_id=user) if n.channel in ("webhook", None)]


def test_requester_gets_signed_webhook_and_email_whose_links_download_the_stored_file(
    stack: Stack, launched: dict[str, tuple[Person, str]], receiver: HttpReceiver, smtp: SmtpRecorder, home: Path
) -> None:
    a, job_id = launched["a"]
    job = stack.wait_job(job_id, a.bearer)
    assert job["status"] == "succeeded", job
    stored = _stored_sha(home, 1)

    (hook,) = wait_webhook(receiver, a.user, NOTIFY_TIMEOUT)
    body = check_webhook(hook, user=a.user, institution=1, subdomain=a.subdomain, report=REPORT)
    assert (body["status"], body["jobId"], body["cached"]) == ("succeeded", job_id, False)
    assert body["url"].startswith(f"{stack.base}/downloads/")
    got = download(body["url"])
    assert sha256(got.content) == stored
    assert f"{REPORT}_1_{PERIOD}.xlsx" in got.headers["content-disposition"]

    (mail,) = wait_mail(smtp, a.email, NOTIFY_TIMEOUT)
    assert mail.message["To"] == a.email and mail.rcpt_tos == [a.email]
    assert mail.message["Subject"].startswith("Seu relatório ") and mail.message["Subject"].endswith(" está pronto")
    assert hook.idempotency_key in mail.message["Message-ID"]
    text = plain_text(mail)
    assert f"{MONTH:02d}/{YEAR}" in text and "O link expira em" in text
    (link,) = links_in(text)
    assert sha256(download(link).content) == stored


def test_failed_run_notifies_its_requester_with_status_failed_and_no_url(
    stack: Stack, launched: dict[str, tuple[Person, str]], receiver: HttpReceiver, smtp: SmtpRecorder
) -> None:
    f, job_id = launched["f"]
    job = stack.wait_job(job_id, f.bearer)
    assert job["status"] == "failed" and not job.get("url"), job

    (hook,) = wait_webhook(receiver, f.user, NOTIFY_TIMEOUT)
    body = check_webhook(hook, user=f.user, institution=2, subdomain=f.subdomain, report=REPORT)
    assert (body["status"], body["jobId"], body["cached"], body["url"]) == ("failed", job_id, False, None)

    (mail,) = wait_mail(smtp, f.email, NOTIFY_TIMEOUT)
    assert mail.message["Subject"].endswith("não pôde ser gerado")
    text = plain_text(mail)
    assert job_id in text and links_in(text) == []


def test_adhoc_run_notifies_with_the_seed_type_report_and_its_own_file(
    stack: Stack,
    launched: dict[str, tuple[Person, str]],
    receiver: HttpReceiver,
    smtp: SmtpRecorder,
    outbox: Ledger,
    home: Path,
) -> None:
    """Seed 001: the catalog's notification carries ``typeReport=catalog``; the
    ad-hoc file (a date range, not a month partition) is what the link serves."""
    g, job_id = launched["g"]
    job = stack.wait_job(job_id, g.bearer)
    assert job["status"] == "succeeded", job
    (hook,) = wait_webhook(receiver, g.user, NOTIFY_TIMEOUT)
    body = check_webhook(hook, user=g.user, institution=3, subdomain=g.subdomain, report="catalog")
    assert (body["status"], body["jobId"], body["cached"]) == ("succeeded", job_id, False)
    row = outbox.deliveries.list(job_id=job_id)[0]  # one per channel, the same file
    assert row.storage_key and "/adhoc/" in row.storage_key
    stored = sha256((home / "reports" / row.storage_key).read_bytes())
    assert sha256(download(body["url"]).content) == stored
    (mail,) = wait_mail(smtp, g.email, NOTIFY_TIMEOUT)
    text = plain_text(mail)
    assert f"01/{MONTH:02d}/{YEAR} a 10/{MONTH:02d}/{YEAR}" in text
    (link,) = links_in(text)
    assert sha256(download(link).content) == stored


def test_webhook_failing_first_calls_gets_one_accepted_delivery_per_job_and_recipient(
    launched: dict[str, tuple[Person, str]], receiver: HttpReceiver, outbox: Ledger
) -> None:
    for person, _ in launched.values():
        wait_webhook(receiver, person.user, NOTIFY_TIMEOUT)
    calls = list(receiver.requests)
    assert [r.status for r in calls].count(500) == WEBHOOK_FAILURES
    by_key: dict[str, list] = defaultdict(list)
    for call in calls:
        by_key[call.idempotency_key].append(call)
    assert receiver.duplicates == []
    retried = 0
    for key, attempts in by_key.items():
        identities = {(c.json()["jobId"], c.json()["userId"]) for c in attempts}
        assert len(identities) == 1, identities  # the same key on every attempt, for one (job, recipient)
        ((job_id, user),) = identities
        assert key == idempotency_key(job_id, user)
        assert [c.status for c in attempts].count(200) == 1, [c.status for c in attempts]
        (row,) = webhook_rows(outbox, user, job_id)
        failures = [c.status for c in attempts].count(500)
        assert row.state == "sent" and row.attempts == failures, row
        retried += failures > 0
    assert retried >= 1


LINK_TTL_SECONDS = Settings.model_fields["link_ttl_seconds"].default  # the stacks keep the default


def _expires(url: str) -> int:
    """The unix second a signed download link expires (its ``exp``)."""
    (exp,) = parse_qs(urlsplit(url).query)["exp"]
    return int(exp)


def test_cache_hit_notifies_the_new_requester_with_a_fresh_link_and_not_the_first(
    stack: Stack,
    launched: dict[str, tuple[Person, str]],
    people: dict[int, list[Person]],
    receiver: HttpReceiver,
    smtp: SmtpRecorder,
    home: Path,
) -> None:
    a, job_id = launched["a"]
    assert stack.wait_job(job_id, a.bearer)["status"] == "succeeded"
    (first,) = wait_webhook(receiver, a.user, NOTIFY_TIMEOUT)
    b = people[1][1]

    asked = int(datetime.now(UTC).timestamp())
    response = stack.request(PATH, b.bearer, month=MONTH, year=YEAR)
    assert response.status_code == 200 and response.json() == CACHED, response.text

    (hook,) = wait_webhook(receiver, b.user, NOTIFY_TIMEOUT)
    body = check_webhook(hook, user=b.user, institution=1, subdomain=b.subdomain, report=REPORT)
    assert body["status"] == "succeeded" and body["cached"] is True and body["jobId"].startswith("cache:")
    # A fresh link: signed when B's notification was sent, valid for the whole lifetime from then (a link
    # names no requester, so one signed in the same second as A's is the same URL).
    assert _expires(body["url"]) >= max(asked + LINK_TTL_SECONDS, _expires(first.json()["url"]))
    stored = _stored_sha(home, 1)
    assert sha256(download(body["url"]).content) == stored

    (mail,) = wait_mail(smtp, b.email, NOTIFY_TIMEOUT)
    text = plain_text(mail)
    assert "novo link para o mesmo arquivo" in text
    (link,) = links_in(text)
    assert sha256(download(link).content) == stored

    # Nothing new for the first requester: one accepted webhook, one e-mail.
    assert len(accepted_webhooks(receiver, a.user)) == 1
    assert len(mails_to(smtp, a.email)) == 1


def test_stack_stopped_mid_delivery_delivers_everything_exactly_once_after_restart(
    stack: Stack,
    launched: dict[str, tuple[Person, str]],
    people: dict[int, list[Person]],
    receiver: HttpReceiver,
    smtp: SmtpRecorder,
    outbox: Ledger,
    home: Path,
) -> None:
    """The platform goes down; C (cache hit) is backing off, E's new run has just
    finished, D was queued a moment ago; the stack is stopped and a delivery
    worker dies holding leases on the due rows. After a restart, with the platform
    back, each of them gets exactly one accepted webhook and one e-mail, under
    the key used before the outage."""
    c, d, e = people[1][2], people[1][3], people[1][4]
    wait_webhook(receiver, launched["a"][0].user, NOTIFY_TIMEOUT)  # earlier traffic has settled
    receiver.always(503)
    assert stack.request(PATH, c.bearer, month=MONTH, year=YEAR).json() == CACHED
    e_year, e_month = months_ago(2)
    response = stack.request(PATH, e.bearer, month=e_month, year=e_year)
    assert response.status_code == 200, response.text
    job_e = response.json()["results"]["id"]
    wait_until(
        lambda: any(r.status == 503 for r in webhook_calls(receiver, c.user)), NOTIFY_TIMEOUT, "a refused webhook for C"
    )
    assert stack.wait_job(job_e, e.bearer)["status"] == "succeeded"
    assert stack.request(PATH, d.bearer, month=MONTH, year=YEAR).json() == CACHED
    stack.stop()

    rows = {p.user: webhook_rows(outbox, p.user) for p in (c, d, e)}
    assert all(len(r) == 1 and r[0].state != "sent" for r in rows.values()), rows
    # If the stop hit a sensor tick while it held rows, they come back when its
    # lease runs out: give the post-restart wait that much more time.
    now = datetime.now(UTC)
    held = [
        (r[0].lease_until - now).total_seconds() for r in rows.values() if r[0].state == "sending" and r[0].lease_until
    ]
    deliver_timeout = NOTIFY_TIMEOUT + max([0.0, *held])
    # A worker claims what is due and dies: its short leases are never settled.
    leased: set[int] = set()
    unleased = [p.user for p in (c, d) if rows[p.user][0].state != "sending"]

    def claim() -> bool:
        now = datetime.now(UTC)
        outbox.deliveries.route(lambda r: ["webhook", "email"] if r.email else ["webhook"], now)  # as a pass does
        leased.update(n.id for n in outbox.deliveries.claim_due(now, limit=50, lease_seconds=2) if n.id)
        return {webhook_rows(outbox, user)[0].id for user in unleased} <= leased

    wait_until(claim, 30, "the dying worker to lease C's and D's rows")
    wanted = {webhook_rows(outbox, user)[0].id for user in unleased}
    assert all(outbox.deliveries.get(i).state == "sending" for i in wanted if i is not None)

    before = list(receiver.requests)
    receiver.reset()  # the platform is back
    stack.start()
    for person in (c, d, e):
        wait_webhook(receiver, person.user, deliver_timeout)
    wait_until(
        lambda: all(webhook_rows(outbox, p.user)[0].state == "sent" for p in (c, d, e)),
        deliver_timeout,
        "C, D and E's rows to be sent",
    )

    calls = before + list(receiver.requests)
    for person in (c, d, e):
        mine = [r for r in calls if r.json()["userId"] == person.user]
        assert len({r.idempotency_key for r in mine}) == 1, [r.idempotency_key for r in mine]
        assert [r.status for r in mine].count(200) == 1, [r.status for r in mine]
        (accepted,) = [r for r in mine if r.status == 200]
        body = check_webhook(accepted, user=person.user, institution=1, subdomain=person.subdomain, report=REPORT)
        assert body["url"].startswith(f"{stack.base}/downloads/")  # a fresh link on the restarted API
        assert len(mails_to(smtp, person.email)) == 1
    assert receiver.duplicates == []
    assert outbox.deliveries.get(rows[d.user][0].id).attempts >= 1  # the lost lease counted as an attempt

    e_body = [r for r in receiver.requests if r.json()["userId"] == e.user and r.status == 200][0].json()
    assert (e_body["jobId"], e_body["cached"]) == (job_e, False)
    assert sha256(download(e_body["url"]).content) == _stored_sha(home, 1, f"{e_year}-{e_month:02d}")
