"""`scripts/demo.py` (behind `scripts/demo.sh`) as a user runs it in the background, then `--stop`.

The demo is started the way a non-interactive shell starts a background job: SIGINT (and here
SIGTERM too) ignored. It must still sync once before the UI opens, and `--stop` must end every
process it started (`dg dev`, the webserver, the daemon, the code server) and its PostgreSQL.
It runs on free ports, with its data, instance and pid file in a temporary `DEMO_DIR` and a
copy of the quickstart project, so it neither meets a demo someone runs in this tree nor
writes a snapshot into it.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagster_postgres_connection.testing import EmbeddedPostgres, find_free_port
from dagster_postgres_connection_tests.e2e.conftest import EXAMPLE
from dagster_postgres_connection_tests.e2e.webserver import (
    WORKSPACE_QUERY,
    DagsterWebserver,
    WebserverError,
)
from dagster_postgres_connection_tests.utils import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEMO = REPO_ROOT / "scripts" / "demo.py"
FILM = ["pagila_prod", "pagila", "public", "film"]

SYNC_RESULTS_QUERY = """
query ($key: AssetKeyInput!) {
  runsOrError { ... on Runs { results { jobName status } } }
  assetNodes(assetKeys: [$key]) {
    assetObservations(limit: 1) {
      metadataEntries { label ... on IntMetadataEntry { intValue } }
    }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
    }
  }
}
"""


def processes_of(dagster_home: Path) -> dict[int, str]:
    """Live processes whose DAGSTER_HOME is `dagster_home` (pid -> command line): whatever the
    demo's Dagster started, in any process group."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            environ = (proc / "environ").read_bytes().split(b"\0")
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if f"DAGSTER_HOME={dagster_home}".encode() in environ:
            found[int(proc.name)] = command
    return found


def _ignore_sigint_and_sigterm() -> None:
    """What `some_launcher &` in a non-interactive shell (and some CI wrappers) does to a job."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def test_demo_syncs_once_and_stop_ends_everything(tmp_path: Path) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".local_defs_state", "__pycache__", ".env"))
    demo_dir = tmp_path / "demo"
    dagster_home = demo_dir / "dagster-home"
    ui_port = find_free_port()
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    env |= {
        "DEMO_DIR": str(demo_dir),
        "DEMO_PROJECT_DIR": str(project),
        "DEMO_PG_PORT": str(find_free_port()),
        "DEMO_UI_PORT": str(ui_port),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    log_path = tmp_path / "demo.log"
    # The UI's GraphQL, through the e2e client (not started by it: only its queries are used).
    ui = DagsterWebserver(project, env, log_path)
    ui.port = ui_port

    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, str(DEMO)], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # for the clean-up below only: the demo is stopped by --stop
            preexec_fn=_ignore_sigint_and_sigterm,
        )
    try:
        deadline = time.monotonic() + 150
        while True:
            if demo.poll() is not None:
                pytest.fail(f"the demo exited with code {demo.returncode}.\n{ui.log_tail(60)}")
            with contextlib.suppress(OSError, WebserverError):
                entries = ui.graphql(WORKSPACE_QUERY)["workspaceOrError"].get("locationEntries")
                if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                    break
            assert time.monotonic() < deadline, f"the demo's UI did not come up.\n{ui.log_tail(60)}"
            time.sleep(1)
        output = log_path.read_text(errors="replace")
        assert "Running the sync job `pagila_prod_sync` once" in output
        assert "Synced (" in output, output
        # Dagster's own BetaWarning for `execution_type` is filtered (load_warnings.py).
        assert "BetaWarning" not in output, output

        # The sync ran before the UI opened, recorded in the demo's instance.
        data = ui.graphql(SYNC_RESULTS_QUERY, {"key": {"path": FILM}})
        assert {"jobName": "pagila_prod_sync", "status": "SUCCESS"} in data["runsOrError"]["results"]
        (film,) = data["assetNodes"]
        row_counts = [
            entry["intValue"] for entry in film["assetObservations"][0]["metadataEntries"]
            if entry["label"] == "dagster/row_count"
        ]
        server = EmbeddedPostgres(demo_dir / "demo-pg", port=int(env["DEMO_PG_PORT"]), persistent=True).start()
        assert server.reused  # attached to the demo's server, which keeps running
        ((films,),) = server.query("SELECT count(*) FROM public.film", database="pagila")
        assert row_counts == [films]
        checks = {c["name"]: c["executionForLatestMaterialization"]["status"] for c in film["assetChecksOrError"]["checks"]}
        assert checks == {"schema_unchanged": "SUCCEEDED"}

        running = processes_of(dagster_home)
        for part in ("dg dev", "dagster_webserver", "dagster._daemon", "code-server"):
            assert any(part in command for command in running.values()), (part, running)
        assert (demo_dir / "demo-dg.pid").is_file()

        stop = subprocess.run([sys.executable, str(DEMO), "--stop"], env=env, capture_output=True, text=True, timeout=90)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "Dagster stopped" in stop.stdout and "PostgreSQL stopped" in stop.stdout, stop.stdout
        # Stopped by SIGTERM, not by the SIGKILL escalation: `dg dev` runs with default handlers.
        assert "killing process group" not in stop.stdout, stop.stdout

        assert processes_of(dagster_home) == {}
        assert demo.wait(timeout=30) == 0, ui.log_tail(60)
        assert not (demo_dir / "demo-dg.pid").exists()
        assert not (demo_dir / "demo-pg" / "pgdata" / "postmaster.pid").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        for pid in processes_of(dagster_home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        EmbeddedPostgres(demo_dir / "demo-pg", port=int(env["DEMO_PG_PORT"]), persistent=True).stop()
