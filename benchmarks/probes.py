"""One measurement per process: `python benchmarks/probes.py KIND --url URL ...` prints one JSON line.

`run.py` starts each probe as its own subprocess, so its peak RSS (taken by the parent with
`os.wait4`) belongs to that measurement alone, and every probe pays the same interpreter start.
Inside, each probe times only its own work (`seconds`, `cpu_seconds`) and counts the statements
sent by every SQLAlchemy engine in the process (a class-level `before_cursor_execute` listener,
the same method as `dagster_postgres_connection_tests/test_statement_count.py`).

Kinds:
- `raw`: the floor: the statements of `dagster_postgres_connection/catalog/queries.py` that a
  sync sends (`RAW_STATEMENTS`), run directly in one read-only REPEATABLE READ transaction,
  every row fetched, nothing built from the rows.
- `ours`: `read_catalog` + `write_snapshot`, in-process, exactly what `sync` and the component do.
- `load`: the code location load through the component, as `dg dev` and every code server do
  it: a generated `dg` project (`dg_project.py`) whose `defs.yaml` configures
  `PostgresConnectionComponent`, its snapshot already at the component's state path;
  `dg.load_from_defs_folder`, then what a code server does before and while it serves (`serve`
  below). The asset count is checked against `--expect-assets`.
- `factory`: the same end point from `build_postgres_connection_defs(snapshot_path=...)`.
- `dagster-floor`: Dagster alone, the same keys and deps as bare `AssetSpec`s, same end point.
- `content-prepare` (not a measurement): loads our component from a project (the
  `schema_checks: false` one) and writes every spec's content (key, deps, description, group,
  kinds, tags, owners, metadata; not the component machinery's code reference and origin) with
  Dagster's `serialize_value`, for `content-floor` (`content_floor.py`).
- `content-floor`: Dagster alone with the same content, through a component: a project whose
  `defs.yaml` declares `content_floor.ContentFloorComponent`, which `deserialize_value`s the
  content file and returns the specs in a plain `dg.Definitions` (no checks, no jobs: compare
  with our `schema_checks: false` load); same steps as `load`. It fails unless its served
  snapshot is within 3 % of `--expect-bytes`. (Dagster's `load_from_defs_folder` still imports
  every installed component library, ours included, through their entry points: both pay it.)
- `naive`: `naive_inspector.naive_read`, the per-table Inspector loop.

"Serve" is what `dagster api grpc` does with Definitions: build the repository and load all its
definitions (`LoadedRepositories`), its asset graph, then, when the webserver asks,
`RepositorySnap.from_def(repo, defer_snapshots=True)` (the webserver defers job snapshots) and
`serialize_value` of it (the gRPC answer). Each step is timed on its own.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

PASSWORD_ENV_VAR = "DPC_BENCH_PASSWORD"  # the embedded server trusts local logins; any value does
OUR_COMPONENT_MODULE = "dagster_postgres_connection.components.connection_component.component"
# How far the content floor's served snapshot may differ in size from our `schema_checks: false`
# load's (what differs, 0.1 % at 10k: the component's class name in each spec's
# `dagster/component_origin`, and our sync job).
SAME_CONTENT_TOLERANCE = 0.03

# Every catalog statement a sync sends per database, by its name in queries.py (a sync also
# sends the transaction's BEGIN/SAVEPOINT and, without `databases`, LIST_DATABASES).
RAW_STATEMENTS = (
    "SERVER_VERSION",
    "LIST_RELATIONS",
    "LIST_COLUMNS",
    "LIST_FOREIGN_KEYS",
    "LIST_KEYS",
    "LIST_INHERITANCE",
    "LIST_VIEW_DEPENDENCIES",
    "LIST_INDEXES",
    "LIST_CHECK_AND_EXCLUSION_CONSTRAINTS",
    "LIST_FOREIGN_TABLES",
)


@contextmanager
def counting_statements() -> Iterator[list[int]]:
    """Counts every statement any SQLAlchemy engine of this process sends while the block runs."""
    box = [0]

    def count(*_args: Any) -> None:
        box[0] += 1

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield box
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def measured(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Runs `work`, adding its wall seconds, CPU seconds and statement count to what it returns."""
    wall, cpu = time.perf_counter(), time.process_time()
    with counting_statements() as statements:
        result = work()
    return {
        **result,
        "seconds": round(time.perf_counter() - wall, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "statements": statements[0],
    }


def raw(url: str) -> dict[str, Any]:
    from dagster_postgres_connection.catalog import queries

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # connect outside the measurement, as `ours` connects inside
        conn.exec_driver_sql("SELECT 1")

    def work() -> dict[str, Any]:
        rows: dict[str, int] = {}
        seconds: dict[str, float] = {}
        with engine.connect() as conn:
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with conn.begin():
                params: dict[str, Any] = {
                    "vanished": [],
                    "deparse_lock_wait": "100ms",
                    "schemas": [],
                }
                for name in RAW_STATEMENTS:
                    started = time.perf_counter()
                    result = conn.execute(getattr(queries, name), params).all()
                    seconds[name] = round(time.perf_counter() - started, 3)
                    rows[name] = len(result)
                    if name == "LIST_RELATIONS":  # the schemas the other statements are given
                        params["schemas"] = sorted({row.schema for row in result})
        return {"rows": rows, "statement_seconds": seconds}

    return measured(work)


def _settings_kwargs(url: str) -> dict[str, Any]:
    import dagster as dg

    parsed = sa.make_url(url)
    return {
        "name": "bench",
        "host": parsed.host,
        "port": parsed.port,
        "username": parsed.username,
        "password": dg.EnvVar(PASSWORD_ENV_VAR),
        "databases": [parsed.database],
    }


def ours(url: str, snapshot: Path) -> dict[str, Any]:
    from dagster_postgres_connection.catalog.reader import read_catalog
    from dagster_postgres_connection.catalog.state import write_snapshot
    from dagster_postgres_connection.factory import build_postgres_connection_settings

    settings = build_postgres_connection_settings(**_settings_kwargs(url))

    def work() -> dict[str, Any]:
        started = time.perf_counter()
        catalog = read_catalog(settings)
        read_seconds = time.perf_counter() - started
        write_snapshot(catalog, snapshot)
        return {
            "relations": len(catalog.relations()),
            "read_seconds": round(read_seconds, 3),
            "write_seconds": round(time.perf_counter() - started - read_seconds, 3),
            "snapshot_bytes": snapshot.stat().st_size,
        }

    return measured(work)


def serve(defs: Any, prefix: str, expect_assets: int) -> dict[str, Any]:
    """What a code server does with `defs`, step by step; checks the asset count on the way.

    `prefix` is the first part of the keys counted (Dagster adds stub assets for deps on keys
    no spec defines).
    """
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value

    started = time.perf_counter()
    repository = defs.get_repository_def()
    repository.load_all_definitions()  # what `LoadedRepositories` does before serving
    graph = repository.asset_graph
    assets = sum(1 for key in graph.get_all_asset_keys() if key.path[0] == prefix)
    if assets != expect_assets:
        raise SystemExit(f"{assets} assets under `{prefix}`, expected {expect_assets}")
    graph_done = time.perf_counter()
    snap = RepositorySnap.from_def(repository, defer_snapshots=True)
    snap_done = time.perf_counter()
    payload = serialize_value(snap)
    return {
        "assets": assets,
        "asset_checks": len(graph.asset_check_keys),
        "asset_graph_seconds": round(graph_done - started, 3),  # repository + asset graph
        "snapshot_seconds": round(snap_done - graph_done, 3),  # RepositorySnap.from_def
        "serialize_seconds": round(time.perf_counter() - snap_done, 3),
        "serialized_bytes": len(payload),
    }


def _load_through_defs_yaml(
    project_root: Path, module: str, component_module: str, prefix: str, expect_assets: int
) -> dict[str, Any]:
    """The project's `@dg.definitions` as a code server calls it, then `serve`; not timed as a whole."""
    sys.path.insert(0, str(project_root / "src"))
    started = time.perf_counter()
    import dagster  # noqa: F401
    from dagster._core.definitions.definitions_load_context import (
        DefinitionsLoadContext,
        DefinitionsLoadType,
    )

    # The defs.yaml's `type:` imports this; a code server imports it before building anything.
    importlib.import_module(component_module)
    imported = time.perf_counter()
    entry_points = _time_entry_point_discovery()
    # A code server loads inside an INITIALIZATION context (`LoadedRepositories`); our component
    # reads its local snapshot there and never connects.
    with DefinitionsLoadContext.scoped(DefinitionsLoadContext(DefinitionsLoadType.INITIALIZATION)):
        # definitions.py's `@dg.definitions def defs()`, called as Dagster calls it: it runs
        # `dg.load_from_defs_folder`, which reads the defs.yaml and builds the component.
        defs = importlib.import_module(f"{module}.definitions").defs()
        built = time.perf_counter()
        return {
            "import_seconds": round(imported - started, 3),
            "definitions_seconds": round(built - imported, 3),  # defs.yaml, snapshot read, specs, jobs, checks
            # Part of definitions_seconds: Dagster importing every installed component library
            # (`dagster_dg_cli.registry_modules` entry points: dagster, dagster_dbt, ours here).
            "entry_points_seconds": round(entry_points[0], 3),
            **serve(defs, prefix, expect_assets),
        }


def _time_entry_point_discovery() -> list[float]:
    """Times what `load_from_defs_folder` spends in `get_library_json_enriched_defs` (Dagster's
    private function, looked up on its module at each call, so a timing wrapper sees every call)."""
    from dagster.components.core import load_defs

    seconds = [0.0]
    discover = load_defs.get_library_json_enriched_defs

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return discover(*args, **kwargs)
        finally:
            seconds[0] += time.perf_counter() - started

    load_defs.get_library_json_enriched_defs = timed
    return seconds


def load(project_root: Path, module: str, connection: str, expect_assets: int) -> dict[str, Any]:
    """The component as a `defs.yaml` configures it, up to the code server's serialized snapshot."""
    result = measured(
        lambda: _load_through_defs_yaml(project_root, module, OUR_COMPONENT_MODULE, connection, expect_assets)
    )
    if result["statements"]:  # the snapshot was not where the component looks: a wrong row
        raise SystemExit(f"load: the component read Postgres ({result['statements']} statements)")
    return result


def content_prepare(project_root: Path, module: str, content: Path, expect_assets: int) -> dict[str, Any]:
    """Not a measurement: writes the content floor's file (`content_floor.write_content`) from our
    component, loaded the normal way (`load_from_defs_folder`) from `project_root`, whose snapshot
    is already at its state path (the `schema_checks: false` project: the specs are the same)."""
    import dagster as dg
    from content_floor import COMPONENT_METADATA_KEYS, write_content
    from dagster._core.definitions.definitions_load_context import (
        DefinitionsLoadContext,
        DefinitionsLoadType,
    )

    sys.path.insert(0, str(project_root / "src"))
    started = time.perf_counter()
    with DefinitionsLoadContext.scoped(DefinitionsLoadContext(DefinitionsLoadType.INITIALIZATION)):
        defs = importlib.import_module(f"{module}.definitions").defs()
    specs = list(defs.assets or [])
    if not all(isinstance(spec, dg.AssetSpec) for spec in specs):
        kinds = sorted({type(a).__name__ for a in specs if not isinstance(a, dg.AssetSpec)})
        raise SystemExit(f"content-prepare: the component returned {kinds}, not only AssetSpecs")
    if len(specs) != expect_assets:
        raise SystemExit(f"content-prepare: {len(specs)} specs, expected {expect_assets}")
    # The component machinery's metadata, dropped from the file, must be what Dagster added for
    # the defs.yaml (one code reference to it), not ours.
    defs_yaml = str(project_root / "src" / module / "defs")
    for spec in specs:
        if set(COMPONENT_METADATA_KEYS) - set(spec.metadata):
            raise SystemExit(f"content-prepare: {spec.key.to_user_string()} lacks the component metadata")
        references = spec.metadata["dagster/code_references"].code_references
        if [r for r in references if not getattr(r, "file_path", "").startswith(defs_yaml)]:
            raise SystemExit(f"content-prepare: {spec.key.to_user_string()} has code references of its own")
    size = write_content(specs, content)
    return {"assets": len(specs), "content_bytes": size, "seconds": round(time.perf_counter() - started, 3)}


def content_floor(project_root: Path, module: str, expect_assets: int, expect_bytes: int) -> dict[str, Any]:
    """Dagster alone with the same content as our `schema_checks: false` load, through a component
    (`content_floor.ContentFloorComponent` in the project's defs.yaml), up to the same end point.

    Fails unless its serialized snapshot is within `SAME_CONTENT_TOLERANCE` of `expect_bytes`
    (the `schema_checks: false` load's): same content, same bytes.
    """
    # Imported inside the measurement (it imports dagster), as the defs.yaml's `type:` is.
    result = measured(lambda: _load_through_defs_yaml(project_root, module, "content_floor", "bench", expect_assets))
    result["content_deserialize_seconds"] = round(sys.modules["content_floor"].last_deserialize_seconds, 3)
    if expect_bytes and abs(result["serialized_bytes"] - expect_bytes) > SAME_CONTENT_TOLERANCE * expect_bytes:
        raise SystemExit(
            f"content-floor: serialized snapshot {result['serialized_bytes']:,} bytes, "
            f"{expect_bytes:,} for our load without checks: not the same content"
        )
    return result


def factory(url: str, snapshot: Path, expect_assets: int) -> dict[str, Any]:
    """`build_postgres_connection_defs(snapshot_path=...)`, the Python API, up to the same end point."""

    def work() -> dict[str, Any]:
        started = time.perf_counter()
        from dagster_postgres_connection.factory import build_postgres_connection_defs

        imported = time.perf_counter()
        defs = build_postgres_connection_defs(**_settings_kwargs(url), snapshot_path=snapshot)
        built = time.perf_counter()
        return {
            "import_seconds": round(imported - started, 3),
            "definitions_seconds": round(built - imported, 3),
            **serve(defs, "bench", expect_assets),
        }

    return measured(work)


def dagster_floor(snapshot: Path, expect_assets: int) -> dict[str, Any]:
    """Dagster alone: the same asset keys and deps as bare `AssetSpec`s, no metadata, no checks,
    up to the same end point as the loads.

    What any library pays to show this many assets; the keys and deps are taken from the
    snapshot beforehand, outside the measurement.
    """
    from dagster_postgres_connection.catalog.state import load_snapshot

    relations = [r for r in load_snapshot(snapshot).relations() if r.partition_of is None]
    shapes = [
        (["bench", r.database, r.schema, r.name], [["bench", r.database, d.schema, d.name] for d in r.deps])
        for r in relations
    ]

    def work() -> dict[str, Any]:
        started = time.perf_counter()
        import dagster as dg

        imported = time.perf_counter()
        specs = [dg.AssetSpec(key=key, deps=deps, group_name="bench") for key, deps in shapes]
        defs = dg.Definitions(assets=specs)
        built = time.perf_counter()
        return {
            "import_seconds": round(imported - started, 3),
            "definitions_seconds": round(built - imported, 3),
            **serve(defs, "bench", expect_assets),
        }

    return measured(work)


def naive(url: str) -> dict[str, Any]:
    from naive_inspector import naive_read

    engine = sa.create_engine(url)
    result = naive_read(engine)  # counts its own statements, after one warm-up connect
    engine.dispose()
    return {
        "seconds": round(result.seconds, 3),
        "statements": result.statements,
        "relations": sum(
            result.counts[k] for k in ("tables", "views", "materialized_views", "foreign_tables")
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "kind",
        choices=["raw", "ours", "load", "factory", "dagster-floor", "content-prepare", "content-floor", "naive"],
    )
    p.add_argument("--url", required=True, help="SQLAlchemy URL of the benchmark database")
    p.add_argument("--snapshot", type=Path, help="snapshot file (ours writes it, factory and dagster-floor read it)")
    p.add_argument("--project", type=Path, help="load, content-*: root of the generated dg project (dg_project.py)")
    p.add_argument("--module", help="load, content-*: the project's root module")
    p.add_argument("--content", type=Path, help="content-prepare: the content file it writes")
    p.add_argument("--expect-bytes", type=int, default=0,
                   help="content-floor: our `schema_checks: false` load's serialized snapshot size")  # fmt: skip
    p.add_argument("--connection", default="bench", help="load: the component's `name`")
    p.add_argument("--expect-assets", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault(PASSWORD_ENV_VAR, "unused")
    if args.kind == "raw":
        result = raw(args.url)
    elif args.kind == "ours":
        result = ours(args.url, args.snapshot)
    elif args.kind == "load":
        result = load(args.project, args.module, args.connection, args.expect_assets)
    elif args.kind == "factory":
        result = factory(args.url, args.snapshot, args.expect_assets)
    elif args.kind == "dagster-floor":
        result = dagster_floor(args.snapshot, args.expect_assets)
    elif args.kind == "content-prepare":
        result = content_prepare(args.project, args.module, args.content, args.expect_assets)
    elif args.kind == "content-floor":
        result = content_floor(args.project, args.module, args.expect_assets, args.expect_bytes)
    else:
        started = time.process_time()
        result = {**naive(args.url), "cpu_seconds": None}
        result["cpu_seconds"] = round(time.process_time() - started, 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
