"""End to end: a requester hears of the file when it is stored, not at the delivery sensor's tick.

One `lxp-reports up` with the ``report_delivery`` sensor ticking every 300 s and
stopped through GraphQL before anything is asked, so only the fast paths can
deliver: the run-end hook of a partition run (its requester and a colleague who
joined it) and of an ad-hoc run, and the API worker that sends a cache hit.
Each requester gets exactly one webhook and one e-mail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assets.contract import LOCATION, REPOSITORY
from orchestration.ledger import Ledger
from tests.e2e.checks import accepted_webhooks, check_webhook, mails_to, wait_mail, wait_webhook
from tests.e2e.stack import Person, Stack, months_ago, new_home, wait_until
from tests.services.http_receiver import HttpReceiver
from tests.services.smtp import SmtpRecorder

pytestmark = pytest.mark.e2e

REPORT = "storyboard-usage"
PATH = f"/institution/reports/{REPORT}"
YEAR, MONTH = months_ago(1)
PERIOD = f"{YEAR}-{MONTH:02d}"
#: The run takes a few seconds on a loaded machine; the sensor would need 300.
FAST = 30.0

_SENSOR = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  __typename ... on Sensor { id sensorState { status } } } }"""
_STOP = """mutation($id: String!) { stopSensor(id: $id) { __typename } }"""
SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": "report_delivery"}


def sensor_status(stack: Stack) -> str:
    return str(stack.graphql(_SENSOR, {"selector": SELECTOR})["sensorOrError"]["sensorState"]["status"])


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, tiny_warehouse_path: Path, receiver: HttpReceiver, smtp: SmtpRecorder
) -> Iterator[Stack]:
    home = new_home(tmp_path_factory.mktemp("e2e_fast"), tiny_warehouse_path)
    stack = Stack(
        home,
        {"LXP_NOTIFY_URL": receiver.url, "LXP_SMTP_URL": smtp.url, "LXP_DELIVERY_INTERVAL_SECONDS": "300"},
    )
    stack.start()
    try:
        sensor = wait_until(
            lambda: (
                (found := stack.graphql(_SENSOR, {"selector": SELECTOR})["sensorOrError"])["__typename"] == "Sensor"
                and found
            ),
            60,
            "the report_delivery sensor",
        )
        assert stack.graphql(_STOP, {"id": sensor["id"]})["stopSensor"]["__typename"] == "StopSensorMutationResult"
        assert sensor_status(stack) == "STOPPED"
        yield stack
    finally:
        stack.stop()


def _once(receiver: HttpReceiver, smtp: SmtpRecorder, person: Person) -> None:
    assert len(accepted_webhooks(receiver, person.user)) == 1, accepted_webhooks(receiver, person.user)
    assert len(mails_to(smtp, person.email)) == 1


def test_runs_and_cache_hits_are_delivered_without_the_sensor(
    stack: Stack, people: dict[int, list[Person]], receiver: HttpReceiver, smtp: SmtpRecorder
) -> None:
    a, joiner, colleague = people[1][0], people[1][1], people[1][2]
    c = people[3][0]
    t0 = time.monotonic()
    first = stack.request(PATH, a.bearer, month=MONTH, year=YEAR)
    assert first.status_code == 200, first.text
    job_id = first.json()["results"]["id"]
    # A colleague asks for the same report while it runs: joins the run.
    joined = stack.request(PATH, joiner.bearer, month=MONTH, year=YEAR).json()["results"]
    adhoc = stack.request("/institution/reports/catalog", c.bearer, start_date=f"{PERIOD}-01", end_date=f"{PERIOD}-05")
    assert adhoc.status_code == 200, adhoc.text
    adhoc_id = adhoc.json()["results"]["id"]

    (hook,) = wait_webhook(receiver, a.user, FAST)
    took = time.monotonic() - t0
    body = check_webhook(hook, user=a.user, institution=1, subdomain=a.subdomain, report=REPORT)
    assert (body["status"], body["jobId"], body["cached"]) == ("succeeded", job_id, False)
    wait_mail(smtp, a.email, FAST)
    if joined.get("id") == job_id:  # it joined (not a cache hit of a run that had already finished)
        (joiner_hook,) = wait_webhook(receiver, joiner.user, FAST)
        assert joiner_hook.json()["jobId"] == job_id
    else:
        assert joined == {"cached": True}
        wait_webhook(receiver, joiner.user, FAST)
    wait_mail(smtp, joiner.email, FAST)
    (adhoc_hook,) = wait_webhook(receiver, c.user, FAST)
    assert (adhoc_hook.json()["status"], adhoc_hook.json()["jobId"]) == ("succeeded", adhoc_id)
    wait_mail(smtp, c.email, FAST)

    # A cache hit: answered at once, and delivered by the API right after.
    t1 = time.monotonic()
    hit = stack.request(PATH, colleague.bearer, month=MONTH, year=YEAR)
    assert hit.json() == {"results": {"cached": True}}, hit.text
    (cached,) = wait_webhook(receiver, colleague.user, 10)
    hit_took = time.monotonic() - t1
    cached_body = check_webhook(
        cached, user=colleague.user, institution=1, subdomain=colleague.subdomain, report=REPORT
    )
    assert cached_body["cached"] is True and cached_body["jobId"].startswith("cache:")
    wait_mail(smtp, colleague.email, 10)

    time.sleep(2.0)  # anything sent twice would have arrived by now
    for person in (a, joiner, colleague, c):
        _once(receiver, smtp, person)
    assert receiver.duplicates == []
    assert sensor_status(stack) == "STOPPED"  # nobody but the fast paths delivered
    box = Ledger(f"sqlite:///{stack.home / 'outbox.sqlite'}")
    try:
        assert (
            box.deliveries.counts()["sent"] == 8  # 4 requesters x (webhook, e-mail)
            and box.deliveries.counts()["pending"] == box.deliveries.counts()["waiting"] == 0
        )
    finally:
        box.dispose()
    print(f"FAST DELIVERY: run request->webhook {took:.2f} s, cache hit request->webhook {hit_took:.2f} s")
