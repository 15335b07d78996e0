"""Each catalog statement's server time at two catalog sizes (issue 13, item 6), and the `sync`
CLI's peak RSS at the larger one.

The statements are not listed here: `read_catalog` runs once per size with a
`before_cursor_execute` listener, and every statement it sends (SQL and parameters exactly as the
driver got them) is what gets measured, so the list cannot drift from the code. Each is then run
as `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` in the reader's own session and transaction
(`create_catalog_engine` + `catalog_transaction`: read-only, REPEATABLE READ, its `work_mem`,
a new connection per round as each sync opens one), all statements in the reader's order within
one transaction per round. `--rounds` rounds alternate between the two sizes (the machine is
shared: both see the same load), each after a warm-up round of its own size (its catalog in the
buffers as far as they hold it, as for repeated syncs). Timing rounds use `TIMING OFF` (no clock
call per row and node, so nested loops are not overcharged); one more round with timing keeps
each plan in the JSON.

Per statement and size: server time (`Execution Time`, minimum and median over the rounds),
server CPU (every process of the server: the backend, PG 18's I/O workers, parallel workers;
steadier than wall time on a shared machine), rows, shared buffers hit/read, temp blocks written
(a spill), and from the small to the large size the ratios beside the ratio of rows of the
largest catalog the plan reads. "Linear" means the CPU ratio is at most that catalog ratio.

Usage::

    .venv/bin/python benchmarks/statement_split.py                    # throwaway PG 18, 10k and 50k (~10 min)
    .venv/bin/python benchmarks/statement_split.py --port 5432        # databases bench_10000 and bench_50000 already there
    .venv/bin/python benchmarks/statement_split.py --shared-buffers 2GB   # throwaway server with other buffers

Prints a Markdown table and writes JSON to `benchmarks/results/split-<time>.json` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import TextClause, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

from probes import PASSWORD_ENV_VAR  # noqa: E402

_EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, TIMING {timing}, FORMAT JSON) "
_BLOCK_MB = 8192 / 1024 / 1024
# The catalogs whose row counts are recorded (and compared with the plans' scans).
_COUNTED_CATALOGS = """
    SELECT c.relname FROM pg_class c
    WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'
"""


def _settings(url: sa.URL) -> Any:
    from dagster_postgres_connection.config import PostgresConnectionSettings, PostgresPassword

    return PostgresConnectionSettings(
        name="bench", host=str(url.host), port=int(url.port or 5432), username=str(url.username),
        password=PostgresPassword(env_var=PASSWORD_ENV_VAR), databases=[str(url.database)],
    )  # fmt: skip


def _statement_names() -> dict[str, str]:
    """Each named statement of the reader, by its text as psycopg2 receives it."""
    from dagster_postgres_connection.access import queries as access_queries
    from dagster_postgres_connection.catalog import fingerprint, queries

    dialect = postgresql.psycopg2.dialect()  # type: ignore[attr-defined]
    names = {}
    for module in (queries, fingerprint, access_queries):
        for name, clause in vars(module).items():
            if isinstance(clause, TextClause):
                names[_normalized(str(clause.compile(dialect=dialect)))] = name
    return names


def _normalized(sql: str) -> str:
    return " ".join(sql.split())


@contextmanager
def _captured() -> Iterator[list[tuple[str, Any]]]:
    """Every (statement, parameters) any engine of this process sends while the block runs."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", capture)


def capture_statements(url: sa.URL) -> list[dict[str, Any]]:
    """The statements one `read_catalog` sends to `url`'s database, named where queries.py names them."""
    from dagster_postgres_connection.catalog.reader import read_catalog

    names = _statement_names()
    with _captured() as sent:
        snapshot = read_catalog(_settings(url))
    relations = len(snapshot.relations())
    del snapshot
    statements = []
    for number, (sql, parameters) in enumerate(sent, 1):
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue  # SAVEPOINT: no plan
        name = names.get(_normalized(sql), f"statement_{number}")
        statements.append({"name": name, "sql": sql, "parameters": parameters})
    print(f"  read_catalog: {relations:,} relations, {len(sent)} statements sent, "
          f"{len(statements)} with a plan: {', '.join(s['name'] for s in statements)}", flush=True)  # fmt: skip
    return statements


def _scanned_catalogs(plan: dict[str, Any]) -> set[str]:
    found = {plan["Relation Name"]} if "Relation Name" in plan else set()
    for child in plan.get("Plans", ()):
        found |= _scanned_catalogs(child)
    return found


class ServerProcessesCpu:
    """CPU time of every process of a local server, in nanoseconds: each live child's
    `/proc/<pid>/schedstat` (the backend, PG 18's I/O workers that read pages for it, parallel
    workers) plus what the postmaster reaped (`cutime`+`cstime`, clock ticks). On a shared
    machine, a statement's server CPU moves far less than its wall time. `total()` is None when
    the server is not local (or /proc is not Linux's)."""

    def __init__(self, backend_pid: int) -> None:
        try:
            self.postmaster = int(Path(f"/proc/{backend_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            self.ticks = os.sysconf("SC_CLK_TCK")
            self.total()
        except (OSError, ValueError, IndexError):
            self.postmaster = None

    def total(self) -> int | None:
        if self.postmaster is None:
            return None
        fields = Path(f"/proc/{self.postmaster}/stat").read_text().rsplit(")", 1)[1].split()
        reaped = (int(fields[13]) + int(fields[14])) * 1_000_000_000 // self.ticks  # cutime, cstime
        children = Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children").read_text().split()
        live = 0
        for pid in children:
            # one that exited meanwhile is in `reaped` (or, rarely, lost)
            with contextlib.suppress(OSError, ValueError):
                live += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        return reaped + live


def explain_round(url: sa.URL, statements: list[dict[str, Any]], *, timing: bool) -> dict[str, Any]:
    """Every statement once, in the reader's order, in the reader's session and transaction (a
    new connection, as each sync opens one): name -> its EXPLAIN and the server CPU it took."""
    from dagster_postgres_connection.catalog.connection import (
        catalog_transaction,
        create_catalog_engine,
    )

    settings = _settings(url)
    engine, _ = create_catalog_engine(settings, str(url.database))
    time.sleep(0.3)  # the previous round's backend is exiting: its last CPU is not ours
    out = {}
    try:
        with catalog_transaction(engine, settings, str(url.database)) as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("SELECT pg_backend_pid()")
            cpu = ServerProcessesCpu(cursor.fetchone()[0])
            for statement in statements:
                cpu_before = cpu.total()
                cursor.execute(_EXPLAIN.format(timing="ON" if timing else "OFF") + statement["sql"],
                               statement["parameters"])  # fmt: skip
                (result,) = cursor.fetchone()
                cpu_after = cpu.total()
                top = result[0]
                node = top["Plan"]
                out[statement["name"]] = {
                    "execution_ms": top["Execution Time"],
                    # (never below 0: a process reaped meanwhile is counted in whole clock ticks)
                    "server_cpu_ms": None if cpu_before is None or cpu_after is None
                    else max(0.0, round((cpu_after - cpu_before) / 1e6, 1)),
                    "planning_ms": top["Planning Time"],
                    "rows": node["Actual Rows"],
                    "shared_hit": node.get("Shared Hit Blocks", 0),
                    "shared_read": node.get("Shared Read Blocks", 0),
                    "temp_read": node.get("Temp Read Blocks", 0),
                    "temp_written": node.get("Temp Written Blocks", 0),
                    **({"plan": top} if timing else {}),
                }  # fmt: skip
            cursor.close()
    finally:
        engine.dispose()
    return out


def summarize(measured: list[dict[str, Any]], plan: dict[str, Any]) -> dict[str, Any]:
    """One statement's rounds at one size: minimum and median, buffers of the fastest round."""
    times = [m["execution_ms"] for m in measured]
    fastest = min(measured, key=lambda m: m["execution_ms"])
    return {
        "server_ms_min": round(min(times), 1),
        "server_ms_median": round(statistics.median(times), 1),
        "server_ms_max": round(max(times), 1),
        "server_cpu_ms_min": _min_or_none([m["server_cpu_ms"] for m in measured]),
        "server_cpu_ms_median": _median_or_none([m["server_cpu_ms"] for m in measured]),
        "rows": fastest["rows"],
        "shared_hit": fastest["shared_hit"],
        "shared_read": fastest["shared_read"],
        "temp_read": max(m["temp_read"] for m in measured),
        "temp_written": max(m["temp_written"] for m in measured),
        "scans": sorted(_scanned_catalogs(plan["Plan"])),
        "rounds": measured,
        "plan": plan,
    }


def _min_or_none(values: list[Any]) -> float | None:
    return None if None in values else min(values)


def _median_or_none(values: list[Any]) -> float | None:
    return None if None in values else statistics.median(values)


def catalog_facts(url: sa.URL) -> dict[str, Any]:
    """Row counts of every pg_catalog table, the system catalogs' size, the server's buffers."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        names = conn.exec_driver_sql(_COUNTED_CATALOGS).scalars().all()
        counts = {
            name: conn.exec_driver_sql(f"SELECT count(*) FROM pg_catalog.{name}").scalar_one()
            for name in names
        }
        size = conn.exec_driver_sql(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'"
        ).scalar_one()
        shared_buffers = conn.exec_driver_sql("SHOW shared_buffers").scalar_one()
        version = conn.exec_driver_sql("SHOW server_version").scalar_one()
    engine.dispose()
    return {
        "catalog_rows": counts,
        "catalog_bytes": int(size),
        "shared_buffers": shared_buffers,
        "server_version": version,
    }


def prepare_size(tables: int, admin: sa.URL, args: argparse.Namespace, generate: bool) -> dict[str, Any]:
    """The catalog of one size (generated on a throwaway server), its facts and its statements."""
    url = admin.set(database=f"bench_{tables}")
    if generate:
        from generate_catalog import generate_catalog
        from run_preliminary import recreate_database

        recreate_database(admin, str(url.database))
        stats = generate_catalog(url, tables=tables, schemas=args.schemas, seed=args.seed)
        print(f"  generated in {stats.seconds:.1f} s", flush=True)
    facts = catalog_facts(url)
    rows = facts["catalog_rows"]
    print(f"\n== {tables:,} tables: pg_class {rows['pg_class']:,}, pg_attribute {rows['pg_attribute']:,} rows, "
          f"system catalogs {facts['catalog_bytes'] / 2**20:,.0f} MB, shared_buffers {facts['shared_buffers']}",
          flush=True)  # fmt: skip
    return {"tables": tables, "url": url, **facts, "captured": capture_statements(url)}


def measure(sizes: list[dict[str, Any]], rounds: int) -> None:
    """`rounds` rounds alternating between the sizes, so that both see the same machine load (it
    is shared); before each measured round a warm-up round of the same size, so that each is
    measured with its own catalog in the buffers as far as they hold it, as repeated syncs of one
    database would be. Then one round with per-node timing per size, for the plans."""
    started = time.perf_counter()
    measured: list[dict[str, list[dict[str, Any]]]] = [defaultdict(list) for _ in sizes]
    for number in range(rounds):
        for size, runs in zip(sizes, measured, strict=True):
            explain_round(size["url"], size["captured"], timing=False)  # warm-up
            for name, run in explain_round(size["url"], size["captured"], timing=False).items():
                runs[name].append(run)
        print(f"  round {number + 1}/{rounds} ({time.perf_counter() - started:.0f} s)", flush=True)
    for size, runs in zip(sizes, measured, strict=True):
        plans = explain_round(size["url"], size["captured"], timing=True)
        size["statements"] = {name: summarize(runs[name], plans[name]["plan"]) for name in runs}


def sync_rss(admin: sa.URL, tables: int, runs: int) -> list[dict[str, Any]]:
    """The `sync` CLI on `bench_<tables>`, measured as run.py measures it (`os.wait4`)."""
    from run import sync_cli
    from run_preliminary import ServerCpu

    url = admin.set(database=f"bench_{tables}")
    cpu = ServerCpu(admin)
    results = []
    with tempfile.TemporaryDirectory(prefix="dpc-split-") as tmp:
        for _ in range(runs):
            result = sync_cli(url, cpu, Path(tmp), Path(tmp) / "snapshot.json")
            print(f"  sync CLI at {tables:,} tables: wall {result['wall_seconds']:.1f} s, "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB, {result['statements']} statements", flush=True)  # fmt: skip
            results.append(result)
    return results


def _ratio(a: float, b: float) -> float | None:
    return round(b / a, 2) if a else None


def compare(small: dict[str, Any], large: dict[str, Any]) -> list[dict[str, Any]]:
    """Per statement: server time and CPU ratios, rows ratio, and the ratio of the largest catalog
    its plan scans. `linear` judges the CPU ratio where there is one (steadier on a shared machine)."""
    rows_small, rows_large = small["catalog_rows"], large["catalog_rows"]
    out = []
    for name, s in small["statements"].items():
        big = large["statements"].get(name)
        if big is None:
            continue
        scans = sorted(set(s["scans"]) | set(big["scans"]))
        catalog_ratios = {c: _ratio(rows_small[c], rows_large[c]) for c in scans if c in rows_small}
        reference = max((r for r in catalog_ratios.values() if r), default=None)
        time_ratio = _ratio(s["server_ms_min"], big["server_ms_min"])
        cpu_ratio = (
            _ratio(s["server_cpu_ms_min"], big["server_cpu_ms_min"])
            if s["server_cpu_ms_min"] is not None and big["server_cpu_ms_min"] is not None
            else None
        )
        judged = cpu_ratio if cpu_ratio is not None else time_ratio
        # Below 20 ms at the larger size a ratio says little (a clock tick is 10 ms): not judged.
        small_enough = big["server_ms_min"] < 20
        out.append({
            "statement": name,
            "time_ratio": time_ratio,
            "cpu_ratio": cpu_ratio,
            "rows_ratio": _ratio(s["rows"], big["rows"]),
            "catalog_ratios": catalog_ratios,
            "largest_catalog_ratio": reference,
            "linear": None if small_enough or judged is None or reference is None else judged <= reference,
            "spill_mb": round((s["temp_written"] + big["temp_written"]) * _BLOCK_MB, 1),
        })  # fmt: skip
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def markdown(result: dict[str, Any]) -> str:
    small, large = result["sizes"][0], result["sizes"][-1]
    a, b = f"{small['tables'] // 1000}k", f"{large['tables'] // 1000}k"
    lines = [
        f"| statement | rows {a} → {b} | server ms {a} | server ms {b} | ratio | server CPU ms {a} | server CPU ms {b} "
        f"| ratio | largest catalog read: ratio | shared hit / read {a} | shared hit / read {b} | temp written (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in result["comparison"]:
        s, g = small["statements"][row["statement"]], large["statements"][row["statement"]]
        catalog = max(row["catalog_ratios"].items(), key=lambda kv: kv[1] or 0, default=("-", None))
        flag = {True: "", None: " (n/j)", False: " **>**"}[row["linear"]]
        lines.append(
            f"| {row['statement']} | {s['rows']:,.0f} → {g['rows']:,.0f} | {_ms(s['server_ms_min'])} | {_ms(g['server_ms_min'])} "
            f"| {row['time_ratio'] or '-'}x | {_ms(s['server_cpu_ms_min'])} | {_ms(g['server_cpu_ms_min'])} "
            f"| {row['cpu_ratio'] or '-'}x{flag} | {catalog[0]}: {catalog[1]}x | {s['shared_hit']:,} / {s['shared_read']:,} "
            f"| {g['shared_hit']:,} / {g['shared_read']:,} | {row['spill_mb']} |"
        )

    def total(size: dict[str, Any], key: str) -> float:
        return sum(v[key] or 0 for v in size["statements"].values())

    ts, tl = total(small, "server_ms_min"), total(large, "server_ms_min")
    cs, cl = total(small, "server_cpu_ms_min"), total(large, "server_cpu_ms_min")
    lines.append(f"| **sum** | | {ts:,.0f} | {tl:,.0f} | {_ratio(ts, tl)}x | {cs:,.0f} | {cl:,.0f} | {_ratio(cs, cl)}x | | | | |")
    lines.append("")
    lines.append("Minimum of the rounds; (n/j): not judged, under 20 ms at the larger size; **>**: above the catalog ratio.")
    for key in ("pg_class", "pg_attribute", "pg_depend", "pg_constraint", "pg_index"):
        lines.append(f"{key}: {small['catalog_rows'][key]:,} → {large['catalog_rows'][key]:,} rows "
                     f"({_ratio(small['catalog_rows'][key], large['catalog_rows'][key])}x)")  # fmt: skip
    lines.append(f"system catalogs: {small['catalog_bytes'] / 2**20:,.0f} → {large['catalog_bytes'] / 2**20:,.0f} MB; "
                 f"shared_buffers {large['shared_buffers']}")  # fmt: skip
    for run in result.get("sync_cli", []):
        lines.append(f"`sync` CLI at {large['tables']:,} tables: {run['wall_seconds']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--port", type=int, help="use the server on this port (its bench_<n> databases) instead of a throwaway one")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--user", default="postgres")
    p.add_argument("--sizes", default="10000,50000", help="two comma-separated table counts")
    p.add_argument("--rounds", type=int, default=5, help="EXPLAIN ANALYZE rounds per size (minimum and median shown)")
    p.add_argument("--schemas", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--shared-buffers", help="throwaway server only: its shared_buffers (e.g. 2GB)")
    p.add_argument("--sync-runs", type=int, default=1, help="`sync` CLI runs at the larger size (0: none)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if len(sizes) != 2:
        p.error("--sizes takes two table counts")
    if args.port is not None and args.shared_buffers:
        p.error("--shared-buffers needs a throwaway server: set it on your own server instead")
    os.environ.setdefault(PASSWORD_ENV_VAR, "unused")  # both servers trust local logins

    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in os.getloadavg()]},
        "rounds": args.rounds,
        "sizes": [],
    }  # fmt: skip

    def run(admin: sa.URL, generate: bool) -> None:
        prepared = [prepare_size(tables, admin, args, generate) for tables in sizes]
        measure(prepared, args.rounds)
        for size in prepared:
            size.pop("url")
            result["sizes"].append(size)
        if args.sync_runs:
            result["sync_cli"] = sync_rss(admin, sizes[-1], args.sync_runs)

    if args.port is not None:
        run(sa.URL.create("postgresql+psycopg2", username=args.user, host=args.host, port=args.port,
                          database="postgres"), generate=False)  # fmt: skip
    else:
        from dagster_postgres_connection.testing import EmbeddedPostgres

        with EmbeddedPostgres(version=18) as pg:
            if args.shared_buffers:
                pg.execute(f"ALTER SYSTEM SET shared_buffers = '{args.shared_buffers}'")
                # Read only when the server starts: restart it (EmbeddedPostgres has no public restart).
                pg._stop_postmaster()
                pg._start_postmaster()
            run(pg.url("postgres"), generate=True)
    result["comparison"] = compare(result["sizes"][0], result["sizes"][-1])
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    from run import report

    report(result, markdown(result), args.out, "split", result["machine"]["loadavg_after"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
