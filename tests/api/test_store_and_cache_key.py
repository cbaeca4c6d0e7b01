"""cache_key canonicalization and the requests store (recipients, history, in-flight claims across processes)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from assets.cache_key import cache_key, canonical_params
from orchestration.ledger import Asked, Asker, Ledger


def test_cache_key_is_canonical() -> None:
    a = cache_key("catalog", 1, {"start_date": "2026-01-01", "end_date": "2026-06-02", "school_ids": [20, 10, 10]})
    b = cache_key("catalog", 1, {"school_ids": ["10", "20"], "end_date": date(2026, 6, 2), "start_date": "2026-01-01"})
    assert a == b and len(a) == 64
    assert a != cache_key("catalog", 2, {"start_date": "2026-01-01", "end_date": "2026-06-02", "school_ids": [10, 20]})
    assert a != cache_key("catalog", 1, {"start_date": "2026-01-01", "end_date": "2026-06-02", "school_ids": [10]})
    assert a != cache_key(
        "storyboard-usage", 1, {"start_date": "2026-01-01", "end_date": "2026-06-02", "school_ids": [10, 20]}
    )
    # A null filter is the same as no filter.
    assert cache_key("catalog", 1, {"m": "x", "school_ids": None}) == cache_key("catalog", 1, {"m": "x"})
    assert canonical_params({"b": 1, "a": [3, 1]}) == '{"a":[1,3],"b":1}'


def _record(store: Ledger, job: str, user: int, when: datetime, institution: int = 1) -> str | None:
    asked = Asked(institution, "catalog", cache_key="k" * 64, params={"x": 1})
    return store.requests.add_requester(asked, Asker(user, "alfa"), job_id=job, now=when)


def test_recipients_and_history(tmp_path: Path) -> None:
    store = Ledger(f"sqlite:///{tmp_path / 'o.sqlite'}")
    store.migrate()
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    assert _record(store, "run-1", 10, t0)
    assert _record(store, "run-1", 12, t0 + timedelta(seconds=1))
    assert not _record(store, "run-1", 10, t0 + timedelta(seconds=5))  # already a recipient
    _record(store, "run-2", 10, t0 + timedelta(seconds=2))
    _record(store, "run-3", 10, t0 + timedelta(seconds=3), institution=2)
    assert [r.user_id for r in store.requests.recipients("run-1")] == [10, 12]
    rows, total = store.requests.history(10, 1)
    assert total == 2 and [r.job_id for r in rows] == ["run-2", "run-1"]
    assert rows[1].params == {"x": 1} and rows[1].requested_at == t0
    assert store.requests.request_of("run-1", 12, 1) is not None
    assert store.requests.request_of("run-1", 12, 2) is None and store.requests.request_of("run-2", 12, 1) is None


def test_requesters_of_a_claim_are_bound_to_its_run(tmp_path: Path) -> None:
    """Recorded before the launch (under the claim), visible under the run id once it is published."""
    store = Ledger(f"sqlite:///{tmp_path / 'o.sqlite'}")
    store.migrate()
    mine, _ = store.claims.claim("key")
    assert mine is not None
    store.requests.add_requester(Asked(1, "catalog", "key"), Asker(10, "alfa"), claim_id=mine.claim_id, launched=True)
    assert [r.user_id for r in store.requests.claim_recipients(mine.claim_id)] == [10]
    assert store.requests.history(10, 1) == ([], 0)  # not a job the user can see until it has a run
    assert store.claims.set_run("key", mine.owner, "run-1", mine.claim_id)
    assert [(r.user_id, r.launched) for r in store.requests.recipients("run-1")] == [(10, True)]
    assert store.requests.history(10, 1)[1] == 1


def test_inflight_claim_release_and_orphan_take_over(tmp_path: Path) -> None:
    store = Ledger(f"sqlite:///{tmp_path / 'o.sqlite'}")
    store.migrate()
    mine, existing = store.claims.claim("key")
    assert mine and existing is None
    mine2, existing2 = store.claims.claim("key")
    assert mine2 is None and existing2 is not None and existing2.owner == mine.owner and existing2.run_id is None
    assert not existing2.orphaned() and store.claims.take_over(existing2) is None  # its launcher is alive: kept
    assert store.claims.set_run("key", mine.owner, "run-1") and store.claims.get_inflight("key").run_id == "run-1"
    assert not store.claims.release("key", run_id="other-run")  # only the slot we looked at
    assert store.claims.release("key", run_id="run-1") and store.claims.get_inflight("key") is None
    old, _ = store.claims.claim("key2", now=datetime.now(UTC) - timedelta(hours=1))
    assert old is not None
    seen = store.claims.get_inflight("key2")
    assert seen.orphaned()
    adopted = store.claims.take_over(seen)
    assert adopted is not None and adopted.claim_id == old.claim_id and adopted.owner != old.owner
    assert store.claims.take_over(seen) is None  # only one process adopts an orphan
    assert store.claims.renew("key2", adopted.owner, 30) and not store.claims.get_inflight("key2").orphaned()
    assert not store.claims.set_run("key2", old.owner, "late-run")  # the dead launcher lost its claim


def _claim_in_process(url: str, barrier, results) -> None:
    store = Ledger(url)
    barrier.wait()
    mine, _ = store.claims.claim("shared-key")
    results.put(mine is not None)


def test_claim_is_exclusive_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.sqlite'}"
    Ledger(url).migrate()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_claim_in_process, args=(url, barrier, results)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    winners = [results.get(timeout=5) for _ in procs]
    assert winners.count(True) == 1
