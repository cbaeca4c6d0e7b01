"""The ledger's Alembic migrations on SQLite and on a real PostgreSQL server.

From empty to head, models and migrations agreeing (what ``alembic check``
asserts), an old ``create_all`` database carried over without losing a row,
and several processes migrating one database at once.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orchestration.ledger import Ledger, idempotency_key, migrate
from orchestration.ledger.engine import create_engine
from orchestration.ledger.schema import metadata
from tests.ledger_rows import enqueue

T0 = datetime(2026, 7, 1, 6, 0)


def _legacy_metadata() -> sa.MetaData:
    """Today's ``create_all`` schema, as frozen in the baseline revision."""
    path = migrate.MIGRATIONS / "versions" / "0001_legacy_tables.py"
    spec = importlib.util.spec_from_file_location("ledger_0001", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    legacy: sa.MetaData = module._legacy_tables()
    return legacy


def test_upgrade_from_empty_reaches_head_and_is_idempotent(outbox_url: str) -> None:
    engine = create_engine(outbox_url)
    try:
        assert migrate.current(engine) is None
        assert migrate.upgrade(engine) is True
        assert migrate.current(engine) == migrate.head()
        assert migrate.upgrade(engine) is False
        tables = set(sa.inspect(engine).get_table_names())
        assert {"requests", "recipients", "inflight", "report_files", "alembic_version"} <= tables
        assert not tables & {"notifications", "report_requests"}
    finally:
        engine.dispose()


def test_models_and_migrations_agree(outbox_url: str) -> None:
    """What ``alembic check`` does: autogenerate against the migrated database finds nothing to do."""
    engine = create_engine(outbox_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
    finally:
        engine.dispose()


def _insert_each(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for row in rows:  # one by one: the rows leave different columns NULL
        conn.execute(sa.insert(table).values(**row))


def _legacy_rows(conn: sa.Connection, legacy: sa.MetaData) -> None:
    notifications, report_requests, inflight = (
        legacy.tables[n] for n in ("notifications", "report_requests", "inflight")
    )
    common = dict(institution_id=1, subdomain="alfa", cache_key="k" * 64, params_json='{"month": "2026-06"}')
    _insert_each(
        conn,
        report_requests,
        [
            # run-1: launcher 10 and joiner 12, both with waiting notifications
            dict(job_id="run-1", user_id=10, report="catalog", requested_at=T0, kind="run", launched=True, **common),
            dict(job_id="run-1", user_id=12, report="catalog", requested_at=T0 + timedelta(seconds=1), kind="run",
                 launched=False, **common),
            # a cache hit, already delivered
            dict(job_id="cache:k:1", user_id=10, report="catalog", requested_at=T0, kind="cache", launched=False,
                 storage_key="a/b.xlsx", filename="b.xlsx", rows=7, **common),
            # recorded, then the process died before subscribing: no notification row
            dict(job_id="run-2", user_id=20, report="catalog", requested_at=T0, kind="run", launched=True, **common),
        ],
    )  # fmt: skip
    base = dict(institution_id=1, subdomain="alfa", report="catalog", period="2026-06", timezone="America/Sao_Paulo",
                created_at=T0, attempts=0, next_attempt_at=T0)  # fmt: skip
    _insert_each(
        conn,
        notifications,
        [
            dict(id=5, job_id="run-1", recipient_user_id=10, state="waiting", cached=False,
                 email="ana@alfa.test", idempotency_key=idempotency_key("run-1", 10), **base),
            dict(id=6, job_id="run-1", recipient_user_id=12, state="waiting", cached=False,
                 idempotency_key=idempotency_key("run-1", 12), **base),
            dict(id=9, job_id="cache:k:1", recipient_user_id=10, state="sent", cached=True, status_of_job="succeeded",
                 storage_key="a/b.xlsx", filename="b.xlsx", sent_at=T0, webhook_sent_at=T0,
                 idempotency_key=idempotency_key("cache:k:1", 10), **base),
            # enqueued by an operator/test without a report_requests row, dead after retries
            dict(id=11, job_id="run-9", recipient_user_id=30, state="dead", cached=False, status_of_job="failed",
                 last_error="HTTP 500", idempotency_key=idempotency_key("run-9", 30),
                 **{**base, "attempts": 8, "period": "2026-01-01_2026-03-31"}),
        ],
    )  # fmt: skip
    _insert_each(
        conn,
        inflight,
        [
            dict(cache_key="k" * 64, owner="o1", run_id="run-1", created_at=T0),
            dict(cache_key="j" * 64, owner="o2", run_id=None, created_at=T0),
        ],
    )


def test_upgrade_carries_rows_of_a_create_all_database_over(outbox_url: str) -> None:
    engine = create_engine(outbox_url)
    legacy = _legacy_metadata()
    try:
        legacy.create_all(engine)
        with engine.begin() as conn:
            _legacy_rows(conn, legacy)
        assert migrate.upgrade(engine) is True

        outbox, store = Ledger(outbox_url, engine=engine), Ledger(outbox_url, engine=engine)
        by_id = {n.recipient_id: n for n in outbox.deliveries.list(limit=100)}
        assert set(by_id) == {5, 6, 9, 11, 12}  # recipient ids kept; run-2's requester got the next one
        assert (by_id[5].job_id, by_id[5].recipient_user_id, by_id[5].state, by_id[5].email) == (
            "run-1",
            10,
            "waiting",
            "ana@alfa.test",
        )
        # the period as the recipient reads it (the old e-mail code's rendering of the stored "2026-06")
        assert by_id[5].period == "06/2026" and by_id[5].timezone == "America/Sao_Paulo"
        assert by_id[11].period == "01/01/2026 a 31/03/2026"
        assert by_id[9].state == "sent" and by_id[9].cached and by_id[9].storage_key == "a/b.xlsx"
        assert by_id[9].channel == "webhook" and by_id[9].sent_at == T0.replace(tzinfo=UTC)
        assert by_id[11].state == "dead" and by_id[11].attempts == 8 and by_id[11].last_error == "HTTP 500"
        assert (by_id[12].job_id, by_id[12].recipient_user_id, by_id[12].state) == ("run-2", 20, "waiting")
        assert all(n.idempotency_key == idempotency_key(n.job_id, n.recipient_user_id) for n in by_id.values())

        assert [(r.user_id, r.launched) for r in store.requests.recipients("run-1")] == [(10, True), (12, False)]
        rows, total = store.requests.history(10, 1)
        assert total == 2 and {r.job_id for r in rows} == {"run-1", "cache:k:1"}
        cached = store.requests.request_of("cache:k:1", 10, 1)
        assert (
            cached is not None and cached.kind == "cache" and cached.rows == 7 and cached.params == {"month": "2026-06"}
        )
        kept = store.claims.get_inflight("k" * 64)
        assert kept is not None and kept.run_id == "run-1"  # the claim that knows its run is kept
        assert store.claims.get_inflight("j" * 64) is None  # the one of a launcher that never got a run is dropped

        # The carried-over rows keep working: the sensor releases run-1, new ids do not collide.
        assert outbox.requests.complete_job("run-1", ("succeeded", "x/y.xlsx", "y.xlsx")) == 2
        assert enqueue(outbox,
            job_id="run-10", recipient_user_id=1, institution_id=1, subdomain="alfa", report="catalog",
            status_of_job="failed",
        )  # fmt: skip
        assert max(n.recipient_id for n in outbox.deliveries.list(limit=100)) == 13
    finally:
        engine.dispose()


def _upgrade_in_process(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    results.put(migrate.upgrade(url))


def test_processes_starting_together_migrate_once(outbox_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_upgrade_in_process, args=(outbox_url, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sorted(results.get(timeout=5) for _ in procs) == [False, False, False, True]
    assert migrate.current_of(outbox_url) == migrate.head()


def test_a_claimed_run_reaches_the_requesters_of_a_dead_launcher(outbox_url: str) -> None:
    """The sensor's ``complete_job`` binds a claim whose launcher died before publishing the run id."""
    engine = create_engine(outbox_url)
    try:
        migrate.upgrade(engine)
        store, outbox = Ledger(outbox_url, engine=engine), Ledger(outbox_url, engine=engine)
        from orchestration.ledger import Asked, Asker

        mine, _ = store.claims.claim("key")
        assert mine is not None
        store.requests.add_requester(
            Asked(1, "catalog", "key"), Asker(10, "alfa"), claim_id=mine.claim_id, launched=True
        )
        # ... the launcher dies here, after Dagster created run-7 tagged with the claim.
        assert outbox.requests.complete_job("run-7", ("failed", None, None), claim_id=mine.claim_id) == 1
        assert [(n.recipient_user_id, n.state, n.status_of_job) for n in outbox.deliveries.list(job_id="run-7")] == [
            (10, "pending", "failed")
        ]
        assert (
            outbox.requests.complete_job("run-7", ("failed", None, None), claim_id=mine.claim_id) == 0
        )  # seen again: nothing new
    finally:
        engine.dispose()


def _recipients_at_0002(conn: sa.Connection) -> None:
    """Recipients in every delivery situation the per-channel columns could express."""
    requests = sa.Table("requests", sa.MetaData(), autoload_with=conn)
    recipients = sa.Table("recipients", sa.MetaData(), autoload_with=conn)
    asked = dict(kind="run", institution_id=1, report="catalog", cache_key="k", params_json="{}", created_at=T0)
    conn.execute(sa.insert(requests), [dict(id=1, job_id="run-1", **asked), dict(id=2, job_id="run-2",
                 status_of_job="failed", **asked)])  # fmt: skip
    later, lease = T0 + timedelta(minutes=5), T0 + timedelta(minutes=1)
    who = dict(request_id=2, subdomain="alfa", requested_at=T0, launched=False, next_attempt_at=T0, attempts=0)
    rows = [
        dict(id=1, user_id=1, state="waiting", **{**who, "request_id": 1}),
        dict(id=2, user_id=2, state="pending", email="b@alfa.test", **who),  # not tried yet
        dict(id=3, user_id=3, state="pending", email="c@alfa.test", webhook_sent_at=T0, last_error="smtp down",
             **{**who, "attempts": 2, "next_attempt_at": later}),  # webhook done, e-mail backing off
        dict(id=4, user_id=4, state="sending", lease_until=lease, **{**who, "attempts": 1}),  # leased, no e-mail
        dict(id=5, user_id=5, state="sent", email="e@alfa.test", sent_at=T0, webhook_sent_at=T0, email_sent_at=T0,
             **who),
        dict(id=6, user_id=6, state="dead", email="f@alfa.test", last_error="HTTP 400", **{**who, "attempts": 8}),
    ]  # fmt: skip
    _insert_each(conn, recipients, rows)


def test_per_channel_columns_become_delivery_rows_and_back(outbox_url: str) -> None:
    engine = create_engine(outbox_url)
    try:
        migrate.upgrade(engine, "0002")
        with engine.begin() as conn:
            _recipients_at_0002(conn)
        assert migrate.upgrade(engine) is True

        ledger = Ledger(outbox_url, engine=engine)
        rows = ledger.deliveries.list(limit=100)
        seen = {(n.recipient_user_id, n.channel): (n.state, n.attempts, n.last_error) for n in rows}
        assert seen == {
            (1, None): ("waiting", 0, None),
            (2, None): ("pending", 0, None),  # routed by the next pass, to the channels enabled then
            (3, "webhook"): ("sent", 2, None),
            (3, "email"): ("pending", 2, "smtp down"),
            (4, "webhook"): ("sending", 1, None),
            (5, "webhook"): ("sent", 0, None),
            (5, "email"): ("sent", 0, None),
            (6, "webhook"): ("dead", 8, "HTTP 400"),
            (6, "email"): ("dead", 8, "HTTP 400"),
        }
        by_key = {(n.recipient_user_id, n.channel): n for n in rows}
        assert by_key[(3, "email")].next_attempt_at == (T0 + timedelta(minutes=5)).replace(tzinfo=UTC)
        assert by_key[(4, "webhook")].lease_until == (T0 + timedelta(minutes=1)).replace(tzinfo=UTC)
        assert by_key[(5, "email")].sent_at == T0.replace(tzinfo=UTC)
        # The e-mail still owed is due after its backoff, never the webhook that was sent.
        due = ledger.deliveries.claim_due(T0 + timedelta(minutes=6), 10, 60, channels=["email"])
        assert [(n.recipient_user_id, n.channel) for n in due] == [(3, "email")]
        ledger.deliveries.release([n.id for n in due if n.id is not None], T0 + timedelta(minutes=6))

        with engine.begin() as conn:  # and back: the columns as they were
            command.downgrade(migrate.alembic_config(conn), "0002")
            recipients = sa.Table("recipients", sa.MetaData(), autoload_with=conn)
            back = {row.id: row for row in conn.execute(sa.select(recipients))}
        assert {i: back[i].state for i in back} == {1: "waiting", 2: "pending", 3: "pending", 4: "sending",
                                                  5: "sent", 6: "dead"}  # fmt: skip
        assert (back[3].webhook_sent_at, back[3].email_sent_at, back[3].attempts) == (T0, None, 2)
        assert back[5].webhook_sent_at == back[5].email_sent_at == T0
        assert back[6].last_error == "HTTP 400" and back[6].attempts == 8
        assert migrate.upgrade(engine) is True  # and forward again
    finally:
        engine.dispose()
