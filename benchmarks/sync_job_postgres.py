"""The sync job on a Dagster instance whose storage is PostgreSQL (issue 15, item 5).

    .venv/bin/python benchmarks/sync_job_postgres.py [--tables 10000]

Starts a throwaway `EmbeddedPostgres` 18 (fsync off) holding both the generated catalog
(`bench_<n>`, `generate_catalog.py`, seed 1, 50 schemas) and Dagster's run/event/schedule storage
(`dagster`, through `dagster-postgres`), as a deployment does. The code location is
`build_postgres_connection_defs` with a snapshot file (where the snapshot and statistics are kept
does not change the events written); then, each timed on its own:

1. the first sync: no statistics yet, so every relation is reported (an observation each) and
   every `schema_unchanged` check gets its first evaluation: ~2 events per relation written to
   the PostgreSQL event log;
2. a sync that finds nothing changed: the fingerprint statements, the statistics statement, no
   catalog read, no event but the run's own.

Each sync runs `execute_in_process` on that instance (the op is the same in a launched run; the
run worker's start, ~5-10 s here, is not in the numbers). Prints one Markdown row per sync and
the event counts read back from the event log.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

from generate_catalog import generate_catalog  # noqa: E402
from run_preliminary import recreate_database  # noqa: E402

PASSWORD_ENV = "BENCH_PG_PASSWORD"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--no-schema-checks", action="store_true", help="`schema_checks: false`")
    parser.add_argument("--profile", type=Path, help="cProfile each sync into <this folder>/<first|unchanged>.prof")
    args = parser.parse_args(argv)

    import dagster as dg

    from dagster_postgres_connection import build_postgres_connection_defs
    from dagster_postgres_connection.testing import EmbeddedPostgres

    os.environ[PASSWORD_ENV] = "unused"  # the embedded superuser logs in without one
    with EmbeddedPostgres(version=18) as pg, tempfile.TemporaryDirectory(prefix="dpc-syncjob-") as tmp:
        work = Path(tmp)
        admin = pg.url("postgres")
        catalog_db = recreate_database(admin, f"bench_{args.tables}")
        stats = generate_catalog(catalog_db, tables=args.tables, schemas=50, seed=1)
        print(f"catalog: {args.tables:,} tables, generated in {stats.seconds:.1f} s", flush=True)
        storage_db = recreate_database(admin, "dagster")
        home = work / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text(
            "storage:\n  postgres:\n    postgres_url: "
            + storage_db.render_as_string(hide_password=False)
            + "\ntelemetry:\n  enabled: false\n"
        )
        options = {
            "name": "bench",
            "host": pg.host,
            "port": pg.port,
            "username": "postgres",
            "password": dg.EnvVar(PASSWORD_ENV),
            "databases": [catalog_db.database],
            "schema_checks": not args.no_schema_checks,
        }
        snapshot_path = work / "snapshot"
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            started = time.perf_counter()
            defs = build_postgres_connection_defs(**options, snapshot_path=snapshot_path)
            print(f"code location built in {time.perf_counter() - started:.1f} s", flush=True)
            job = defs.resolve_job_def("bench_sync")
            print("| sync | seconds | events in the run | observations | check evaluations | peak RSS (MB) |")
            print("|---|---:|---:|---:|---:|---:|")
            for label in ("first (no statistics yet)", "catalog unchanged"):
                started = time.perf_counter()
                if args.profile:
                    import cProfile

                    with cProfile.Profile() as profile:
                        result = job.execute_in_process(instance=instance)
                    args.profile.mkdir(parents=True, exist_ok=True)
                    profile.dump_stats(args.profile / f"{label.split()[0]}.prof")
                else:
                    result = job.execute_in_process(instance=instance)
                seconds = time.perf_counter() - started
                assert result.success
                records = instance.get_records_for_run(result.run_id, limit=1_000_000).records
                kinds = [r.event_log_entry.dagster_event_type for r in records]
                observations = sum(1 for k in kinds if k == dg.DagsterEventType.ASSET_OBSERVATION)
                checks = sum(1 for k in kinds if k == dg.DagsterEventType.ASSET_CHECK_EVALUATION)
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"| {label} | {seconds:.1f} | {len(records):,} | {observations:,} | {checks:,} | {rss:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
