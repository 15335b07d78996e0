"""Preliminary numbers: generate 1k and 10k catalogs, then time the naive and the raw read.

Starts a throwaway ``EmbeddedPostgres`` (fsync off, data under /tmp, stopped at the end)
unless ``--url`` names a server to use instead (a superuser URL; the ``bench_<n>``
databases are dropped and re-created there).  Prints a Markdown table and writes JSON to
``benchmarks/results/`` (git-ignored).

Usage::

    python benchmarks/run_preliminary.py [--sizes 1000 10000] [--pg-version 18] [--url ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

from generate_catalog import generate_catalog  # noqa: E402
from naive_inspector import naive_read, raw_catalog_read  # noqa: E402

SETTINGS = (
    "server_version", "fsync", "full_page_writes", "synchronous_commit", "shared_buffers",
    "max_connections", "max_locks_per_transaction", "max_wal_size",
)  # fmt: skip


@contextmanager
def server(url: str | None, version: int) -> Iterator[sa.URL]:
    """Yield a superuser URL (database ``postgres``) of the server to benchmark on."""
    if url:
        yield sa.make_url(url).set(drivername="postgresql+psycopg2")
        return
    from dagster_postgres_connection.testing.embedded_postgres import EmbeddedPostgres

    with EmbeddedPostgres(version=version) as pg:
        yield pg.url("postgres")


class ServerCpu:
    """CPU seconds used by every process of a local server (postmaster, backends, autovacuum).

    The machine is shared, so wall times swing with other load; CPU time does much less.
    Exited backends are counted through the postmaster's ``children_*`` times (reaped
    children), so the total only grows and before/after differences are exact.
    Returns None when the server is not local or psutil is missing.
    """

    def __init__(self, admin: sa.URL) -> None:
        self.proc: Any = None
        try:
            import psutil

            engine = sa.create_engine(admin, poolclass=sa.pool.NullPool)
            with engine.connect() as conn:
                data_dir = conn.exec_driver_sql("SHOW data_directory").scalar_one()
            engine.dispose()
            pid = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
            self.proc = psutil.Process(pid)
        except Exception:  # remote server, no access to its data dir, no psutil
            self.proc = None

    def total(self) -> float | None:
        if self.proc is None:
            return None
        import psutil

        # A backend whose client just disconnected may still be exiting or not yet reaped;
        # its CPU would be in neither sum, so wait for it (briefly).
        for _ in range(100):
            kids = self.proc.children(recursive=True)
            if not any(_status(k) in (psutil.STATUS_ZOMBIE, None) for k in kids):
                break
            time.sleep(0.02)
        time.sleep(0.05)
        t = self.proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self.proc.children(recursive=True):
            with suppress(Exception):  # a backend may exit meanwhile; then it is reaped
                c = child.cpu_times()
                total += c.user + c.system
        return total


def _status(proc: Any) -> str | None:
    try:
        return str(proc.status())
    except Exception:
        return None


@contextmanager
def measure(cpu: ServerCpu, into: dict[str, Any]) -> Iterator[None]:
    """Record wall, client CPU and server CPU seconds of the block into ``into``."""
    wall, client, server0 = time.perf_counter(), time.process_time(), cpu.total()
    yield
    into["wall_seconds"] = round(time.perf_counter() - wall, 3)
    into["client_cpu_seconds"] = round(time.process_time() - client, 3)
    server1 = cpu.total()
    into["server_cpu_seconds"] = (
        round(server1 - server0, 3) if server0 is not None and server1 is not None else None
    )


def recreate_database(admin: sa.URL, name: str) -> sa.URL:
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return admin.set(database=name)


def server_settings(url: sa.URL) -> dict[str, str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)",
            (list(SETTINGS),),
        ).all()
    engine.dispose()
    return dict(sorted((str(k), str(v)) for k, v in rows))


def run(sizes: list[int], url: str | None, version: int, raw_repeat: int, naive_repeat: int,
        schemas: int, seed: int) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "runs": [],
    }
    with server(url, version) as admin:
        out["server"] = server_settings(admin)
        cpu = ServerCpu(admin)
        print(f"server: {out['server']}", flush=True)
        for n in sizes:
            db = recreate_database(admin, f"bench_{n}")
            gen: dict[str, Any] = {}
            with measure(cpu, gen):
                stats = generate_catalog(db, tables=n, schemas=schemas, seed=seed)
            gen.update(asdict(stats))
            print(f"generated {n} tables: {_fmt(gen)} {stats.phase_seconds}", flush=True)
            engine = sa.create_engine(db)
            raws: list[dict[str, Any]] = []
            naives: list[dict[str, Any]] = []
            try:
                for _ in range(raw_repeat):
                    m: dict[str, Any] = {}
                    with measure(cpu, m):
                        r = raw_catalog_read(engine)
                    raws.append({**asdict(r), **m})
                    print(f"  raw: {_fmt(m)}", flush=True)
                for _ in range(naive_repeat):
                    m = {}
                    with measure(cpu, m):
                        r = naive_read(engine)
                    naives.append({**asdict(r), **m})
                    print(f"  naive: {r.statements} statements, {_fmt(m)}", flush=True)
            finally:
                engine.dispose()
            out["runs"].append({
                "tables": n,
                # Other work on the machine skews wall times; keep the load next to them.
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                "generation": gen,
                "raw": raws,
                "naive": naives,
            })  # fmt: skip
    return out


def _fmt(m: dict[str, Any]) -> str:
    return (
        f"wall {m['wall_seconds']:.2f}s, client cpu {m['client_cpu_seconds']:.2f}s, "
        f"server cpu {m['server_cpu_seconds']}s"
    )


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def markdown(result: dict[str, Any]) -> str:
    """Medians; 'cpu' is client + server CPU seconds, steadier than wall on a busy machine."""

    def med(runs: list[dict[str, Any]], key: str) -> float:
        vals = [x[key] for x in runs if x.get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    def cpu(runs: list[dict[str, Any]]) -> float:
        return med(runs, "client_cpu_seconds") + med(runs, "server_cpu_seconds")

    lines = [
        "| tables | relations | columns | generate wall / server cpu (s) | naive statements "
        "| naive wall / cpu (s) | raw statements | raw wall / cpu (s) | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        g, raw, naive = r["generation"], r["raw"], r["naive"]
        lines.append(
            f"| {r['tables']:,} | {raw[0]['counts']['relations']:,} | {g['columns']:,} "
            f"| {g['wall_seconds']:.1f} / {g['server_cpu_seconds'] or float('nan'):.1f} "
            f"| {naive[0]['statements'] if naive else 0:,} "
            f"| {med(naive, 'wall_seconds'):.1f} / {cpu(naive):.1f} "
            f"| {raw[0]['statements']} | {med(raw, 'wall_seconds'):.2f} / {cpu(raw):.2f} "
            f"| {r['loadavg_after'][0]:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    p.add_argument("--schemas", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pg-version", type=int, default=18)
    p.add_argument("--url", help="superuser URL of an existing server instead of a throwaway one")
    p.add_argument("--raw-repeat", type=int, default=3)
    p.add_argument("--naive-repeat", type=int, default=1)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    result = run(args.sizes, args.url, args.pg_version, args.raw_repeat, args.naive_repeat,
                 args.schemas, args.seed)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    path = (
        args.out
        / f"preliminary-pg{result['server']['server_version'].split('.')[0]}-{int(time.time())}.json"
    )
    path.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
