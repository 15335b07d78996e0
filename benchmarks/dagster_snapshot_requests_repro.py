"""Minimal reproduction (Dagster-side, dagster 1.13): a code server builds and serializes the
repository snapshot once per request, with no cache, so concurrent requests each add a multiple
of the snapshot's size to its peak memory.

`DagsterApiServer._get_serialized_external_repository_data` (`dagster/_grpc/server.py`) runs
`serialize_value(RepositorySnap.from_def(...))` for every `ExternalRepository` /
`StreamingExternalRepository` request. `dg dev` and `dagster dev` start a webserver and a daemon
that each ask for it at start-up, seconds apart, so their serializations overlap. No component
or library code is involved here: plain `AssetSpec`s with a column schema, served by
`dagster api grpc`, asked 1, 2 and 3 times at once (a fresh server each time); the peak RSS
(`VmHWM`) grows by a multiple of the serialized snapshot per concurrent request. With a
10,000-table catalog (79 MB snapshot) the code server of this project goes from 400 MB after
its load to 682 / 1,036 / 1,134 MB with 1 / 2 / 3 concurrent requests.

    python benchmarks/dagster_snapshot_requests_repro.py [--assets 5000] [--columns 14]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

from serve import DAGSTER, peak_rss_mb, stop_group, wait_until_answering  # noqa: E402

from dagster_postgres_connection.testing import LOCALHOST, find_free_port  # noqa: E402

DEFINITIONS = """
import dagster as dg

COLUMNS = {columns}
specs = [
    dg.AssetSpec(
        ["repro", f"schema_{{i % 50}}", f"table_{{i}}"],
        description=f"table {{i}}",
        metadata={{
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(f"column_{{c}}_{{i}}", "integer", description=f"column {{c}}") for c in range(COLUMNS)]
            ),
        }},
    )
    for i in range({assets})
]
defs = dg.Definitions(assets=specs)
"""


def peak_with_requests(module: Path, concurrent: int) -> tuple[float, float, int]:
    """A fresh `dagster api grpc` on `module`: its peak RSS after the load, then after
    `concurrent` simultaneous snapshot requests, and the snapshot's size in bytes."""
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._grpc.client import DagsterGrpcClient

    port = find_free_port()
    command = [DAGSTER, "api", "grpc", "--host", LOCALHOST, "--port", str(port), "-f", str(module)]
    env = {**os.environ, "DAGSTER_GRPC_MAX_SEND_BYTES": str(1 << 30)}
    log = module.with_suffix(".log")
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_answering(process, port, log, started, timeout=300)
        loaded = peak_rss_mb(process.pid) or 0.0
        origin = GrpcServerCodeLocationOrigin(host=LOCALHOST, port=port, location_name="repro")
        repository = RemoteRepositoryOrigin(origin, "__repository__")
        sizes: list[int] = []

        def request() -> None:
            data = DagsterGrpcClient(port=port, host=LOCALHOST).external_repository(
                repository, defer_snapshots=True, timeout=600
            )
            sizes.append(len(data))

        threads = [threading.Thread(target=request) for _ in range(concurrent)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return loaded, peak_rss_mb(process.pid) or 0.0, max(sizes)
    finally:
        stop_group(process)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--columns", type=int, default=14)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        module = Path(folder) / "repro_definitions.py"
        module.write_text(DEFINITIONS.format(assets=args.assets, columns=args.columns))
        for concurrent in (1, 2, 3):
            loaded, peak, size = peak_with_requests(module, concurrent)
            print(
                f"{concurrent} concurrent request(s): snapshot {size / 1e6:.1f} MB; code server "
                f"{loaded:.0f} MB after load, peak {peak:.0f} MB (+{peak - loaded:.0f} MB, "
                f"{(peak - loaded) / (size / 1e6):.1f}x the snapshot)"
            )


if __name__ == "__main__":
    main()
