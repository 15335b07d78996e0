"""examples/deployment run as a user runs it: a `dagster code-server start`, `dagster-webserver`
and `dagster-daemon` as three separate processes, each with its own DAGSTER_HOME holding the
example's dagster.yaml, sharing only what that file names (PostgreSQL and the state storage).

Each process runs in its own process group, started by PID and stopped with
`stop_process_group` (SIGTERM, then SIGKILL), which also checks that none of its children
(the code server's `dagster api grpc`, the runs it launched) is left.
"""

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster_postgres_connection.testing import LOCALHOST, find_free_port
from dagster_postgres_connection_tests.e2e.webserver import (
    WebserverError,
    _default_sigint,
    graphql_request,
    stop_process_group,
)

BIN = Path(sys.executable).parent
REPOSITORY = "__repository__"  # the name Dagster gives a `@dg.definitions` code location

LOCATION_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name loadStatus
        locationOrLoadError { __typename ... on PythonError { message stack } }
      }
    }
  }
}
"""
LOCATION_STATE_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries { versionKey defsStateInfo { keyStateInfo { name info { version } } } }
    }
  }
}
"""
ASSET_KEYS_QUERY = "{ assetNodes { assetKey { path } } }"
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""
RUN_QUERY = """
query Run($id: ID!) {
  runOrError(runId: $id) { ... on Run { status startTime endTime } }
}
"""
RUN_EVENTS = """
query Events($id: ID!) {
  logsForRun(runId: $id, limit: 5000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message }
        ... on ExecutionStepOutputEvent {
          metadataEntries {
            label
            ... on TextMetadataEntry { text }
            ... on BoolMetadataEntry { boolValue }
            ... on JsonMetadataEntry { jsonString }
            ... on IntMetadataEntry { intValue }
          }
        }
      }
    }
  }
}
"""
SCHEDULE_STATE = """
query Schedule($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { id status } }
  }
}
"""
STOP_SCHEDULE = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
  }
}
"""


class DagsterProcess:
    """One long-running command in its own process group, output in `<name>.log`."""

    def __init__(self, name: str, args: list[str], *, cwd: Path, env: Mapping[str, str], logs: Path) -> None:
        self.name = name
        self.args = args
        self.cwd = cwd
        self.env = dict(env)
        self.log_path = logs / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() ends its children too
                preexec_fn=_default_sigint,
            )

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise WebserverError(f"`{self.name}` exited with code {self.process.returncode}.\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and not stop_process_group(process):
            raise WebserverError(f"Processes of `{self.name}` (group {process.pid}) survived SIGKILL.")

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- last lines of {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])


class Deployment:
    """The example's three processes. `env` holds the variables of the example's .env.example.

    Each process gets a folder of its own under `root/machines/<name>`, as if on its own machine:
    `home/` (its DAGSTER_HOME, with a copy of `dagster_yaml`) and `compute_logs/` (the local
    folder dagster.yaml names through DAGSTER_COMPUTE_LOGS_DIR). `deploy` is where the deploy
    step (`dg utils refresh-defs-state`) runs.
    """

    def __init__(self, example: Path, project: Path, dagster_yaml: str, env: Mapping[str, str], root: Path) -> None:
        self.code_server_port = find_free_port()
        self.webserver_port = find_free_port()
        self.root = root
        logs = root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.machines = {name: self._machine(name, dagster_yaml) for name in ("code_server", "webserver", "daemon", "deploy")}
        self.env = {
            **env,
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "DAGSTER_CODE_SERVER_HOST": LOCALHOST,
            "DAGSTER_CODE_SERVER_PORT": str(self.code_server_port),
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }
        self.project = project
        self.code_server = DagsterProcess(
            "code_server",
            [str(BIN / "dagster"), "code-server", "start", "-h", LOCALHOST, "-p", str(self.code_server_port),
             "-m", "warehouse_catalog.definitions", "--location-name", "warehouse"],
            cwd=project, env=self._env_of("code_server"), logs=logs,
        )  # fmt: skip
        self.webserver = DagsterProcess(
            "webserver",
            [str(BIN / "dagster-webserver"), "-h", LOCALHOST, "-p", str(self.webserver_port), "-w", str(example / "workspace.yaml")],
            cwd=example, env=self._env_of("webserver"), logs=logs,
        )  # fmt: skip
        self.daemon = DagsterProcess(
            "daemon",
            [str(BIN / "dagster-daemon"), "run", "-w", str(example / "workspace.yaml")],
            cwd=example, env=self._env_of("daemon"), logs=logs,
        )  # fmt: skip
        self.processes = [self.code_server, self.webserver, self.daemon]

    def _machine(self, name: str, dagster_yaml: str) -> Path:
        machine = self.root / "machines" / name
        (machine / "home").mkdir(parents=True, exist_ok=True)
        (machine / "home" / "dagster.yaml").write_text(dagster_yaml)
        return machine

    def _env_of(self, name: str) -> dict[str, str]:
        machine = self.machines[name]
        return {
            **self.env,
            "DAGSTER_HOME": str(machine / "home"),
            "DAGSTER_COMPUTE_LOGS_DIR": str(machine / "compute_logs"),
        }

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.webserver_port}"

    def deploy_state(self) -> subprocess.CompletedProcess[str]:
        """The deploy step: `dg utils refresh-defs-state` writes the first state version."""
        return subprocess.run(
            [str(BIN / "dg"), "utils", "refresh-defs-state"],
            cwd=self.project,
            env={**self._env_of("deploy"), "VIRTUAL_ENV": sys.prefix},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start(self) -> None:
        for process in self.processes:
            process.start()
        self.wait_until_loaded()

    def stop(self) -> None:
        problems = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except WebserverError as error:
                problems.append(str(error))
        if problems:
            raise WebserverError("; ".join(problems))

    def logs(self) -> str:
        return "\n".join(process.log_tail() for process in self.processes)

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return graphql_request(self.url, query, variables)

    def wait_until_loaded(self, timeout: float = 240) -> None:
        """Until the webserver shows the `warehouse` location loaded without error."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            for process in self.processes:
                process.check_alive()
            try:
                entries = self.graphql(LOCATION_QUERY)["workspaceOrError"].get("locationEntries") or []
            except (OSError, WebserverError) as error:
                last = str(error)
            else:
                last = str(entries)
                if entries and entries[0]["loadStatus"] == "LOADED":
                    loaded = entries[0]["locationOrLoadError"]
                    if loaded and loaded["__typename"] == "RepositoryLocation":
                        return
            time.sleep(1)
        raise WebserverError(f"The `warehouse` location did not load in {timeout:.0f} s ({last[:3000]}).\n{self.logs()}")

    def location_state(self) -> tuple[str, dict[str, str | None]]:
        """The location as the webserver serves it: its version key (which carries the code
        server's id) and the state version it loaded per defs state key."""
        entry = self.graphql(LOCATION_STATE_QUERY)["workspaceOrError"]["locationEntries"][0]
        infos = (entry["defsStateInfo"] or {}).get("keyStateInfo") or []
        return entry["versionKey"], {i["name"]: (i["info"] or {}).get("version") for i in infos}

    def asset_keys(self) -> set[str]:
        return {"/".join(node["assetKey"]["path"]) for node in self.graphql(ASSET_KEYS_QUERY)["assetNodes"]}

    def stop_schedule(self, name: str) -> None:
        """Stops a running schedule as the UI's toggle does (the test launches its syncs itself)."""
        selector = {"repositoryLocationName": "warehouse", "repositoryName": REPOSITORY, "scheduleName": name}
        state = self.graphql(SCHEDULE_STATE, {"selector": selector})["scheduleOrError"]
        assert state["__typename"] == "Schedule", state
        stopped = self.graphql(STOP_SCHEDULE, {"id": state["scheduleState"]["id"]})["stopRunningSchedule"]
        assert stopped.get("scheduleState", {}).get("status") == "STOPPED", stopped

    def launch(self, job: str) -> str:
        params = {"selector": {"repositoryLocationName": "warehouse", "repositoryName": REPOSITORY, "jobName": job}}
        launched = self.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def wait_for_run(self, run_id: str, timeout: float = 180) -> dict[str, Any]:
        """The finished run (status, start and end time); fails unless it succeeded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.graphql(RUN_QUERY, {"id": run_id})["runOrError"]
            if run.get("status") in ("SUCCESS", "FAILURE", "CANCELED"):
                assert run["status"] == "SUCCESS", f"run {run_id}: {run}\n{self.run_messages(run_id)}\n{self.logs()}"
                return run
            time.sleep(0.5)
        raise WebserverError(f"Run {run_id} did not finish in {timeout:.0f} s.\n{self.logs()}")

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        answer = self.graphql(RUN_EVENTS, {"id": run_id})["logsForRun"]
        assert answer["__typename"] == "EventConnection", answer
        return answer["events"]

    def run_messages(self, run_id: str) -> str:
        return "\n".join(str(event.get("message")) for event in self.run_events(run_id))

    def sync_output(self, run_id: str) -> dict[str, Any]:
        """The sync op's run-level metadata (label -> value)."""
        for event in self.run_events(run_id):
            if event["__typename"] == "ExecutionStepOutputEvent":
                return {entry["label"]: _entry_value(entry) for entry in event["metadataEntries"]}
        raise AssertionError(f"run {run_id} has no output event")


def _entry_value(entry: Mapping[str, Any]) -> Any:
    for field in ("text", "boolValue", "intValue"):
        if field in entry:
            return entry[field]
    if "jsonString" in entry:
        return json.loads(entry["jsonString"])
    return None


def copy_example(example: Path, root: Path) -> Path:
    """A copy of the example (the repository's copy gets no state): returns its project folder."""
    copy = root / "deployment"
    shutil.copytree(example, copy, ignore=shutil.ignore_patterns(".local_defs_state", "__pycache__", ".env"))
    return copy
