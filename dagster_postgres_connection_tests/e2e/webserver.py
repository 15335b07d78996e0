"""`dg dev` on an example project, as a user runs it, plus a tiny GraphQL client.

The server runs in its own process group (`dg dev` starts `dagster dev`, which starts the
webserver, the daemon and a code server), so `stop()` ends all of them at once and then
checks that none is left.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster_postgres_connection.testing import LOCALHOST, find_free_port

DG = str(Path(sys.executable).with_name("dg"))

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on PythonError { message }
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
  }
}
"""


class WebserverError(RuntimeError):
    """`dg dev` did not come up, or a GraphQL request failed."""


class DagsterWebserver:
    """`dg dev --host 127.0.0.1 --port <free>` in `project_dir`, its output in `log_path`.

    Args:
        project_dir: A `dg` project (or workspace) folder.
        env: The complete environment of the server (connection variables, DAGSTER_HOME...).
        log_path: Where stdout and stderr of `dg dev` go; quoted in every error.
    """

    def __init__(self, project_dir: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.project_dir = project_dir
        self.env = dict(env)
        self.log_path = log_path
        self.port = find_free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def start(self, timeout: float = 240) -> "DagsterWebserver":
        """Starts `dg dev` and waits until every code location has loaded; fails if one did not."""
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [DG, "dev", "--host", LOCALHOST, "--port", str(self.port)],
                cwd=self.project_dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the whole tree
                preexec_fn=_default_sigint,
            )
        try:
            self._wait_until_loaded(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_loaded(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise WebserverError(f"`dg dev` exited with code {self._process.returncode}.\n{self.log_tail()}")
            try:
                entries = self.graphql(WORKSPACE_QUERY)["workspaceOrError"].get("locationEntries")
            except (OSError, WebserverError) as error:  # not listening yet, or still starting
                last_problem = str(error)
            else:
                if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                    failed = [e for e in entries if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"]
                    if failed:
                        raise WebserverError(
                            "Code locations failed to load: "
                            + "; ".join(f"`{e['name']}`: {_error_text(e['locationOrLoadError'])}" for e in failed)
                        )
                    return
                last_problem = f"locations: {entries}"
            time.sleep(1)
        raise WebserverError(f"`dg dev` was not ready after {timeout:.0f} s ({last_problem}).\n{self.log_tail()}")

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL answer; raises when the answer carries `errors`."""
        return graphql_request(self.url, query, variables)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return "--- last lines of dg dev's output ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 20 s; then no process of it may remain."""
        process, self._process = self._process, None
        if process is None:
            return
        if not stop_process_group(process):
            raise WebserverError(f"Processes of `dg dev` (group {process.pid}) survived SIGKILL.")

    def __enter__(self) -> "DagsterWebserver":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def graphql_request(url: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `data` of a GraphQL answer from the webserver at `url`; raises when it carries `errors`."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": dict(variables or {})}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        raise WebserverError(f"GraphQL HTTP {error.code}: {error.read()[:2000]!r}") from None
    if answer.get("errors"):
        raise WebserverError(f"GraphQL errors: {json.dumps(answer['errors'])[:2000]}")
    return answer["data"]


def _error_text(error: Mapping[str, Any]) -> str:
    """A PythonError's message and the end of its stack (the message alone often only names the
    code location; the cause is further down)."""
    stack = "".join(error.get("stack") or [])
    return f"{error.get('message')}\n{stack[-3000:]}" if stack else str(error.get("message"))


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 20) -> bool:
    """SIGTERM to the group `process` leads (started with `start_new_session`), SIGKILL after
    `grace` seconds; True when no process of the group is left. Children (a code server, a
    daemon) may outlive the leader by a moment, so the group is watched, not only the leader."""
    group = process.pid  # start_new_session: the group id is the leader's pid
    _signal_group(group, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while _group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(group):
        _signal_group(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        time.sleep(0.5)
    return not _group_alive(group)


def _default_sigint() -> None:
    """Runs in the child before `dg`: a shell's background job inherits SIGINT ignored, and
    `dagster dev` then cannot stop its webserver, daemon and code server on SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    """True while a process of `group` runs (zombies, waiting for a reaper, don't count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # Fields after the parenthesised command name: state, ppid, pgrp, ...
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == group and state != "Z":
            return True
    return False
