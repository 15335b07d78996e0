"""One graph with a dbt project: `examples/dbt_project` against the test server, with real dbt.

Once per module: a private Pagila copy and a `dbt` role that may build in it; the example copied
to a temporary folder; `dg utils refresh-defs-state` (dbt parse + the connection's catalog);
`dbt build` through dagster-dbt, by materializing the dbt assets of the *linked* definitions;
the example's `sql/reporting.sql` (a view outside dbt over a dbt model); a second catalog read,
which now sees what dbt built; and a load of the code location as `dg dev` would load it.
"""

import contextlib
import importlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.scheduler.instigation import TickStatus
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from psycopg2 import sql

from dagster_postgres_connection import build_postgres_connection_defs, link_to_existing_assets
from dagster_postgres_connection.linking import is_connection_spec
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.conftest import PAGILA_TEMPLATE, READER_ROLE, make_target
from dagster_postgres_connection_tests.e2e.browser import chromium_page, require_chromium
from dagster_postgres_connection_tests.e2e.deployment import DagsterProcess
from dagster_postgres_connection_tests.e2e.webserver import DagsterWebserver
from dagster_postgres_connection_tests.test_examples import EXAMPLES, IGNORED, example_env, run_dg
from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

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
README_IMAGES = REPO_ROOT / "docs" / "images"  # written only with DPC_REFRESH_SCREENSHOTS=1


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
    # dagster-dbt runs dbt inside `pushd(project_dir)` in generators; one left unfinished keeps
    # this process in a folder of the example: every later test of the session that asks for
    # the working directory then failed once it was gone.
    working_directory = os.getcwd()
    try:
        root = tmp_path_factory.mktemp("dbt") / "dbt_project"
        shutil.copytree(EXAMPLES / "dbt_project", root, ignore=IGNORED)
        env = example_env(root, target, root.parent / "dagster_home")
        env.update(DBT_POSTGRES_DATABASE=database, DBT_POSTGRES_USER=DBT_ROLE, DBT_ENV_SECRET_POSTGRES_PASSWORD=dbt_password)
        # `dbt parse` (dagster-dbt's state) and the connection's first catalog read.
        refreshed = run_dg(root, env, "utils", "refresh-defs-state")
        assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
        with pytest.MonkeyPatch.context() as monkeypatch, contextlib.ExitStack() as stack:
            for name, value in env.items():
                if name == "PATH" or name.startswith(("POSTGRES_CONNECTION_", "DBT_")):  # PATH: `dbt`
                    monkeypatch.setenv(name, value)
            monkeypatch.syspath_prepend(str(root / "src"))

            defs, _ = _load(root)
            dbt_keys = {spec.key for spec in defs.resolve_all_asset_specs() if "dbt" in spec.kinds}
            # In the instance the daemon of the automation test uses: eager() runs a model when
            # what it reads changed, once it exists.
            instance = stack.enter_context(dg.DagsterInstance.from_config(env["DAGSTER_HOME"]))
            built = dg.materialize(list(defs.assets or []), selection=sorted(dbt_keys), raise_on_error=False, instance=instance)
            os.chdir(working_directory)

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
        os.chdir(working_directory)
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


@pytest.mark.e2e
def test_screenshot_of_the_combined_lineage(dbt_example: DbtExample, tmp_path: Path) -> None:
    """The README's picture of one graph, from `dg dev` on the example: the connection's tables,
    dbt's models, and the connection's view over a dbt model. Written to docs/images/ only with
    `DPC_REFRESH_SCREENSHOTS=1`."""
    require_chromium()
    folder = README_IMAGES if os.environ.get("DPC_REFRESH_SCREENSHOTS") == "1" else tmp_path / "screenshots"
    # An instance of its own: the daemon `dg dev` starts must not tick the example's sensors in
    # the instance the automation test watches.
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    server = DagsterWebserver(dbt_example.root, {**dbt_example.env, "DAGSTER_HOME": str(home)}, tmp_path / "dg_dev.log")
    with server:
        server.graphql("mutation { setNuxSeen }")  # the community dialog would cover the picture
        with chromium_page(server.url, tmp_path / "chromium-profile") as browser:
            browser.open(
                "/assets/daily_rentals?view=lineage&lineageScope=neighbors&lineageDepth=2",
                wait_for='text="busiest_days"',
            )
            for name in ("stg_rentals", "rental", "inventory"):
                assert browser.page.get_by_text(name, exact=True).count() > 0, name
            browser.assert_no_error_state()
            shot = browser.screenshot(folder / "dbt_lineage.png")
    assert shot.stat().st_size > 20_000, f"{shot} looks blank"


def _wait_for(what: str, condition: Callable[[], bool], daemon: DagsterProcess, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        daemon.check_alive()
        if time.monotonic() > deadline:
            log = daemon.log_path.read_text(errors="replace").splitlines()
            said = [line for line in log if "Sensor " in line or ("Tick produced" in line and "0 runs" not in line)]
            raise AssertionError(f"Timed out waiting for {what}.\n" + "\n".join(said[-40:]) + f"\n{daemon.log_tail()}")
        time.sleep(1)


def _sensor_ticks(instance: dg.DagsterInstance, name: str) -> int:
    """How many ticks of sensor `name` finished since the one that recorded its baseline."""
    state = next((s for s in instance.all_instigator_state() if s.instigator_name == name), None)
    if state is None:
        return 0
    finished = [
        tick
        for tick in reversed(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000))
        if tick.status in (TickStatus.SUCCESS, TickStatus.SKIPPED)
    ]
    baseline = next((i for i, tick in enumerate(finished) if "Baseline recorded" in (tick.skip_reason or "")), None)
    return 0 if baseline is None else len(finished) - baseline


def test_the_sync_job_leaves_what_dbt_builds_to_dbt(dbt_example: DbtExample) -> None:
    """The connection's sync job, run as a code location runs it (here `dagster job execute`,
    which loads the linked definitions): its first run reports every relation of the code
    location whose statistics moved since the fixture's catalog read, and nothing under the
    connection's keys of the relations dbt builds (an event there would make an asset with no
    definition next to dbt's)."""
    root, env = dbt_example.root, dbt_example.env
    executed = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "job", "execute",
         "-m", f"{PACKAGE}.definitions", "-j", f"{CONNECTION}_sync"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert executed.returncode == 0, executed.stdout[-3000:] + executed.stderr[-3000:]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        run = instance.get_runs(filters=dg.RunsFilter(job_name=f"{CONNECTION}_sync"), limit=1)[0]
        assert run.is_success
        reported = {
            record.asset_key
            for event_type in (dg.DagsterEventType.ASSET_OBSERVATION, dg.DagsterEventType.ASSET_MATERIALIZATION)
            for record in instance.get_records_for_run(run.run_id, of_type=event_type).records
            if record.asset_key is not None
        }
    ours_built_by_dbt = {dbt_example.key(*relation.split(".")) for relation in DBT_BUILDS.values()}
    defined = set(dbt_example.defs.resolve_all_asset_keys())
    assert reported, "the first sync run reported no relation"
    assert not reported & ours_built_by_dbt, reported & ours_built_by_dbt
    assert reported <= defined, reported - defined


def test_inserting_into_a_source_table_runs_the_dbt_models_that_read_it(
    dbt_example: DbtExample, pagila_server: EmbeddedPostgres
) -> None:
    """The daemon end to end: `pagila_prod_change_sensor` reports the INSERT into `rental` as a
    runless materialization, and the automation sensor runs (eager) the dbt models reading
    `rental` and their downstream models: one `dbt build` of just those, which loads the new day
    into the incremental model. Runs last: it changes the example's data."""
    root, database = dbt_example.root, dbt_example.target.database
    defs_dir = root / "src" / PACKAGE / "defs"
    for path, old, new in [
        (defs_dir / "pagila_prod" / "defs.yaml", "minimum_interval_seconds: 30", "minimum_interval_seconds: 5"),
        (defs_dir / "automation.py", "minimum_interval_seconds=30", "minimum_interval_seconds=5"),
    ]:
        text = path.read_text()
        assert old in text, path
        path.write_text(text.replace(old, new))
    home = Path(dbt_example.env["DAGSTER_HOME"])
    specs = dbt_specs(dbt_example.defs)
    dbt_keys = {spec.key for spec in specs.values()}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # The dbt models were built in this instance (the fixture): eager() builds no model that
        # was never built.
        daemon = DagsterProcess(
            "daemon",
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-m", f"{PACKAGE}.definitions"],
            cwd=root, env=dbt_example.env, logs=root.parent,
        )  # fmt: skip
        daemon.start()
        try:
            def dbt_runs() -> list[dg.DagsterRun]:
                return [run for run in instance.get_runs() if set(run.asset_selection or ()) & set(dbt_keys)]

            first_runs = len(dbt_runs())
            # Two finished change-sensor ticks after that build: the baseline is recorded, and
            # what dbt wrote was read (it is dbt's to report).
            change_sensor = f"{CONNECTION}_change_sensor"
            ticks = _sensor_ticks(instance, change_sensor)
            _wait_for("two change-sensor ticks", lambda: _sensor_ticks(instance, change_sensor) >= ticks + 2, daemon)

            inserted_at = time.time()
            pagila_server.execute(
                "INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) "
                "VALUES ('2030-01-01 10:00+00', 1, 1, 1)",
                database,
            )
            rental = dbt_example.key("public", "rental")
            _wait_for(
                "the change sensor's materialization of `rental`",
                lambda: (event := instance.get_latest_materialization_event(rental)) is not None and event.timestamp > inserted_at,
                daemon,
                timeout=90,
            )
            _wait_for(
                "a run of the dbt models reading `rental`",
                lambda: len(runs := dbt_runs()) > first_runs and all(r.is_finished for r in runs),
                daemon,
            )
            # Two change-sensor ticks after dbt's run: they see the relations dbt rebuilt move.
            ticks = _sensor_ticks(instance, change_sensor)
            _wait_for("two change-sensor ticks", lambda: _sensor_ticks(instance, change_sensor) >= ticks + 2, daemon)
        finally:
            daemon.stop()

        new_runs = dbt_runs()[: len(dbt_runs()) - first_runs]  # newest first
        assert all(run.is_success for run in new_runs)
        rebuilt = {key for run in new_runs for key in run.asset_selection or set()}
        reads_rental = {specs[name].key for name in ("stg_rentals", "daily_rentals", "film_revenue")}
        assert rebuilt == reads_rental  # not stg_films, stg_payments or the seed: untouched
        assert pagila_server.query(
            "SELECT rentals FROM analytics.daily_rentals WHERE rental_day = '2030-01-01'", database=database
        ) == [(1,)]
        films = instance.get_latest_materialization_event(specs["stg_films"].key)
        assert films is not None and films.timestamp < inserted_at
        # The change sensor reported nothing under the connection's keys of the relations dbt
        # builds (they changed in both dbt runs): they are dbt's to report.
        for relation in DBT_BUILDS.values():
            records = instance.fetch_materializations(dbt_example.key(*relation.split(".")), limit=100).records
            by_sensor = [r for r in records if r.asset_materialization and "change sensor" in (r.asset_materialization.description or "")]
            assert by_sensor == [], relation
        # ... and reported the connection's view over the incremental model, which moved with it.
        busiest_days = instance.get_latest_materialization_event(dbt_example.key("reporting", "busiest_days"))
        assert busiest_days is not None and busiest_days.timestamp > inserted_at
        rental_events = instance.fetch_materializations(dbt_example.key("public", "rental"), limit=100).records
        assert any("change sensor" in (r.asset_materialization.description or "") for r in rental_events if r.asset_materialization)
