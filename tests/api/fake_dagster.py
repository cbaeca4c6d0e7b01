"""An in-memory stand-in for the Dagster webserver's GraphQL endpoint (unit tests only).

It understands the operations ``api.dagster_client`` sends (by operation
name), keeps runs, tags, dynamic partitions and materializations, and lets a
test move runs through their lifecycle. Plug it into the client with
``httpx.MockTransport(fake.handle)``. The real webserver is exercised by the
end-to-end tests.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class FakeRun:
    run_id: str
    job_name: str
    run_config: dict[str, Any]
    tags: dict[str, str]
    status: str = "QUEUED"
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None

    def as_graphql(self) -> dict[str, Any]:
        return {
            "__typename": "Run",
            "runId": self.run_id,
            "status": self.status,
            "jobName": self.job_name,
            "creationTime": self.created,
            "startTime": self.started,
            "endTime": self.ended,
            "tags": [{"key": k, "value": v} for k, v in self.tags.items()],
        }


class FakeDagster:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, FakeRun] = {}
        self.partitions: set[str] = set()
        self.materializations: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.calls: list[str] = []
        self.down = False
        self.launch_delay = 0.0
        self.known_jobs: set[str] | None = None

    # -- test helpers -------------------------------------------------------

    def launches(self) -> list[FakeRun]:
        return list(self.runs.values())

    def finish(self, run_id: str, status: str = "SUCCESS", **file_tags: str) -> None:
        run = self.runs[run_id]
        run.status = status
        run.started = run.started or time.time()
        run.ended = time.time()
        run.tags.update(file_tags)

    def add_materialization(
        self, asset: str, partition: str, metadata: dict[str, Any], *, age_seconds: float = 0, run_id: str = "mat-run"
    ) -> None:
        event = {"runId": run_id, "timestamp": str(int((time.time() - age_seconds) * 1000)), "metadata": metadata}
        self.materializations.setdefault((asset, partition), []).insert(0, event)

    # -- transport ----------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        payload = json.loads(request.content)
        query: str = payload["query"]
        variables = payload.get("variables") or {}
        op = query.split("(")[0].split("{")[0].split()[-1]
        with self.lock:
            self.calls.append(op)
        handler = getattr(self, f"_op_{op}")
        return httpx.Response(200, json={"data": handler(variables)})

    def _op_Ping(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"version": "fake"}

    def _op_Launch(self, v: dict[str, Any]) -> dict[str, Any]:
        params = v["params"]
        job = params["selector"]["jobName"]
        if self.known_jobs is not None and job not in self.known_jobs:
            return {"launchRun": {"__typename": "PipelineNotFoundError", "message": f"no job {job}"}}
        if self.launch_delay:
            time.sleep(self.launch_delay)
        tags = {t["key"]: t["value"] for t in params["executionMetadata"]["tags"]}
        run = FakeRun(uuid.uuid4().hex, job, params.get("runConfigData") or {}, tags)
        with self.lock:
            self.runs[run.run_id] = run
        return {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": run.run_id}}}

    def _op_AddPartition(self, v: dict[str, Any]) -> dict[str, Any]:
        key = v["key"]
        with self.lock:
            if key in self.partitions:
                return {"addDynamicPartition": {"__typename": "DuplicateDynamicPartitionError", "message": "dup"}}
            self.partitions.add(key)
        return {"addDynamicPartition": {"__typename": "AddDynamicPartitionSuccess"}}

    def _op_Run(self, v: dict[str, Any]) -> dict[str, Any]:
        run = self.runs.get(v["runId"])
        if run is None:
            return {"runOrError": {"__typename": "RunNotFoundError", "message": "not found"}}
        return {"runOrError": run.as_graphql()}

    def _op_Runs(self, v: dict[str, Any]) -> dict[str, Any]:
        f = v.get("filter") or {}
        runs = sorted(self.runs.values(), key=lambda r: r.created, reverse=True)
        if f.get("runIds") is not None:
            runs = [r for r in runs if r.run_id in f["runIds"]]
        for tag in f.get("tags") or []:
            runs = [r for r in runs if r.tags.get(tag["key"]) == tag["value"]]
        if f.get("statuses"):
            runs = [r for r in runs if r.status in f["statuses"]]
        limit = v.get("limit")
        return {"runsOrError": {"__typename": "Runs", "results": [r.as_graphql() for r in runs[:limit]]}}

    def _op_Terminate(self, v: dict[str, Any]) -> dict[str, Any]:
        """Like the webserver: only QUEUED (cancelled at once) and STARTED (-> CANCELING
        until its worker stops) runs terminate; any other status is a TerminateRunFailure."""
        run = self.runs.get(v["runId"])
        if run is None:
            return {"terminateRun": {"__typename": "RunNotFoundError", "message": "not found"}}
        if run.status not in ("QUEUED", "STARTED"):
            message = f"Run {run.run_id} could not be terminated due to having status {run.status}."
            return {"terminateRun": {"__typename": "TerminateRunFailure", "message": message, "run": run.as_graphql()}}
        if run.status == "STARTED":
            run.status = "CANCELING"
        else:
            run.status = "CANCELED"
            run.ended = time.time()
        return {"terminateRun": {"__typename": "TerminateRunSuccess"}}

    def _op_Delete(self, v: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.runs.pop(v["runId"], None) is None:
                return {"deleteRun": {"__typename": "RunNotFoundError", "message": "not found"}}
        return {"deleteRun": {"__typename": "DeletePipelineRunSuccess"}}

    def _op_Materializations(self, v: dict[str, Any]) -> dict[str, Any]:
        asset = v["assetKey"]["path"][0]
        partition = (v.get("partitions") or [""])[0]
        events = self.materializations.get((asset, partition), [])[: v.get("limit") or 1]
        out = []
        for e in events:
            entries = []
            for label, value in e["metadata"].items():
                if isinstance(value, int):
                    entries.append({"__typename": "IntMetadataEntry", "label": label, "intRepr": str(value)})
                else:
                    entries.append({"__typename": "TextMetadataEntry", "label": label, "text": str(value)})
            out.append({"runId": e["runId"], "timestamp": e["timestamp"], "metadataEntries": entries})
        return {"assetOrError": {"__typename": "Asset", "assetMaterializations": out}}
