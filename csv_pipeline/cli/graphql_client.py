"""What became of a file, asked of Dagster's GraphQL API.

Plain HTTP against ``<CSV_PIPELINE_DAGSTER_URL>/graphql``, so scripts need neither Dagster
nor access to its database: a run is found by the run tags the sensor sets
(``csv_pipeline/file``, ``csv_pipeline/version``) or by its id, and its outcome is read from
the run status, the ``csv_pipeline/error`` tag and the ``play_totals`` materialization metadata.
``requests`` is imported when a client is made, so commands that ask nothing start without it.
"""

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from csv_pipeline.labels import ERROR_TAG, FILE_TAG, OUTPUT_FILES, ROWS_IN, ROWS_OUT, VERSION_TAG

NOT_FINISHED = frozenset({"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "SUSPENDED", "MANAGED", "CANCELING"})
FAILED = frozenset({"FAILURE", "CANCELED"})
SUCCESS = "SUCCESS"

_RUN_FIELDS = """
fragment RunOutcome on Run {
  runId
  status
  tags { key value }
  assetMaterializations {
    metadataEntries {
      label
      ... on JsonMetadataEntry { jsonString }
      ... on IntMetadataEntry { intRepr }
    }
  }
}
"""

_LATEST_RUN = (
    _RUN_FIELDS
    + """
query LatestRun($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}, limit: 1) {
    __typename
    ... on Runs { results { ...RunOutcome } }
    ... on Error { message }
  }
}
"""
)

_RUN_BY_ID = (
    _RUN_FIELDS
    + """
query RunById($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ...RunOutcome
    ... on Error { message }
  }
}
"""
)

# Read only for a failed run without the csv_pipeline/error tag (a crashed run worker, a cancelled
# run, an op that could not write the tag): the first failure event says why, in one sentence
# when an op raised it (the Failure's description), else the first line of the error.
_FAILURE_EVENTS = """
query FailureEvents($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      eventConnection {
        events {
          __typename
          ... on ExecutionStepFailureEvent { error { message } failureMetadata { description } }
          ... on RunFailureEvent { message }
          ... on RunCanceledEvent { message }
        }
      }
    }
  }
}
"""


class DagsterApiError(Exception):
    """The Dagster webserver could not be reached or did not answer the question."""


@dataclass(frozen=True)
class RunResult:
    """The result of one file, as the command line prints it (its JSON)."""

    status: str
    run_id: str | None
    file: str | None
    output_files: list[str] = field(default_factory=list)
    rows_in: int | None = None
    rows_out: int | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCESS

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    @property
    def finished(self) -> bool:
        return self.succeeded or self.failed

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class DagsterGraphQL:
    """The few questions the CLI asks the webserver at ``base_url``."""

    def __init__(self, base_url: str, timeout_seconds: float = 30.0) -> None:
        import requests

        self.endpoint = f"{base_url.rstrip('/')}/graphql"
        self.timeout_seconds = timeout_seconds
        self._session = requests.Session()

    def latest_run(self, file_key: str, version: str | None = None) -> RunResult | None:
        """The newest run of ``file_key`` (of that content ``version`` if given), or None."""
        tags = [{"key": FILE_TAG, "value": file_key}]
        if version is not None:
            tags.append({"key": VERSION_TAG, "value": version})
        runs = self._query(_LATEST_RUN, {"tags": tags})["runsOrError"]
        if runs["__typename"] != "Runs":
            raise DagsterApiError(f"Dagster could not list the runs of {file_key}: {runs['message']}")
        return self._result(runs["results"][0]) if runs["results"] else None

    def run(self, run_id: str) -> RunResult | None:
        """The run with id ``run_id``, or None if there is no such run."""
        run = self._query(_RUN_BY_ID, {"runId": run_id})["runOrError"]
        if run["__typename"] == "RunNotFoundError":
            return None
        if run["__typename"] != "Run":
            raise DagsterApiError(f"Dagster could not read run {run_id}: {run['message']}")
        return self._result(run)

    def _result(self, run: dict[str, Any]) -> RunResult:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        status = run["status"]
        known = {"status": status, "run_id": run["runId"], "file": tags.get(FILE_TAG)}
        if status in FAILED:
            return RunResult(**known, error=tags.get(ERROR_TAG) or self._failure_message(run["runId"]))
        if status != SUCCESS:
            return RunResult(**known)
        metadata = {
            entry["label"]: entry
            for materialization in run["assetMaterializations"]
            for entry in materialization["metadataEntries"]
        }
        return RunResult(
            **known,
            output_files=json.loads(metadata[OUTPUT_FILES]["jsonString"]),
            rows_in=int(metadata[ROWS_IN]["intRepr"]),
            rows_out=int(metadata[ROWS_OUT]["intRepr"]),
        )

    def _failure_message(self, run_id: str) -> str | None:
        run = self._query(_FAILURE_EVENTS, {"runId": run_id})["runOrError"]
        for event in run.get("eventConnection", {}).get("events", []):
            sentence = (event.get("failureMetadata") or {}).get("description")
            message = sentence or (event.get("error") or {}).get("message") or event.get("message")
            if message:
                return message.strip().splitlines()[0]
        return None

    def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        import requests

        try:
            response = self._session.post(
                self.endpoint, json={"query": query, "variables": variables}, timeout=self.timeout_seconds
            )
            response.raise_for_status()
            answer = response.json()
        except requests.ConnectionError:
            raise DagsterApiError(
                f"Dagster's webserver cannot be reached at {self.endpoint}: is it running, and is "
                "CSV_PIPELINE_DAGSTER_URL its address?"
            ) from None
        except (requests.RequestException, ValueError) as error:
            raise DagsterApiError(f"Dagster's GraphQL API at {self.endpoint} did not answer: {error}") from error
        if answer.get("errors"):
            messages = "; ".join(error["message"] for error in answer["errors"])
            raise DagsterApiError(f"Dagster's GraphQL API at {self.endpoint} rejected the query: {messages}")
        return answer["data"]
