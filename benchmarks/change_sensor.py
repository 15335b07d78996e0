"""What one tick of `<name>_change_sensor` costs at 1k and 10k tables (issue 16).

Starts a throwaway ``EmbeddedPostgres`` 18 (fsync off), generates each catalog with
``generate_catalog.py`` (seed 1, 50 schemas), writes its snapshot once, then in a **fresh
subprocess per size** (so peak RSS is that size's alone): builds the Definitions from the
snapshot as a code server does (the factory with ``change_sensor``), and evaluates the sensor
as the daemon asks a code server to: a baseline tick (empty cursor), ``--quiet`` ticks with
nothing changed, and a tick after rows were inserted into ``--changed`` tables. Per tick: wall
seconds, statements sent (``before_cursor_execute`` on every engine), events, cursor size; per
process: RSS after loading and peak RSS (``ru_maxrss``). Prints a Markdown table and writes
JSON to ``benchmarks/results/`` (git-ignored).

Usage::

    .venv/bin/python benchmarks/change_sensor.py [--sizes 1000 10000] [--quiet 5] [--changed 10]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

PASSWORD_ENV = "DPC_BENCH_PASSWORD"
CONNECTION = "bench"


def _settings(url: Any) -> dict[str, Any]:
    return {"host": url.host, "port": url.port, "username": url.username, "databases": [url.database]}


def probe(url_text: str, snapshot: str, quiet: int, changed: int) -> dict[str, Any]:
    """Runs in its own process: load, then the ticks. Returns the measurements."""
    import dagster as dg
    import sqlalchemy as sa

    from dagster_postgres_connection import build_postgres_connection_defs
    from dagster_postgres_connection.observe.change_sensor import change_sensor_name

    url = sa.make_url(url_text)
    os.environ.setdefault(PASSWORD_ENV, "unused")  # the embedded server trusts local users
    started = time.perf_counter()
    defs = build_postgres_connection_defs(
        name=CONNECTION,
        password=dg.EnvVar(PASSWORD_ENV),
        snapshot_path=snapshot,
        change_sensor={"minimum_interval_seconds": 30},
        schema_checks=False,
        **_settings(url),
    )
    sensor = defs.resolve_sensor_def(change_sensor_name(CONNECTION))
    load_seconds = time.perf_counter() - started
    rss_after_load_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    statements: list[str] = []
    sa.event.listen(sa.Engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def tick(cursor: str | None) -> tuple[dict[str, Any], str | None]:
        statements.clear()
        began, cpu = time.perf_counter(), time.process_time()
        result = sensor(dg.build_sensor_context(cursor=cursor, sensor_name=sensor.name))
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        events = len(result.asset_events) if isinstance(result, dg.SensorResult) else 0
        new_cursor = result.cursor if isinstance(result, dg.SensorResult) and result.cursor else cursor
        return {
            "seconds": round(seconds, 3),
            "client_cpu_seconds": round(cpu, 3),
            "statements": len(statements),
            "events": events,
            "cursor_bytes": len(new_cursor or ""),
        }, new_cursor

    baseline, cursor = tick(None)
    quiet_ticks = []
    for _ in range(quiet):
        measured, cursor = tick(cursor)
        quiet_ticks.append(measured)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    tables: list[str] = []
    with engine.connect() as conn:
        candidates = conn.execute(sa.text(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND NOT c.relispartition AND n.nspname NOT IN ('public', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1 LIMIT 500"
        )).scalars().all()
        for table in candidates:  # a row of defaults, where the table's constraints allow one
            if len(tables) == changed:
                break
            try:
                conn.exec_driver_sql(f"INSERT INTO {table} DEFAULT VALUES")
            except sa.exc.DBAPIError:
                continue
            tables.append(table)
    engine.dispose()
    time.sleep(1.5)  # statistics reach shared memory within a second of the writer's commit
    after_change, cursor = tick(cursor)
    return {
        "load_seconds": round(load_seconds, 3),
        "assets": len(defs.resolve_all_asset_specs()),
        "rss_after_load_mb": round(rss_after_load_mb, 1),
        "baseline": baseline,
        "quiet": quiet_ticks,
        "quiet_median_seconds": statistics.median(t["seconds"] for t in quiet_ticks),
        "quiet_median_client_cpu_seconds": statistics.median(t["client_cpu_seconds"] for t in quiet_ticks),
        "statement_execution_ms": _execution_ms(url, sa),
        "after_change": after_change,
        "changed_tables": len(tables),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _execution_ms(url: Any, sa: Any) -> float:
    """The server's own time for the sensor's statement (`EXPLAIN ANALYZE`, median of 5)."""
    from dagster_postgres_connection.observe import queries

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        schemas = conn.execute(sa.text(
            "SELECT array_agg(nspname::text) FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
        )).scalar_one()
        times = [
            float(conn.execute(sa.text("EXPLAIN (ANALYZE, TIMING OFF) " + queries.RELATION_VERSIONS.text), {"schemas": schemas})
                  .all()[-1][0].split(":")[1].split()[0])
            for _ in range(5)
        ]  # fmt: skip
    engine.dispose()
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--quiet", type=int, default=5, help="ticks with nothing changed")
    parser.add_argument("--changed", type=int, default=10, help="tables written before the last tick")
    parser.add_argument("--probe", nargs=2, metavar=("URL", "SNAPSHOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe[0], args.probe[1], args.quiet, args.changed)))
        return 0

    import dagster as dg
    from generate_catalog import generate_catalog
    from run_preliminary import recreate_database

    from dagster_postgres_connection.catalog.reader import read_catalog
    from dagster_postgres_connection.catalog.state import write_snapshot
    from dagster_postgres_connection.factory import build_postgres_connection_settings
    from dagster_postgres_connection.testing.embedded_postgres import EmbeddedPostgres

    os.environ.setdefault(PASSWORD_ENV, "unused")
    results: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count(), "sizes": {}}
    with EmbeddedPostgres(version=18) as pg, tempfile.TemporaryDirectory() as folder:
        admin = pg.url("postgres")
        for size in args.sizes:
            url = recreate_database(admin, f"bench_{size}")
            began = time.perf_counter()
            generate_catalog(url, tables=size, schemas=50, seed=1)
            print(f"{size} tables generated in {time.perf_counter() - began:.0f} s", file=sys.stderr)
            settings = build_postgres_connection_settings(
                name=CONNECTION, password=dg.EnvVar(PASSWORD_ENV), **_settings(url)
            )
            snapshot = Path(folder) / f"bench_{size}.snapshot"
            write_snapshot(read_catalog(settings), snapshot)
            url_text = url.render_as_string(hide_password=False)
            output = subprocess.run(
                [sys.executable, __file__, "--quiet", str(args.quiet), "--changed", str(args.changed),
                 "--probe", url_text, str(snapshot)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if output.returncode != 0:
                raise RuntimeError(f"the probe of {size} tables failed:\n{output.stderr[-4000:]}")
            results["sizes"][size] = json.loads(output.stdout.strip().splitlines()[-1])
            results["load_average"] = os.getloadavg()
    out = HERE / "results" / f"change-sensor-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print("| tables | assets | baseline tick | quiet tick (median) | its client CPU | its statement on the server | tick after tables changed | statements per tick | changed tables → events | cursor | RSS after load | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size, r in results["sizes"].items():
        print(
            f"| {size:,} | {r['assets']:,} | {r['baseline']['seconds']} s | {r['quiet_median_seconds']} s | "
            f"{r['quiet_median_client_cpu_seconds']} s | {r['statement_execution_ms']:.0f} ms | "
            f"{r['after_change']['seconds']} s | {r['after_change']['statements']} | {r['changed_tables']} → {r['after_change']['events']} | "
            f"{r['after_change']['cursor_bytes'] / 1024:.0f} KiB | {r['rss_after_load_mb']} MB | {r['peak_rss_mb']} MB |"
        )
    print(f"JSON: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
