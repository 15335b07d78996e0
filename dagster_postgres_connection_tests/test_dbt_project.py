"""One graph with a dbt project: `examples/dbt_project` against the test server, with real dbt.

Once per module: a private Pagila copy and a `dbt` role that may build in it; the example copied
to a temporary folder; `dg utils refresh-defs-state` (dbt parse + the connection's catalog);
`dbt build` through dagster-dbt, by materializing the dbt assets of the *linked* definitions;
the example's `sql/reporting.sql` (a view outside dbt over a dbt model); a second catalog read,
which now sees what dbt built; and a load of the code location as `dg dev` would load it.
"""

import importlib
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from psycopg2 import sql

from dagster_postgres_connection import build_postgres_connection_defs, link_to_existing_assets
from dagster_postgres_connection.linking import is_connection_spec
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.conftest import PAGILA_TEMPLATE, READER_ROLE, make_target
from dagster_postgres_connection_tests.test_examples import EXAMPLES, IGNORED, example_env, run_dg
from dagster_postgres_connection_tests.utils import PgTarget

pytestmark = pytest.mark.slow

DBT_ROLE = "dbt"
CONNECTION = "pagila_prod"
PACKAGE = "pagila_analytics"
# dbt's `relation_name`s for what it builds: seeds, models and snapshots (schema `analytics`, the
# snapshot's `schema: snapshots` becomes `analytics_snapshots` by dbt's generate_schema_name).
DBT_BUILDS = {
    "rating_labels": "analytics.rating_labels",
    "stg_films": "analytics.stg_films",
    "stg_rentals": "analytics.stg_rentals",
    "stg_payments": "analytics.stg_payments",
    "film_revenue": "analytics.film_revenue",
    "daily_rentals": "analytics.daily_rentals",
    "customers_snapshot": "analytics_snapshots.customers_snapshot",
}
SOURCES = ("film", "inventory", "rental", "payment", "customer")


@dataclass
class DbtExample:
    root: Path
    target: PgTarget
    env: dict[str, str]
    built: dg.ExecuteInProcessResult  # the `dbt build` through dagster-dbt
    defs: dg.Definitions  # the example's code location, after dbt built and the catalog re-read
    unlinked: dg.Definitions  # the same components without link_to_existing_assets

    def key(self, schema: str, name: str) -> dg.AssetKey:
        return dg.AssetKey([CONNECTION, self.target.database, schema, name])


def _load(root: Path) -> tuple[dg.Definitions, dg.Definitions]:
    """The example's `definitions.py`, and its defs folder alone, loaded fresh."""
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    module = importlib.import_module(f"{PACKAGE}.definitions")
    with scoped_definitions_load_context():
        linked = module.defs()
    with scoped_definitions_load_context():
        unlinked = dg.load_from_defs_folder(path_within_project=root / "src" / PACKAGE)
    return linked, unlinked


def _prepare_database(server: EmbeddedPostgres, database: str, dbt_password: str) -> None:
    server.create_database(database, template=PAGILA_TEMPLATE)
    role, db = sql.Identifier(DBT_ROLE), sql.Identifier(database)
    server.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, sql.Identifier(READER_ROLE)))
    exists = server.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (DBT_ROLE,))
    server.execute(
        sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
            sql.SQL("ALTER" if exists else "CREATE"), role, sql.Literal(dbt_password)
        )
    )
    server.execute(sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(db, role))
    server.execute(
        sql.SQL("GRANT USAGE ON SCHEMA public TO {r}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {r}").format(r=role),
        database,
    )


@pytest.fixture(name="dbt_example", scope="module")
def dbt_example_fixture(pagila_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbtExample]:
    database = f"dbt_{secrets.token_hex(4)}"
    dbt_password = secrets.token_urlsafe(12)
    _prepare_database(pagila_server, database, dbt_password)
    target = make_target(pagila_server, database)
    try:
        root = tmp_path_factory.mktemp("dbt") / "dbt_project"
        shutil.copytree(EXAMPLES / "dbt_project", root, ignore=IGNORED)
        env = example_env(root, target, root.parent / "dagster_home")
        env.update(DBT_POSTGRES_DATABASE=database, DBT_POSTGRES_USER=DBT_ROLE, DBT_ENV_SECRET_POSTGRES_PASSWORD=dbt_password)
        # `dbt parse` (dagster-dbt's state) and the connection's first catalog read.
        refreshed = run_dg(root, env, "utils", "refresh-defs-state")
        assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
        with pytest.MonkeyPatch.context() as monkeypatch:
            for name, value in env.items():
                if name == "PATH" or name.startswith(("POSTGRES_CONNECTION_", "DBT_")):  # PATH: `dbt`
                    monkeypatch.setenv(name, value)
            monkeypatch.syspath_prepend(str(root / "src"))

            defs, _ = _load(root)
            dbt_keys = {spec.key for spec in defs.resolve_all_asset_specs() if "dbt" in spec.kinds}
            built = dg.materialize(list(defs.assets or []), selection=sorted(dbt_keys), raise_on_error=False)

            pagila_server.psql_file(root / "sql" / "reporting.sql", database)
            # The connection's catalog again (dbt's state is still current).
            resynced = subprocess.run(
                [str(Path(sys.executable).with_name("dagster-postgres-connection")), "sync"],
                cwd=root, env=env, capture_output=True, text=True, timeout=300,
            )
            assert resynced.returncode == 0, resynced.stdout + resynced.stderr
            defs, unlinked = _load(root)
            yield DbtExample(root=root, target=target, env=env, built=built, defs=defs, unlinked=unlinked)
    finally:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
        pagila_server.drop_database(database)


def dbt_specs(defs: dg.Definitions) -> dict[str, dg.AssetSpec]:
    """dagster-dbt's specs by dbt resource name (the last key part)."""
    return {spec.key.path[-1]: spec for spec in defs.resolve_all_asset_specs() if "dbt" in spec.kinds}


def test_dbt_build_through_dagster_dbt(dbt_example: DbtExample) -> None:
    assert dbt_example.built.success
    materialized = {event.asset_key for event in dbt_example.built.get_asset_materialization_events()}
    assert {key.path[-1] for key in materialized} == set(DBT_BUILDS)
    checks = dbt_example.built.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"unique_film_revenue_film_id", "not_null_film_revenue_film_id", "not_null_film_revenue_revenue", "unique_daily_rentals_rental_day"}
    assert all(c.passed for c in checks)


def test_dbt_table_names_are_the_connections(dbt_example: DbtExample) -> None:
    """What dagster-dbt writes in `dagster/table_name` (`database.schema.alias`, as dbt spells
    it) is, case for case, what the connection writes for the same relation."""
    database = dbt_example.target.database
    written = {name: TableMetadataSet.extract(spec.metadata).table_name for name, spec in dbt_specs(dbt_example.defs).items()}
    assert written == {name: f"{database}.{relation}" for name, relation in DBT_BUILDS.items()}
    ours = {
        TableMetadataSet.extract(spec.metadata).table_name
        for spec in dbt_example.unlinked.resolve_all_asset_specs()
        if is_connection_spec(spec)
    }
    assert set(written.values()) <= ours  # every relation dbt built was cataloged: linking had work to do


def test_one_asset_per_relation(dbt_example: DbtExample) -> None:
    unlinked_specs = dbt_example.unlinked.resolve_all_asset_specs()
    ours = {spec.key for spec in unlinked_specs if is_connection_spec(spec)}
    dbt = {spec.key for spec in unlinked_specs if "dbt" in spec.kinds}
    keys = dbt_example.defs.resolve_asset_graph().get_all_asset_keys()
    assert keys == (ours - {dbt_example.key(*relation.split(".")) for relation in DBT_BUILDS.values()}) | dbt
    assert len(keys) == len(ours) + len(dbt) - len(DBT_BUILDS)
    # No stub: every key is defined by the connection or by dbt.
    assert all(
        is_connection_spec(spec) or "dbt" in spec.kinds for spec in dbt_example.defs.resolve_all_asset_specs()
    )


def test_dbt_sources_are_the_connections_tables(dbt_example: DbtExample) -> None:
    graph = dbt_example.defs.resolve_asset_graph()
    specs = dbt_specs(dbt_example.defs)
    assert set(graph.get(specs["stg_films"].key).parent_keys) == {dbt_example.key("public", "film")}
    assert set(graph.get(specs["stg_rentals"].key).parent_keys) == {
        dbt_example.key("public", "rental"),
        dbt_example.key("public", "inventory"),
    }
    assert set(graph.get(specs["stg_payments"].key).parent_keys) == {dbt_example.key("public", "payment")}
    assert set(graph.get(specs["customers_snapshot"].key).parent_keys) == {dbt_example.key("public", "customer")}
    # dagster-dbt's own key for a source (`[source_name, table]`) is gone from the graph.
    assert not {dg.AssetKey(["pagila", table]) for table in SOURCES} & graph.get_all_asset_keys()
    # ... and downstream of our table, the dbt models that read it.
    assert specs["stg_films"].key in graph.get(dbt_example.key("public", "film")).child_keys


def test_view_over_a_dbt_model_depends_on_the_dbt_asset(dbt_example: DbtExample) -> None:
    busiest_days = dbt_example.key("reporting", "busiest_days")
    daily_rentals = dbt_specs(dbt_example.defs)["daily_rentals"].key
    graph = dbt_example.defs.resolve_asset_graph()
    assert set(graph.get(busiest_days).parent_keys) == {daily_rentals}
    spec = dbt_example.defs.resolve_assets_def(busiest_days).get_asset_spec(busiest_days)
    lineage = TableMetadataSet.extract(spec.metadata).column_lineage
    assert lineage is not None
    assert {
        column: {(dep.asset_key, dep.column_name) for dep in deps} for column, deps in lineage.deps_by_column.items()
    } == {column: {(daily_rentals, column)} for column in ("rental_day", "rentals", "customers")}


def test_either_order_and_python(dbt_example: DbtExample) -> None:
    """The same graph whatever the order of the two sides, and from Python: `@dbt_assets` and
    `build_postgres_connection_defs` instead of the two components."""
    expected = _edges(dbt_example.defs)
    ours = dg.Definitions(assets=[a for a in dbt_example.unlinked.assets or [] if isinstance(a, dg.AssetSpec)])
    theirs = dg.Definitions(assets=[a for a in dbt_example.unlinked.assets or [] if isinstance(a, dg.AssetsDefinition)])
    assert _edges(link_to_existing_assets(dg.Definitions.merge(theirs, ours))) == expected
    assert _edges(link_to_existing_assets(dg.Definitions.merge(ours, theirs))) == expected

    project = DbtProject(project_dir=dbt_example.root / "dbt")

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=DagsterDbtTranslator())
    def pagila_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        yield from dbt.cli(["build"], context=context).stream()

    target = dbt_example.target
    connection = build_postgres_connection_defs(
        name=CONNECTION,
        host=target.host,
        port=target.port,
        username=target.user,
        password=dg.EnvVar("POSTGRES_CONNECTION_PASSWORD"),
        databases=[target.database],
    )
    dbt_defs = dg.Definitions(assets=[pagila_dbt], resources={"dbt": DbtCliResource(project_dir=project)})
    assert _edges(link_to_existing_assets(dg.Definitions.merge(dbt_defs, connection))) == expected
    assert _edges(link_to_existing_assets(dg.Definitions.merge(connection, dbt_defs))) == expected


def _edges(defs: dg.Definitions) -> set[tuple[dg.AssetKey, dg.AssetKey]]:
    graph = defs.resolve_asset_graph()
    return {(parent, key) for key in graph.get_all_asset_keys() for parent in graph.get(key).parent_keys}



def test_column_lineage_across_the_boundary(dbt_example: DbtExample) -> None:
    """dagster-dbt's column lineage (from the compiled SQL, at run time) names the connection's
    columns for dbt sources, since the example's `translation:` gives sources the connection's
    keys; and the connection's view lineage names the dbt model's columns (see above)."""
    lineage = {
        event.asset_key.path[-1]: TableMetadataSet.extract(event.materialization.metadata).column_lineage
        for event in dbt_example.built.get_asset_materialization_events()
    }
    film, rental, inventory = (dbt_example.key("public", t) for t in ("film", "rental", "inventory"))

    def deps(model: str) -> dict[str, set[tuple[dg.AssetKey, str]]]:
        model_lineage = lineage[model]
        assert model_lineage is not None, model
        return {c: {(d.asset_key, d.column_name) for d in ds} for c, ds in model_lineage.deps_by_column.items()}

    assert deps("stg_films") == {
        "film_id": {(film, "film_id")},
        "title": {(film, "title")},
        "rating": {(film, "rating")},
        "rental_rate": {(film, "rental_rate")},
        "length_minutes": {(film, "length")},
    }
    assert deps("stg_rentals")["film_id"] == {(inventory, "film_id")}
    assert deps("stg_rentals")["rental_date"] == {(rental, "rental_date")}
    stg_films = dbt_specs(dbt_example.defs)["stg_films"].key
    assert deps("film_revenue")["title"] == {(stg_films, "title")}
