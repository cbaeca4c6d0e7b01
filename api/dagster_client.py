"""The API's only door into Dagster: the webserver's GraphQL endpoint.

GraphQL works the same whether Dagster runs next to the API (embedded demo) or
in another cluster (production), so the API never opens the Dagster instance
itself. Network failures become :class:`DagsterUnavailable` (HTTP 503 for the
client); GraphQL-level errors become :class:`DagsterError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from assets.contract import INSTITUTION_DIMENSION, LOCATION, REPOSITORY

ACTIVE_STATUSES = frozenset({"QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "SUSPENDED", "CANCELING"})
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

# Dagster run status -> the API's job status.
JOB_STATUS = {
    "QUEUED": "queued",
    "NOT_STARTED": "queued",
    "MANAGED": "queued",
    "STARTING": "queued",
    "STARTED": "running",
    "SUSPENDED": "running",
    "CANCELING": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "CANCELED": "canceled",
}


#: A refused connection fails at once; an unreachable host (no answer to SYN) fails after this.
#: Reads keep the longer ``timeout`` (10 s): a launch may take seconds on a busy webserver, and a
#: frozen webserver then costs one request 10 s before its 503 (the first failing call ends it).
CONNECT_TIMEOUT_SECONDS = 2.0


class DagsterUnavailable(Exception):
    """The webserver could not be reached or answered with a server error."""


class DagsterError(Exception):
    """Dagster answered, but refused or failed the operation."""


class RunNotTerminable(DagsterError):
    """``terminateRun`` refused because of the run's current status (e.g. STARTING, CANCELING, finished).

    Not a server fault: the caller decides (idempotent success, retry, or 400).
    """

    def __init__(self, run_id: str, status: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.status = status


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    job_name: str
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def job_status(self) -> str:
        return JOB_STATUS.get(self.status, "queued")

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class Materialization:
    run_id: str
    timestamp: datetime
    metadata: dict[str, Any]


def _ts(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(float(value), UTC)


_RUN_FIELDS = "runId status jobName creationTime startTime endTime tags { key value }"

_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}"""

_ADD_PARTITION = """
mutation AddPartition($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on Error { message }
  }
}"""

_RUN = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ {_RUN_FIELDS} }}
    ... on Error {{ message }}
  }}
}}"""

_RUNS = f"""
query Runs($filter: RunsFilter, $limit: Int) {{
  runsOrError(filter: $filter, limit: $limit) {{
    __typename
    ... on Runs {{ results {{ {_RUN_FIELDS} }} }}
    ... on Error {{ message }}
  }}
}}"""

_TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message run { status } }
    ... on Error { message }
  }
}"""

_DELETE = """
mutation Delete($runId: String!) {
  deleteRun(runId: $runId) {
    __typename
    ... on Error { message }
  }
}"""

_MATERIALIZATIONS = """
query Materializations($assetKey: AssetKeyInput!, $partitions: [String!], $limit: Int) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: $partitions, limit: $limit) {
        runId
        timestamp
        metadataEntries {
          __typename
          label
          ... on TextMetadataEntry { text }
          ... on PathMetadataEntry { path }
          ... on UrlMetadataEntry { url }
          ... on IntMetadataEntry { intRepr }
          ... on FloatMetadataEntry { floatValue }
          ... on BoolMetadataEntry { boolValue }
          ... on JsonMetadataEntry { jsonString }
          ... on MarkdownMetadataEntry { mdStr }
        }
      }
    }
  }
}"""


def _metadata_value(entry: Mapping[str, Any]) -> Any:
    kind = entry.get("__typename")
    if kind == "IntMetadataEntry":
        return int(entry["intRepr"])
    if kind == "JsonMetadataEntry":
        return json.loads(entry["jsonString"])
    for name in ("text", "path", "url", "floatValue", "boolValue", "mdStr"):
        if name in entry:
            return entry[name]
    return None


class DagsterClient:
    """Small synchronous GraphQL client (the API's routes run in a thread pool)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/graphql"
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=connect_timeout), transport=transport)
        self._known_partitions: set[str] = set()

    def close(self) -> None:
        self._client.close()

    @property
    def repository_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}

    def execute(
        self, query: str, variables: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """``timeout`` (seconds, connect and read) overrides the client's for this call."""
        try:
            response = self._client.post(
                self.url,
                json={"query": query, "variables": dict(variables or {})},
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.HTTPError as exc:
            raise DagsterUnavailable(f"Dagster webserver unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise DagsterUnavailable(f"Dagster webserver answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise DagsterUnavailable("Dagster webserver answered with a non-JSON body") from exc
        if response.status_code >= 400 or payload.get("errors"):
            messages = (
                "; ".join(e.get("message", "?") for e in payload.get("errors") or []) or f"HTTP {response.status_code}"
            )
            raise DagsterError(f"GraphQL error: {messages}")
        data: dict[str, Any] = payload["data"]
        return data

    def ping(self) -> None:
        self.execute("query Ping { version }")

    def ensure_institution_partition(self, institution_id: int) -> None:
        """Add the institution to the dynamic partition (idempotent, cached per process)."""
        key = str(int(institution_id))
        if key in self._known_partitions:
            return
        result = self.execute(
            _ADD_PARTITION, {"selector": self.repository_selector, "name": INSTITUTION_DIMENSION, "key": key}
        )["addDynamicPartition"]
        if result["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
            raise DagsterError(f"addDynamicPartition failed: {result.get('message', result['__typename'])}")
        self._known_partitions.add(key)

    def launch_run(self, job_name: str, run_config: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        params = {
            "selector": {**self.repository_selector, "jobName": job_name},
            "runConfigData": dict(run_config),
            "executionMetadata": {"tags": [{"key": k, "value": str(v)} for k, v in tags.items()]},
        }
        result = self.execute(_LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] == "LaunchRunSuccess":
            return str(result["run"]["runId"])
        detail = (
            result.get("message") or "; ".join(e["message"] for e in result.get("errors") or []) or result["__typename"]
        )
        raise DagsterError(f"launchRun of {job_name} failed ({result['__typename']}): {detail}")

    @staticmethod
    def _run(data: Mapping[str, Any]) -> RunInfo:
        return RunInfo(
            run_id=data["runId"],
            status=data["status"],
            job_name=data.get("jobName") or "",
            created_at=_ts(data.get("creationTime")),
            started_at=_ts(data.get("startTime")),
            ended_at=_ts(data.get("endTime")),
            tags={t["key"]: t["value"] for t in data.get("tags") or []},
        )

    def get_run(self, run_id: str) -> RunInfo | None:
        result = self.execute(_RUN, {"runId": run_id})["runOrError"]
        if result["__typename"] == "Run":
            return self._run(result)
        if result["__typename"] == "RunNotFoundError":
            return None
        raise DagsterError(f"runOrError failed: {result.get('message')}")

    def find_runs(
        self,
        *,
        tags: Mapping[str, str] | None = None,
        statuses: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        limit: int = 1,
    ) -> list[RunInfo]:
        """Runs matching the filter, newest first."""
        run_filter: dict[str, Any] = {}
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if statuses:
            run_filter["statuses"] = list(statuses)
        if run_ids is not None:
            run_filter["runIds"] = list(run_ids)
        result = self.execute(_RUNS, {"filter": run_filter, "limit": limit})["runsOrError"]
        if result["__typename"] != "Runs":
            raise DagsterError(f"runsOrError failed: {result.get('message')}")
        return [self._run(r) for r in result["results"]]

    def terminate_run(self, run_id: str) -> None:
        """Ask Dagster to terminate the run.

        Raises :class:`RunNotTerminable` (with the run's status) when Dagster refuses
        because of the status (it only terminates QUEUED and STARTED runs), and
        :class:`DagsterError` for anything else.
        """
        result = self.execute(_TERMINATE, {"runId": run_id})["terminateRun"]
        kind = result["__typename"]
        if kind == "TerminateRunSuccess":
            return
        message = f"terminateRun failed: {result.get('message', kind)}"
        if kind == "TerminateRunFailure" and (result.get("run") or {}).get("status"):
            raise RunNotTerminable(run_id, result["run"]["status"], message)
        if kind == "RunNotFoundError":
            raise RunNotTerminable(run_id, "NOT_FOUND", message)
        raise DagsterError(message)

    def delete_run(self, run_id: str) -> None:
        """Delete the run and its events from Dagster (a run that is not there is already gone)."""
        result = self.execute(_DELETE, {"runId": run_id})["deleteRun"]
        if result["__typename"] not in ("DeletePipelineRunSuccess", "RunNotFoundError"):
            raise DagsterError(f"deleteRun failed: {result.get('message', result['__typename'])}")

    def latest_materialization(
        self, asset_name: str, partition_key: str, *, timeout: float | None = None
    ) -> Materialization | None:
        result = self.execute(
            _MATERIALIZATIONS,
            {"assetKey": {"path": [asset_name]}, "partitions": [partition_key], "limit": 1},
            timeout=timeout,
        )["assetOrError"]
        if result["__typename"] != "Asset":
            return None
        events = result["assetMaterializations"]
        if not events:
            return None
        event = events[0]
        return Materialization(
            run_id=event["runId"],
            timestamp=datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC),
            metadata={e["label"]: _metadata_value(e) for e in event["metadataEntries"]},
        )
