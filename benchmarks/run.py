"""The comparison: raw floor, ours (sync in-process, sync CLI, code location loads), Dagster alone
(bare specs; same content through a component), naive, DataHub.

On one throwaway PostgreSQL 18 (`EmbeddedPostgres`) and, per size, one generated catalog
(`generate_catalog.py`), every measurement runs as its own subprocess, started and reaped here:
wall time from outside (process start included), peak RSS and CPU of that process alone from
`os.wait4`, server CPU from the postmaster's processes (`run_preliminary.ServerCpu`).
Probes (`probes.py`) also report the time and statements of their work alone. The load rows go
through a generated `dg` project whose `defs.yaml` configures the component (`dg_project.py`),
up to the serialized repository snapshot a code server sends; `serve.py` starts a real code
server and `dg dev` on that project.

DataHub's postgres source (`acryl-datahub[postgres]`, pinned below) is installed into
`benchmarks/.venv-datahub` (git-ignored) on first use and run as `datahub ingest -c recipe.yml`
with a file sink and profiling off, on the same database.

Usage::

    bash benchmarks/run.sh [--sizes 1000,10000] [--with-50k] [--skip-datahub] [--skip-naive] [--skip-servers]

Prints a Markdown table and writes JSON with every number to `benchmarks/results/` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

from dg_project import DgProject, write_component_project, write_dg_project  # noqa: E402
from generate_catalog import generate_catalog  # noqa: E402
from probes import PASSWORD_ENV_VAR, RAW_STATEMENTS  # noqa: E402
from run_preliminary import ServerCpu, recreate_database  # noqa: E402
from serve import code_server, dg_dev, project_env  # noqa: E402

DATAHUB_REQUIREMENT = "acryl-datahub[postgres]==1.7.0.17"
DATAHUB_VENV = HERE / ".venv-datahub"
PYTHON = sys.executable
SYNC_CLI = Path(PYTHON).with_name("dagster-postgres-connection")


def ensure_datahub() -> Path:
    """The `datahub` executable of DataHub's own virtualenv, installed from PyPI when missing."""
    datahub = DATAHUB_VENV / "bin" / "datahub"
    if not datahub.exists():
        print(
            f"installing {DATAHUB_REQUIREMENT} into {DATAHUB_VENV} (a few minutes, once)",
            flush=True,
        )
        subprocess.run([sys.executable, "-m", "venv", str(DATAHUB_VENV)], check=True)
        subprocess.run(
            [str(DATAHUB_VENV / "bin" / "pip"), "install", "-q", DATAHUB_REQUIREMENT], check=True
        )
    return datahub


def run_process(cmd: list[str], cpu: ServerCpu, log: Path) -> dict[str, Any]:
    """Runs `cmd` to its end: wall, peak RSS and CPU of that process tree, server CPU, stdout."""
    env = {**os.environ, PASSWORD_ENV_VAR: "unused", "DATAHUB_TELEMETRY_ENABLED": "false"}
    server0 = cpu.total()
    with log.open("w") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
        try:
            assert proc.stdout is not None
            stdout = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: leave no probe running against a stopped server
            proc.kill()
            raise
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(
            # The log's folder is deleted when the run ends: quote its end here.
            f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n{stdout[-2000:]}\n"
            f"--- end of {log.name} ---\n{log.read_text(errors='replace')[-4000:]}"
        )
    server1 = cpu.total()
    return {
        "wall_seconds": round(wall, 3),
        "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "server_cpu_seconds": round(server1 - server0, 3)
        if server0 is not None and server1 is not None
        else None,
        "stdout": stdout,
    }


def probe(kind: str, url: sa.URL, cpu: ServerCpu, work: Path, *extra: str) -> dict[str, Any]:
    cmd = [
        PYTHON,
        str(HERE / "probes.py"),
        kind,
        "--url",
        url.render_as_string(hide_password=False),
        *extra,
    ]
    outer = run_process(cmd, cpu, work / f"{kind}.log")
    inner = json.loads(outer.pop("stdout").strip().splitlines()[-1])
    return {**outer, **inner}


def component_project(url: sa.URL, work: Path, snapshot: Path, module: str,
                      **attributes: Any) -> DgProject:  # fmt: skip
    """A `dg` project with the component named `bench` on `url`, the snapshot at its state path
    (so no load reads Postgres: the same file the other load rows read)."""
    project = write_dg_project(
        work / module, module=module, connection="bench", host=str(url.host), port=int(url.port or 5432),
        username=str(url.username), password_env_var=PASSWORD_ENV_VAR, databases=[str(url.database)],
        extra_attributes=attributes,
    )  # fmt: skip
    project.state_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(snapshot, project.state_path)
    return project


def server_row(measure: Any, project: DgProject, cpu: ServerCpu, work: Path, name: str,
               expect: int) -> dict[str, Any]:  # fmt: skip
    """`serve.code_server` or `serve.dg_dev`, plus the Postgres server's CPU meanwhile (0: no connection)."""
    env = project_env(project, {**os.environ, PASSWORD_ENV_VAR: "unused"}, work / f"dagster_home_{name}")
    server0 = cpu.total()
    result = measure(project, env, work / f"{name}.log", expect)
    server1 = cpu.total()
    result["server_cpu_seconds"] = (
        round(server1 - server0, 3) if server0 is not None and server1 is not None else None
    )
    return result


def sync_cli(url: sa.URL, cpu: ServerCpu, work: Path, snapshot: Path) -> dict[str, Any]:
    cmd = [
        str(SYNC_CLI), "sync", "--host", str(url.host), "--port", str(url.port), "--username", str(url.username),
        "--database", str(url.database), "--password-env-var", PASSWORD_ENV_VAR, "--name", "bench",
        "--output", str(snapshot),
    ]  # fmt: skip
    # No previous snapshot: a full sync (with one, `sync` may find nothing changed and stop early).
    snapshot.unlink(missing_ok=True)
    result = run_process(cmd, cpu, work / "sync.log")
    stdout = result.pop("stdout")
    match = re.search(r"(\d+) relations, (\d+) columns in ([\d.]+) s, (\d+) statements", stdout)
    if match is None:
        raise RuntimeError(f"unexpected sync output: {stdout}")
    result.update(relations=int(match[1]), read_seconds=float(match[3]), statements=int(match[4]))
    return result


def datahub_ingest(datahub: Path, url: sa.URL, cpu: ServerCpu, work: Path) -> dict[str, Any]:
    """`datahub ingest` of the same database: tables and views, profiling off, file sink."""
    sink = work / "datahub_mces.json"
    recipe = work / "datahub_recipe.yml"
    recipe.write_text(
        json.dumps(  # JSON is YAML
            {
                "source": {
                    "type": "postgres",
                    "config": {
                        "host_port": f"{url.host}:{url.port}",
                        "database": url.database,
                        "username": url.username,
                        "password": "unused",
                        "include_tables": True,
                        "include_views": True,
                        "profiling": {"enabled": False},
                    },
                },
                "sink": {"type": "file", "config": {"filename": str(sink)}},
            },
            indent=2,
        )
    )
    result = run_process([str(datahub), "ingest", "-c", str(recipe)], cpu, work / "datahub.log")
    result.pop("stdout")
    text = sink.read_text()
    # One SchemaMetadata aspect per relation DataHub ingested (partitions are datasets of their own).
    result["relations"] = text.count("pegasus2avro.schema.SchemaMetadata") + text.count(
        '"aspectName": "schemaMetadata"'
    )
    result["sink_bytes"] = len(text)
    return result


def measure_size(tables: int, admin: sa.URL, cpu: ServerCpu, args: argparse.Namespace,
                 datahub: Path | None) -> dict[str, Any]:  # fmt: skip
    db = recreate_database(admin, f"bench_{tables}")
    stats = generate_catalog(db, tables=tables, schemas=args.schemas, seed=args.seed)
    expect = (
        stats.tables
        + stats.partitioned_tables
        + stats.views
        + stats.materialized_views
        + stats.foreign_tables
    )
    print(f"\n== {tables:,} tables: {expect:,} relations, {stats.columns:,} columns "
          f"(generated in {stats.seconds:.1f} s)", flush=True)  # fmt: skip
    out: dict[str, Any] = {"tables": tables, "relations": expect, "catalog": asdict(stats)}
    with tempfile.TemporaryDirectory(prefix=f"dpc-bench-{tables}-") as tmp:
        work = Path(tmp)
        snapshot = work / "snapshot.json"

        def repeat(name: str, times: int, fn: Any) -> None:
            runs = []
            for _ in range(times):
                runs.append(fn())
                print(f"  {name}: {_brief(runs[-1])}", flush=True)
            out[name] = runs

        repeat("raw", args.repeat, lambda: probe("raw", db, cpu, work))
        repeat(
            "ours", args.repeat, lambda: probe("ours", db, cpu, work, "--snapshot", str(snapshot))
        )
        repeat("sync_cli", args.repeat, lambda: sync_cli(db, cpu, work, snapshot))
        # The component as a defs.yaml configures it, with and without `schema_checks`.
        projects = {
            "load": component_project(db, work, snapshot, "bench_project"),
            "load_no_checks": component_project(db, work, snapshot, "bench_project_no_checks", schema_checks=False),
        }  # fmt: skip
        for name, project in projects.items():
            repeat(name, args.repeat,
                   lambda project=project: probe("load", db, cpu, work, "--project", str(project.root), "--module",
                                                 project.module, "--expect-assets", str(expect)))  # fmt: skip
        repeat("factory", args.repeat,
               lambda: probe("factory", db, cpu, work, "--snapshot", str(snapshot), "--expect-assets", str(expect)))  # fmt: skip
        repeat("dagster_floor", args.repeat,
               lambda: probe("dagster-floor", db, cpu, work, "--snapshot", str(snapshot), "--expect-assets", str(expect)))  # fmt: skip
        # Dagster alone with the same content, through a component: the content file is written
        # by its own process from our component (not measured), then loaded like the other rows.
        from content_floor import COMPONENT_TYPE as CONTENT_FLOOR_TYPE  # imports dagster: only here

        content = work / "content_floor.serdes"
        no_checks = projects["load_no_checks"]
        out["content_prepare"] = probe("content-prepare", db, cpu, work, "--project", str(no_checks.root), "--module",
                                       no_checks.module, "--content", str(content), "--expect-assets", str(expect))  # fmt: skip
        print(f"  content file: {out['content_prepare']['content_bytes'] / 1e6:.1f} MB "
              f"({out['content_prepare']['seconds']:.1f} s to write, not measured)", flush=True)  # fmt: skip
        floor_project = write_component_project(
            work / "bench_content_floor", module="bench_content_floor", connection="bench",
            component_type=CONTENT_FLOOR_TYPE, attributes={"content_path": str(content)},
        )  # fmt: skip
        same_bytes = round(_median(out["load_no_checks"], "serialized_bytes"))  # the floor fails beyond 3 %
        repeat("content_floor", args.repeat,
               lambda: probe("content-floor", db, cpu, work, "--project", str(floor_project.root), "--module",
                             floor_project.module, "--expect-assets", str(expect), "--expect-bytes", str(same_bytes)))  # fmt: skip
        if not args.skip_servers:
            repeat("code_server", 1, lambda: server_row(code_server, projects["load"], cpu, work, "code_server", expect))
            repeat("dg_dev", 1, lambda: server_row(dg_dev, projects["load"], cpu, work, "dg_dev", expect))
        if not args.skip_naive:
            repeat("naive", 1, lambda: probe("naive", db, cpu, work))
        if datahub is not None:
            repeat("datahub", 1, lambda: datahub_ingest(datahub, db, cpu, work))
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _brief(m: dict[str, Any]) -> str:
    inner = f"work {m['seconds']:.2f} s, " if "seconds" in m else ""
    return (
        f"{inner}wall {m['wall_seconds']:.2f} s, cpu {m['process_cpu_seconds']:.2f} + server "
        f"{m['server_cpu_seconds']} s, {m.get('statements', '-')} statements, peak RSS {m['peak_rss_mb']:.0f} MB"
    )


def _median(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def _floor_ratio(size: dict[str, Any], row: str, floor: str = "dagster_floor") -> str:
    return f"{_median(size[row], 'seconds') / _median(size[floor], 'seconds'):.1f}x"


def markdown(result: dict[str, Any]) -> str:
    """One table: medians of the repeated rows, one run of naive and DataHub."""
    lines = [
        "| catalog | row | time (s) | wall, process start incl. (s) | CPU: work + server (s) "
        "| statements | peak RSS (MB) | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for size in result["sizes"]:
        label = f"{size['tables']:,} tables ({size['relations']:,} assets)"
        raw_s, ours_s = _median(size["raw"], "seconds"), _median(size["ours"], "seconds")
        sync_wall = _median(size["sync_cli"], "wall_seconds")
        ours_cpu = _median(size["ours"], "cpu_seconds") + _median(
            size["ours"], "server_cpu_seconds"
        )
        raw_cpu = _median(size["raw"], "cpu_seconds") + _median(size["raw"], "server_cpu_seconds")
        rows: list[tuple[str, str, Any, str]] = [
            ("raw: our catalog statements", "raw", "seconds", ""),
            ("ours: read_catalog + write_snapshot", "ours", "seconds",
             f"ours/raw {ours_s / raw_s:.2f}x time, {ours_cpu / raw_cpu:.2f}x CPU"),
            ("ours: `sync` CLI", "sync_cli", "wall_seconds", ""),
            ("ours: load through the component (defs.yaml), to the served snapshot", "load", "seconds",
             f"component load/Dagster alone {_floor_ratio(size, 'load')}, "
             f"/same content {_floor_ratio(size, 'load', 'content_floor')}"),
            ("ours: same, `schema_checks: false`", "load_no_checks", "seconds",
             f"component load/Dagster alone {_floor_ratio(size, 'load_no_checks')}, "
             f"/same content {_floor_ratio(size, 'load_no_checks', 'content_floor')}"),
            ("ours: factory (`build_postgres_connection_defs`), same end point", "factory", "seconds",
             f"factory/Dagster alone {_floor_ratio(size, 'factory')}"),
            ("Dagster alone: same keys and deps, bare specs, same end point", "dagster_floor", "seconds",
             "floor of any load"),
            ("Dagster alone, same content, through a component (no checks, no jobs)", "content_floor", "seconds",
             f"of which `deserialize_value` {_median(size['content_floor'], 'content_deserialize_seconds'):.2f} s, "
             f"entry points {_median(size['content_floor'], 'entry_points_seconds'):.2f} s "
             f"(ours: {_median(size['load_no_checks'], 'entry_points_seconds'):.2f} s); "
             f"snapshot {_median(size['content_floor'], 'serialized_bytes') / 1e6:.1f} MB vs "
             f"{_median(size['load_no_checks'], 'serialized_bytes') / 1e6:.1f} MB without checks"),
        ]  # fmt: skip
        if size.get("code_server"):
            rows.append(("ours: `dagster api grpc` started until it served the snapshot", "code_server",
                         "seconds", f"answers after {size['code_server'][0]['answer_seconds']:.2f} s"))  # fmt: skip
        if size.get("dg_dev"):
            rows.append(("ours: `dg dev` started until GraphQL lists every asset", "dg_dev", "seconds",
                         f"all processes' peak RSS {size['dg_dev'][0]['group_peak_rss_mb']:,.0f} MB; "
                         f"code server's in the RSS column"))  # fmt: skip
        if size.get("naive"):
            naive = size["naive"][0]["seconds"]
            rows.append(
                (
                    "naive: Inspector per table",
                    "naive",
                    "seconds",
                    f"naive/ours {naive / ours_s:.0f}x",
                )
            )
        if size.get("datahub"):
            peer = size["datahub"][0]["wall_seconds"]
            rows.append(
                (
                    "DataHub `datahub ingest`",
                    "datahub",
                    "wall_seconds",
                    f"DataHub/sync CLI {peer / sync_wall:.0f}x",
                )
            )
        for title, key, time_key, ratio in rows:
            runs = size[key]
            # The work's own CPU where a probe reports it, else the whole process's.
            client = "cpu_seconds" if "cpu_seconds" in runs[0] else "process_cpu_seconds"
            cpu = _median(runs, client) + _median(runs, "server_cpu_seconds")
            statements = _median(runs, "statements")
            lines.append(
                f"| {label} | {title} | {_median(runs, time_key):.2f} | {_median(runs, 'wall_seconds'):.2f} "
                f"| {cpu:.1f} | {'n/a' if statements != statements else f'{statements:,.0f}'} "
                f"| {_median(runs, 'peak_rss_mb'):.0f} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000", help="comma-separated table counts")
    p.add_argument("--with-50k", action="store_true", help="add a 50,000-table catalog")
    p.add_argument("--schemas", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--repeat", type=int, default=3, help="runs of raw/ours/sync/loads/floors (medians shown)"
    )
    p.add_argument("--skip-servers", action="store_true", help="no code server and `dg dev` rows")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-datahub", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([50_000] if args.with_50k else [])
    # What the README tells the operators of catalogs past ~40k tables (50k: a 394 MB snapshot):
    # gRPC's 100 MB default would stop the code server and `dg dev` rows, and the webserver's
    # 180 s wait for the snapshot did once at 50k (two concurrent serializations on a slow host).
    # Every process started from here inherits them; below the defaults they change nothing.
    grpc_limits = {
        variable: os.environ.setdefault(variable, value)
        for variable, value in (
            ("DAGSTER_GRPC_MAX_SEND_BYTES", str(10**9)),
            ("DAGSTER_GRPC_MAX_RX_BYTES", str(10**9)),
            ("DAGSTER_REPOSITORY_GRPC_TIMEOUT_SECONDS", "1800"),
        )
    }
    datahub = None if args.skip_datahub else ensure_datahub()

    from dagster_postgres_connection.testing import EmbeddedPostgres

    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in os.getloadavg()]},
        "raw_statements": list(RAW_STATEMENTS),
        "grpc_limits": grpc_limits,
        "sizes": [],
    }  # fmt: skip
    with EmbeddedPostgres(version=18) as pg:
        admin = pg.url("postgres")
        cpu = ServerCpu(admin)
        try:
            for tables in sizes:
                result["sizes"].append(measure_size(tables, admin, cpu, args, datahub))
        except BaseException:
            # A failing row must not lose the sizes measured before it (a 10k size is ~15 min).
            if result["sizes"]:
                print(f"\nsizes measured before the failure: {write_result(result, args.out, 'run-partial')}")
            raise
    loadavg_after = result["sizes"][-1]["loadavg_after"] if result["sizes"] else "-"
    report(result, markdown(result), args.out, "run", loadavg_after)
    return 0


def report(result: dict[str, Any], table: str, out: Path, prefix: str, loadavg_after: object) -> Path:
    """Writes `result` as `<out>/<prefix>-<time>.json` and prints `table` and where it went."""
    path = write_result(result, out, prefix)
    print()
    print(table)
    print(f"\nload average before/after: {result['machine']['loadavg_before']} / {loadavg_after}; wrote {path}")
    return path


def write_result(result: dict[str, Any], out: Path, prefix: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{prefix}-{int(time.time())}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
