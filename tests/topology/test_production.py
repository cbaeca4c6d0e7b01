"""The production topology, run for real on one machine: ``lxp-reports up --profile production``.

Every part is its own process and they talk only over loopback: PostgreSQL
holds Dagster's run/event/schedule storage, the API's requests/outbox database
and the warehouse (generated with ``lxp-reports generate --out postgresql://``);
redis-server holds the shared rate limit; a moto S3 server holds the reports and
Dagster's compute logs; the code location is a gRPC code server that the
webserver and the daemon load through ``deploy/workspace.production.yaml``; two
API replicas answer on two ports. The tests act as clients would: they spread
requests over both replicas, kill one replica with SIGKILL under load, follow
the notified presigned link, and run the monthly backfill. Every secret and
credential-bearing URL of the stack is a known value (passwords in the
PostgreSQL, webhook and SMTP URLs; the SMTP relay requires them): the last test
looks for each one on every screen an operator or a client can open.

Institutions are kept apart so the tests do not share a rate-limit budget:
1 = dedup, 2 = rate limit, 3 = replica loss; the backfill covers them all.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from assets.contract import LOCATION, REPOSITORY, TAG_TRIGGER
from assets.periods import partition_key
from orchestration.delivery.storage import report_key
from orchestration.ledger import Ledger, Notification
from tests.e2e.checks import accepted_webhooks, check_webhook, download, links_in, mails_to, plain_text, wait_mail
from tests.e2e.stack import (
    JWT_SECRET,
    LINK_SECRET,
    NOTIFY_SECRET,
    ROOT,
    Person,
    Stack,
    months_ago,
    sha256,
    token,
    wait_until,
)
from tests.services.http_receiver import HttpReceiver
from tests.services.postgres import create_database
from tests.services.s3 import CREDENTIALS
from tests.services.smtp import SmtpRecorder, running_smtp

pytestmark = [
    pytest.mark.e2e,
    # The SMTP relay stand-in requires AUTH on plain loopback SMTP (so LXP_SMTP_URL carries a password).
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

REPORT = "storyboard-usage"
PATH = f"/institution/reports/{REPORT}"
REPORTS_BUCKET, COMPUTE_BUCKET, COMPUTE_PREFIX = "prod-reports", "prod-dagster", "compute-logs"
COMPUTE_LOGS = f"s3://{COMPUTE_BUCKET}/{COMPUTE_PREFIX}"
PREFIX = "lxp/reports"
NOTIFY_TIMEOUT = 150
RUN_TIMEOUT = 240
BACKFILL_TIMEOUT = 240
#: Credentials only this stack knows (PostgreSQL trusts loopback and ignores the password;
#: the webhook receiver records the Basic auth; the SMTP relay refuses mail without the login).
PG_PASSWORDS = {
    "dagster": "pw-pg-dagster-3f9c2a71",
    "outbox": "pw-pg-outbox-b8e04d6f",
    "warehouse": "pw-pg-wh-5a17c3e9",
}
NOTIFY_LOGIN = ("platform", "pw-notify-8d41e6b0c2")
SMTP_LOGIN = ("reports", "pw-smtp-c57a19e4d3")
METRICS_TOKEN = "metrics-token-e2b7d05c94a1f6"


def _monthly_assets() -> list[str]:
    from assets.registry import REPORTS

    return sorted(spec.name for spec in REPORTS.values() if spec.monthly)


def with_password(url: str, password: str, user: str = "postgres") -> str:
    """``url`` with ``password`` in its userinfo, unless it already carries one."""
    parts = urlsplit(url)
    if parts.password:
        return url
    netloc = f"{parts.username or user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpRecorder]:
    """This module's relay requires AUTH, so LXP_SMTP_URL carries a password."""
    with running_smtp(login=SMTP_LOGIN) as recorder:
        yield recorder


@pytest.fixture(scope="module")
def databases(postgres_url: str) -> dict[str, str]:
    """Three databases on the PostgreSQL server: Dagster's, the API's requests/outbox, the warehouse."""
    return {name: create_database(postgres_url) for name in ("dagster", "outbox", "warehouse")}


@pytest.fixture(scope="module")
def warehouse_url(databases: dict[str, str]) -> str:
    """The tiny warehouse, generated straight into PostgreSQL by the documented command."""
    url = databases["warehouse"]
    subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "generate", "--scale", "tiny", "--out", url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        timeout=180,
    )
    return url


@pytest.fixture(scope="module")
def topology(
    tmp_path_factory: pytest.TempPathFactory,
    databases: dict[str, str],
    warehouse_url: str,
    redis_url: str,
    s3_endpoint: str,
    s3_client: Any,
    receiver: HttpReceiver,
    smtp: SmtpRecorder,
) -> Iterator[Stack]:
    for bucket in (REPORTS_BUCKET, COMPUTE_BUCKET):
        s3_client.create_bucket(Bucket=bucket)
    home = tmp_path_factory.mktemp("production")
    stack = Stack(
        home,
        {
            "DAGSTER_PG_URL": with_password(databases["dagster"], PG_PASSWORDS["dagster"]).replace(
                "postgresql://", "postgresql+psycopg2://", 1
            ),
            "LXP_LEDGER_URL": with_password(databases["outbox"], PG_PASSWORDS["outbox"]),
            "LXP_WAREHOUSE_URL": with_password(warehouse_url, PG_PASSWORDS["warehouse"]),
            "LXP_RATE_LIMIT_STORAGE": redis_url,
            "LXP_STORAGE": f"s3://{REPORTS_BUCKET}/{PREFIX}",
            "LXP_COMPUTE_LOGS": COMPUTE_LOGS,
            "LXP_S3_ENDPOINT_URL": s3_endpoint,
            **CREDENTIALS,
            "LXP_NOTIFY_URL": with_password(receiver.url, NOTIFY_LOGIN[1], NOTIFY_LOGIN[0]),
            "LXP_SMTP_URL": smtp.url,
            "LXP_METRICS_TOKEN": METRICS_TOKEN,
            "LXP_OUTBOX_BACKOFF_SECONDS": "1",
            "LXP_MONTHLY_SENSOR": "true",  # the production profile as deployed: its backfill is tested below
        },
        profile="production",
        api_replicas=2,
    )
    stack.start(timeout=240)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def outbox(databases: dict[str, str]) -> Iterator[Ledger]:
    box = Ledger(databases["outbox"])
    try:
        yield box
    finally:
        box.dispose()


def graphql(stack: Stack, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(f"{stack.dagster_url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return dict(body["data"])


RUNS = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
  ... on Runs { results { runId status tags { key value } } } } }"""


def delivered(outbox: Ledger, job_id: str, users: set[int], timeout: float) -> list[Notification]:
    """Wait until every user in ``users`` has been sent every channel's delivery for ``job_id``; returns the
    job's webhook deliveries (one per requester)."""

    def probe() -> list[Notification] | None:
        rows = outbox.deliveries.list(job_id=job_id, limit=500)
        unsent = {n.recipient_user_id for n in rows if n.state != "sent"}
        done = {n.recipient_user_id for n in rows if n.state == "sent"} - unsent
        return [n for n in rows if n.channel == "webhook"] if done >= users else None

    return wait_until(probe, timeout, f"notifications of job {job_id} to {sorted(users)}", interval=1.0)


def test_the_topology_is_separate_processes_sharing_state_over_the_network(topology: Stack) -> None:
    log = topology.log_tail(20000)
    assert "Code server: 127.0.0.1:" in log and log.count("API docs:") == 2, log
    health = [httpx.get(f"{base}/healthz", timeout=10).json() for base in topology.bases]
    assert [h["status"] for h in health] == ["ok", "ok"], health
    # The webserver loads the code location over gRPC, not in-process.
    locations = graphql(
        topology,
        "{ workspaceOrError { ... on Workspace { locationEntries { name displayMetadata { key value } } } } }",
    )["workspaceOrError"]["locationEntries"]
    (entry,) = locations
    metadata = {m["key"]: m["value"] for m in entry["displayMetadata"]}
    assert entry["name"] == "lxp_reports" and metadata.get("host") == "127.0.0.1" and "port" in metadata, metadata


def test_concurrent_identical_requests_over_both_replicas_make_one_run_and_one_notification_per_requester(
    topology: Stack,
    people: dict[int, list[Person]],
    outbox: Ledger,
    s3_client: Any,
    receiver: HttpReceiver,
    smtp: SmtpRecorder,
) -> None:
    year, month = months_ago(2)
    requesters = people[1]
    # Each requester's calls alternate between the two replicas too.
    calls = [(requesters[i % len(requesters)], (i + i // len(requesters)) % 2) for i in range(50)]
    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(
            pool.map(lambda c: topology.request(PATH, c[0].bearer, replica=c[1], month=month, year=year), calls)
        )
    assert [a.status_code for a in answers] == [200] * 50, [a.text for a in answers if a.status_code != 200]
    job_ids = {a.json()["results"]["id"] for a in answers}
    assert len(job_ids) == 1, job_ids
    (job_id,) = job_ids
    by_replica = {replica for _, replica in calls}
    assert by_replica == {0, 1}

    job = topology.wait_job(job_id, requesters[0].bearer, timeout=RUN_TIMEOUT)
    assert job["status"] == "succeeded", job
    runs = graphql(
        topology,
        RUNS,
        tags=[
            {"key": "lxp/report", "value": REPORT},
            {"key": "dagster/partition", "value": partition_key(1, date(year, month, 1))},
        ],
    )["runsOrError"]["results"]
    assert [r["runId"] for r in runs] == [job_id], runs
    # The run's step logs went to S3 (the compute log manager), not to a local disk.
    wait_until(
        lambda: s3_client.list_objects_v2(Bucket=COMPUTE_BUCKET, Prefix=COMPUTE_PREFIX).get("KeyCount", 0),
        30,
        "compute logs in S3",
    )

    users = {p.user for p in requesters}
    rows = delivered(outbox, job_id, users, NOTIFY_TIMEOUT)
    assert sorted(n.recipient_user_id for n in rows) == sorted(users)  # exactly one per distinct requester
    for person in requesters:
        (hook,) = accepted_webhooks(receiver, person.user)
        body = check_webhook(hook, user=person.user, institution=1, subdomain=person.subdomain, report=REPORT)
        assert body["jobId"] == job_id and "X-Amz-Signature=" in body["url"]
        assert len(mails_to(smtp, person.email)) == 1

    # The notified presigned link downloads exactly the object in the bucket.
    period = f"{year}-{month:02d}"
    first = requesters[0]
    key = f"{PREFIX}/{report_key(REPORT, 1, period, 'xlsx')}"
    stored = s3_client.get_object(Bucket=REPORTS_BUCKET, Key=key)["Body"].read()
    (hook,) = accepted_webhooks(receiver, first.user)
    assert sha256(download(hook.json()["url"]).content) == sha256(stored)
    (mail,) = wait_mail(smtp, first.email, NOTIFY_TIMEOUT)
    (link,) = links_in(plain_text(mail))
    assert sha256(download(link).content) == sha256(stored)


def test_the_rate_limit_is_shared_by_the_replicas(topology: Stack, people: dict[int, list[Person]]) -> None:
    """61 requests alternating between the replicas: 60 pass the limiter, the 61st is refused.
    (Per-replica counters would let all 61 through, 31 + 30.) The requests are invalid on
    purpose: the limiter counts every request to a report path, and nothing gets launched."""
    bearer = people[2][0].bearer
    answers = [topology.request(PATH, bearer, replica=i % 2, month=13, year=2020) for i in range(61)]
    statuses = [a.status_code for a in answers]
    assert statuses[:60] == [400] * 60, statuses
    assert statuses[60] == 429, statuses
    refused = answers[60]
    assert refused.json()["code"] == "resource_exhausted" and int(refused.headers["retry-after"]) >= 1
    # And the other replica agrees right away.
    assert topology.request(PATH, bearer, replica=0, month=13, year=2020).status_code == 429


def _pid_of_replica(port: int) -> int:
    """The uvicorn process serving ``port`` (a child of our own `up`)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"api.app:app" in argv and b"--port" in argv and argv[argv.index(b"--port") + 1] == str(port).encode():
            return int(entry.name)
    raise AssertionError(f"no API replica process on port {port}")


def test_a_replica_killed_under_load_loses_no_acknowledged_request(
    topology: Stack, people: dict[int, list[Person]], outbox: Ledger, receiver: HttpReceiver
) -> None:
    victim_port = topology.api_ports[1]
    victim = _pid_of_replica(victim_port)
    requesters = people[3]
    year_month = months_ago(3)
    # Every requester asks through both replicas; one run, launched by one replica, joined through both.
    calls = [(requesters[i % len(requesters)], year_month, (i // 2) % 2) for i in range(32)]
    acknowledged: list[tuple[Person, str]] = []
    Answer = tuple[Person, tuple[int, int], int, httpx.Response | None]

    def call(c: tuple[Person, tuple[int, int], int]) -> Answer:
        person, (year, month), replica = c
        try:
            answer = topology.request(PATH, person.bearer, replica=replica, month=month, year=year)
        except httpx.TransportError:
            return person, (year, month), replica, None
        return person, (year, month), replica, answer

    def ready_to_kill(futures: list[Future[Answer]]) -> bool:
        """The run is launched (later requests join it) and the victim has acknowledged some."""
        done = [f.result() for f in futures if f.done() and f.result()[3] is not None]
        return any(replica == 1 for _, _, replica, _ in done)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(call, c) for c in calls]
        wait_until(lambda: ready_to_kill(futures), 90, "an answer from the replica to kill", 0.05)
        os.kill(victim, signal.SIGKILL)
        results = [f.result() for f in futures]
    for person, _, replica, response in results:
        if response is None:
            assert replica == 1  # only the killed replica drops connections
            continue
        assert response.status_code == 200, response.text
        acknowledged.append((person, response.json()["results"]["id"]))
    assert len({job for _, job in acknowledged}) == 1
    victim_answers = [r for _, _, replica, r in results if replica == 1]
    assert any(r is not None for r in victim_answers)  # it acknowledged requests before dying ...
    assert any(r is None for r in victim_answers)  # ... and died with load still coming at it
    # The survivor still serves, and the stack did not stop because one replica died.
    assert httpx.get(f"{topology.bases[0]}/healthz", timeout=10).status_code == 200
    assert topology.proc is not None and topology.proc.poll() is None

    jobs = {job for _, job in acknowledged}
    for job in jobs:
        owner = next(p for p, j in acknowledged if j == job)
        assert topology.wait_job(job, owner.bearer, timeout=RUN_TIMEOUT)["status"] == "succeeded"
    for job in jobs:
        users = {p.user for p, j in acknowledged if j == job}
        delivered(outbox, job, users, NOTIFY_TIMEOUT)
    for person in {p for p, _ in acknowledged}:
        assert accepted_webhooks(receiver, person.user), person


def _monthly_backfills(stack: Stack) -> list[dict[str, Any]]:
    return [b for b in stack.backfills() if {"key": TAG_TRIGGER, "value": "monthly"} in b["tags"]]


@pytest.fixture(scope="module")
def monthly_backfill(topology: Stack) -> str:
    """The id of the backfill the ``monthly_reports`` sensor requested for last month on its own
    (the stack runs with the sensor on, as deployed). Its first tick comes at daemon start; if
    ``institution_sync`` had not registered the institutions yet, the sensor registers them itself
    in the same tick, so the backfill exists from the start, whatever the order of the two ticks."""
    found = wait_until(lambda: _monthly_backfills(topology), 120, "the monthly sensor's backfill", interval=2.0)
    return str(found[-1]["id"])


def test_the_monthly_backfill_completes(topology: Stack, monthly_backfill: str) -> None:
    """Every monthly report for every institution, last month, through the gRPC code server's runs."""

    backfill = topology.wait_backfill(monthly_backfill, BACKFILL_TIMEOUT)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    status = graphql(
        topology,
        """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {
          assetBackfillData {
          assetBackfillStatuses { ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted
          numPartitionsMaterialized numPartitionsFailed } } } } } }""",
        id=backfill["id"],
    )["partitionBackfillOrError"]
    counts = status["assetBackfillData"]["assetBackfillStatuses"]
    assert sorted(c["assetKey"]["path"][0] for c in counts) == _monthly_assets()
    # The sensor's backfill targets the institutions due at its tick: around day 1 (UTC) zones
    # still in the old month are not due yet, so it may hold fewer than all 3.
    for c in counts:
        assert c["numPartitionsFailed"] == 0, counts
        assert c["numPartitionsMaterialized"] == c["numPartitionsTargeted"] >= 1, counts


# -- No secret on any screen ------------------------------------------------------------------

_EVENTS = """... on MessageEvent { message eventType }
  ... on DisplayableEvent { label description metadataEntries { label description
    ... on TextMetadataEntry { text } ... on UrlMetadataEntry { url } ... on PathMetadataEntry { path }
    ... on JsonMetadataEntry { jsonString } ... on MarkdownMetadataEntry { mdStr } } }
  ... on ErrorEvent { error { message stack causes { message stack } } }"""

#: What the Dagster UI reads (the webserver's GraphQL has no auth): resources, launchpad defaults,
#: runs with their config and tags, the instance, sensor ticks.
SCREENS = {
    "resources": """query($loc: String!, $repo: String!) {
      allTopLevelResourceDetailsOrError(repositorySelector: {repositoryLocationName: $loc, repositoryName: $repo}) {
      __typename ... on ResourceDetailsList { results { name configuredValues { key value type } } } } }""",
    "location": """{ workspaceOrError { ... on Workspace { locationEntries { name displayMetadata { key value }
      locationOrLoadError { __typename ... on RepositoryLocation { repositories { name
      allTopLevelResourceDetails { name description configuredValues { key value type }
      configFields { name defaultValueAsJson } } } } ... on PythonError { message } } } } } }""",
    "env_vars": """query($loc: String!, $repo: String!) {
      utilizedEnvVarsOrError(repositorySelector: {repositoryLocationName: $loc, repositoryName: $repo}) {
      __typename ... on EnvVarWithConsumersList { results { envVarName } } } }""",
    "launchpad": """query($loc: String!, $repo: String!, $job: String!) {
      runConfigSchemaOrError(selector: {repositoryLocationName: $loc, repositoryName: $repo, pipelineName: $job}) {
      __typename ... on RunConfigSchema { rootDefaultYaml allConfigTypes { key
      ... on CompositeConfigType { fields { name defaultValueAsJson } } } } } }""",
    "runs": """{ runsOrError(limit: 500) { __typename ... on Runs { results { runId jobName status runConfigYaml
      tags { key value } } } } }""",
    "instance": "{ instance { info runLauncher { name } runQueuingSupported } }",
    "logs": "query($id: ID!) { logsForRun(runId: $id) { __typename ... on EventConnection { events { __typename "
    + _EVENTS
    + " } } } }",
    "sensor": """query($loc: String!, $repo: String!) { sensorOrError(sensorSelector: {repositoryLocationName: $loc,
      repositoryName: $repo, sensorName: "report_delivery"}) { __typename ... on Sensor { sensorState { ticks(limit: 50) {
      status skipReason error { message stack } logEvents { events { message } } } } } } }""",
}


def _graphql_text(stack: Stack, query: str, **variables: Any) -> str:
    response = httpx.post(f"{stack.dagster_url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    assert response.status_code == 200 and not response.json().get("errors"), response.text[:2000]
    return response.text


def test_no_secret_on_any_screen(topology: Stack, people: dict[int, list[Person]], receiver: HttpReceiver) -> None:
    """A report runs (an ad-hoc one: a run config, tags, event logs) and is delivered through the
    credential-bearing webhook and SMTP URLs; then none of the stack's secrets appears in what the
    Dagster webserver's GraphQL serves, nor in the API's /metrics, OpenAPI or error bodies."""
    env = topology.extra_env
    passwords = {
        name: urlsplit(env[name]).password for name in ("DAGSTER_PG_URL", "LXP_LEDGER_URL", "LXP_WAREHOUSE_URL")
    }
    secrets = {
        **passwords,
        "LXP_NOTIFY_URL": NOTIFY_LOGIN[1],
        "LXP_SMTP_URL": SMTP_LOGIN[1],
        "LXP_JWT_SECRET": JWT_SECRET,
        "LXP_LINK_SECRET": LINK_SECRET,
        "LXP_NOTIFY_SECRET": NOTIFY_SECRET,
        "LXP_METRICS_TOKEN": METRICS_TOKEN,
    }
    assert all(secrets.values()) and urlsplit(env["LXP_SMTP_URL"]).password == SMTP_LOGIN[1], secrets

    person = people[1][0]
    year, month = months_ago(4)
    answer = topology.request(
        "/institution/reports/catalog",
        person.bearer,
        start_date=f"{year}-{month:02d}-01",
        end_date=f"{year}-{month:02d}-09",
    )
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["results"]["id"]
    assert topology.wait_job(job_id, person.bearer, timeout=RUN_TIMEOUT)["status"] == "succeeded"
    # Delivered with the resolved URLs: the webhook's Basic auth and an SMTP login (the relay requires it).
    hook = wait_until(
        lambda: next((r for r in accepted_webhooks(receiver, person.user) if r.json()["jobId"] == job_id), None),
        NOTIFY_TIMEOUT,
        f"the webhook of job {job_id}",
    )
    assert hook.headers["authorization"] == "Basic " + base64.b64encode(":".join(NOTIFY_LOGIN).encode()).decode()

    repo = {"loc": LOCATION, "repo": REPOSITORY}
    seen = {name: _graphql_text(topology, SCREENS[name], **repo) for name in ("resources", "env_vars", "sensor")}
    seen["location"] = _graphql_text(topology, SCREENS["location"])
    seen["instance"] = _graphql_text(topology, SCREENS["instance"])
    seen["runs"] = _graphql_text(topology, SCREENS["runs"])
    results = json.loads(seen["runs"])["data"]["runsOrError"]["results"]
    assert job_id in {r["runId"] for r in results}
    for run in results[:25]:
        seen[f"logs {run['runId']}"] = _graphql_text(topology, SCREENS["logs"], id=run["runId"])
    for job in sorted({r["jobName"] for r in results}):
        seen[f"launchpad {job}"] = _graphql_text(topology, SCREENS["launchpad"], **repo, job=job)

    base = topology.base
    forged = token(person.institution, person.user, person.subdomain).rsplit(".", 1)[0] + ".forged-signature"
    api = {
        "openapi": httpx.get(f"{base}/openapi.json", timeout=30),
        "metrics": httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30),
        "metrics without token": httpx.get(f"{base}/metrics", timeout=30),
        "healthz": httpx.get(f"{base}/healthz", timeout=30),
        "bad token": topology.request(PATH, "not-a-jwt", month=month, year=year),
        "forged token": topology.request(PATH, forged, month=month, year=year),
        "unknown job": topology.request("/institution/reports/jobs/no-such-job", person.bearer),
        "unknown route": topology.request("/no-such-route", person.bearer),
        "bad download": httpx.get(f"{base}/downloads/x/y.xlsx?exp=1&fn=y.xlsx&sig=bad", timeout=30),
        "invalid request": topology.request(PATH, person.bearer, month=13, year=year),
    }
    statuses = {k: r.status_code for k, r in api.items()}
    assert [statuses.pop(k) for k in ("openapi", "metrics", "metrics without token", "healthz")] == [200, 200, 401, 200]
    assert all(status >= 400 for status in statuses.values()), statuses
    seen.update({f"api {name}": f"{r.headers}\n{r.text}" for name, r in api.items()})

    leaks = sorted(
        (secret, screen) for screen, text in seen.items() for secret, value in secrets.items() if value in text
    )
    assert leaks == [], leaks

    # The resource page names the variables instead.
    details = json.loads(seen["resources"])["data"]["allTopLevelResourceDetailsOrError"]["results"]
    env_vars = {
        (r["name"], v["key"]): v["value"] for r in details for v in r["configuredValues"] if v["type"] == "ENV_VAR"
    }
    assert env_vars == {
        ("warehouse", "url"): "LXP_WAREHOUSE_URL",
        ("storage", "link_secret"): "LXP_LINK_SECRET",
        ("notifier", "ledger_url"): "LXP_LEDGER_URL",
        ("notifier", "notify_url"): "LXP_NOTIFY_URL",
        ("notifier", "notify_secret"): "LXP_NOTIFY_SECRET",
        ("notifier", "smtp_url"): "LXP_SMTP_URL",
    }, env_vars
