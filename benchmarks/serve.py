"""The rows that start real servers on a generated `dg` project (`dg_project.py`).

- `code_server`: `dagster api grpc -m <module>.definitions` (the process `dg dev`, `dagster dev`
  and `dagster code-server start` run for a code location; `code-server start` only adds a proxy
  process in front of it). Timed from its start until it answers a `Ping` (it loads the
  definitions before it listens) and until it has sent the repository snapshot the webserver
  asks for first (`ExternalRepository`, `defer_snapshots=True`); the asset count is read from
  that answer. Peak RSS is the server's `VmHWM` (/proc/<pid>/status), read before stopping it.
- `dg_dev`: `dg dev` (webserver, daemon and code server), timed from its start until the
  webserver's GraphQL lists every asset (`assetNodes { assetKey { path } }`). Peak RSS per
  process of its group is read the same way; the code server's and the sum are reported.

Every process started here runs in its own process group and is stopped by that group (SIGTERM,
then SIGKILL), also when a measurement fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

from dg_project import DgProject  # noqa: E402

from dagster_postgres_connection.testing import LOCALHOST, find_free_port  # noqa: E402
from dagster_postgres_connection_tests.e2e.webserver import (  # noqa: E402
    DagsterWebserver,
    WebserverError,
    _default_sigint,
    stop_process_group,
)

if TYPE_CHECKING:
    from dagster._grpc.client import DagsterGrpcClient

DAGSTER = str(Path(sys.executable).with_name("dagster"))
ASSET_NODES_QUERY = "{ assetNodes { assetKey { path } } }"


def project_env(project: DgProject, base: Mapping[str, str], dagster_home: Path) -> dict[str, str]:
    """What a user's shell has: the venv on PATH, the project's `src` importable, a DAGSTER_HOME."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **base,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(project.src), base.get("PYTHONPATH")])),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }


def peak_rss_mb(pid: int) -> float | None:
    """`VmHWM` of a running process (its peak resident set), in MB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a running process so far."""
    with contextlib.suppress(OSError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 3)
    return None


def group_processes(group: int) -> dict[int, str]:
    """pid -> command line of every live process in `group`."""
    found: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == group and state != "Z":
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found[int(stat.parent.name)] = cmdline.strip()
    return found


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL after 20 s; then nothing of it may remain."""
    if not stop_process_group(process):
        raise RuntimeError(f"processes of group {process.pid} survived SIGKILL")


def wait_until_answering(
    process: subprocess.Popen[bytes], port: int, log: Path, started: float, timeout: float
) -> DagsterGrpcClient:
    """A client of the code server `process` listening on `port`, once it answers a Ping (it
    loads the definitions before it listens); fails if it exits first or `timeout` seconds after
    `started` (`time.perf_counter()`)."""
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host=LOCALHOST)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the code server exited ({process.returncode}); see {log}")
        if time.perf_counter() > started + timeout:
            raise RuntimeError(f"the code server did not answer within {timeout:.0f} s; see {log}")
        try:
            client.ping("")
            return client
        except Exception:  # not listening yet (DagsterUserCodeUnreachableError and kin)
            time.sleep(0.1)


def code_server(project: DgProject, env: Mapping[str, str], log: Path, expect_assets: int,
                timeout: float = 1800) -> dict[str, Any]:  # fmt: skip
    """`dagster api grpc` on the project: seconds until it answers, until it served the snapshot."""
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._grpc.types import ListRepositoriesResponse
    from dagster_shared.serdes import deserialize_value

    port = find_free_port()
    cmd = [DAGSTER, "api", "grpc", "--host", LOCALHOST, "--port", str(port),
           "-m", project.definitions_module, "-d", str(project.src),
           "--location-name", project.connection, "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=_default_sigint)  # fmt: skip
    try:
        client = wait_until_answering(process, port, log, started, timeout)
        answered = time.perf_counter()
        listed = deserialize_value(client.list_repositories(), ListRepositoriesResponse)
        origin = GrpcServerCodeLocationOrigin(host=LOCALHOST, port=port, location_name=project.connection)
        assets = 0
        for symbol in listed.repository_symbols:
            snap = deserialize_value(
                client.external_repository(
                    RemoteRepositoryOrigin(origin, symbol.repository_name), defer_snapshots=True, timeout=int(timeout)
                ),
                RepositorySnap,
            )
            assets += sum(1 for node in snap.asset_nodes if node.asset_key.path[0] == project.connection)
        served = time.perf_counter()
        if assets != expect_assets:
            raise RuntimeError(f"the code server served {assets} assets, expected {expect_assets}")
        return {
            "assets": assets,
            "seconds": round(served - started, 3),  # start until the snapshot was received
            "answer_seconds": round(answered - started, 3),  # start until the first Ping answer
            "snapshot_seconds": round(served - answered, 3),  # ListRepositories + ExternalRepository
            "wall_seconds": round(served - started, 3),
            "process_cpu_seconds": cpu_seconds(process.pid),
            "peak_rss_mb": peak_rss_mb(process.pid),
        }
    finally:
        stop_group(process)


def dg_dev(project: DgProject, env: Mapping[str, str], log: Path, expect_assets: int,
           timeout: float = 1800) -> dict[str, Any]:  # fmt: skip
    """`dg dev` on the project: seconds until GraphQL's `assetNodes` lists every asset."""
    server = DagsterWebserver(project.root, env, log)
    started = time.perf_counter()
    try:
        server.start(timeout=timeout)  # returns once every code location is LOADED (polls each 1 s)
    except WebserverError as error:  # start() has stopped it; the log goes with the run's temp folder
        raise RuntimeError(f"{error}\n{server.log_tail(120)}") from None
    try:
        loaded = time.perf_counter()
        while True:
            nodes = server.graphql(ASSET_NODES_QUERY)["assetNodes"]
            assets = sum(1 for node in nodes if node["assetKey"]["path"][0] == project.connection)
            if assets == expect_assets:
                break
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"GraphQL lists {assets} assets after {timeout:.0f} s, expected {expect_assets}")
            time.sleep(0.5)
        listed = time.perf_counter()
        process = server._process
        assert process is not None
        processes = group_processes(process.pid)
        rss = {pid: peak_rss_mb(pid) or 0.0 for pid in processes}
        grpc = [pid for pid, cmdline in processes.items() if " api grpc" in cmdline]
        return {
            "assets": assets,
            "seconds": round(listed - started, 3),
            "loaded_seconds": round(loaded - started, 3),  # until the workspace says LOADED
            "graphql_seconds": round(listed - loaded, 3),  # the assetNodes queries
            "wall_seconds": round(listed - started, 3),
            "process_cpu_seconds": round(sum(cpu_seconds(pid) or 0.0 for pid in processes), 3),
            "peak_rss_mb": max((rss[pid] for pid in grpc), default=None),  # the code server's
            "group_peak_rss_mb": round(sum(rss.values()), 1),  # every process of `dg dev`, summed
            "processes": len(processes),
        }
    finally:
        server.stop()
