"""Linking to assets that code already produces (`dagster/table_name`), and the
`examples/custom_translator` project (translator subclass + YAML `translation:`) that uses it."""

import importlib
import shutil
import sys
from collections.abc import Callable, Iterator

import dagster as dg
import pytest
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._utils.test.definitions import scoped_definitions_load_context

from dagster_postgres_connection import link_to_existing_assets
from dagster_postgres_connection_tests.catalog.helpers import key, specs_by_key
from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

FILM_LIST_READS = ("actor", "category", "film", "film_actor", "film_category")


def deps_of(defs: dg.Definitions, asset_key: dg.AssetKey) -> set[dg.AssetKey]:
    return set(defs.resolve_asset_graph().get(asset_key).parent_keys)


def test_a_code_asset_with_the_same_table_name_replaces_ours(pagila: PgTarget) -> None:
    @dg.asset(key=["dbt", "film"], metadata={"dagster/table_name": "PAGILA.Public.FILM"})  # case-insensitive
    def film() -> None: ...

    specs = specs_by_key(pagila)
    defs = link_to_existing_assets(dg.Definitions(assets=[*specs.values(), film]))
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert key(pagila, "public", "film") not in keys  # no duplicate of the table dbt builds
    assert deps_of(defs, key(pagila, "public", "film_list")) == {
        dg.AssetKey(["dbt", "film"]) if t == "film" else key(pagila, "public", t) for t in FILM_LIST_READS
    }
    film_list = defs.resolve_assets_def(key(pagila, "public", "film_list")).get_asset_spec(key(pagila, "public", "film_list"))
    lineage = TableMetadataSet.extract(film_list.metadata).column_lineage
    assert lineage is not None
    assert {(d.asset_key, d.column_name) for d in lineage.deps_by_column["title"]} == {(dg.AssetKey(["dbt", "film"]), "title")}
    assert len(keys) == len(specs)  # one out (film), one in (dbt/film)


def test_schema_table_names_link_unless_ambiguous_across_databases(
    pagila: PgTarget, fresh_database: Callable[..., PgTarget], caplog: pytest.LogCaptureFixture
) -> None:
    @dg.asset(key=["sling", "actor"], metadata={"dagster/table_name": "public.actor"})
    def actor() -> None: ...

    one = specs_by_key(pagila)
    linked = link_to_existing_assets(dg.Definitions(assets=[*one.values(), actor]))
    assert key(pagila, "public", "actor") not in linked.resolve_asset_graph().get_all_asset_keys()

    other = fresh_database()
    two = specs_by_key(other)
    ambiguous = link_to_existing_assets(dg.Definitions(assets=[*one.values(), *two.values(), actor]))
    keys = ambiguous.resolve_asset_graph().get_all_asset_keys()
    assert {key(pagila, "public", "actor"), key(other, "public", "actor")} <= keys
    assert "matches relations of several databases" in caplog.text


def test_a_dep_naming_our_table_points_at_our_asset(pagila: PgTarget) -> None:
    """A dep on a key nothing defines whose metadata names one of our relations (what
    dagster-dbt declares for a dbt source) resolves to our asset, case-insensitively; a dep on
    a key that is defined is left alone."""

    @dg.asset(key=["other"])
    def other() -> None: ...

    @dg.asset(
        key=["reports", "films"],
        deps=[
            dg.AssetDep(["raw", "film"], metadata={"dagster/table_name": "Pagila.Public.Film"}),
            dg.AssetDep(["other"], metadata={"dagster/table_name": "pagila.public.actor"}),
            dg.AssetDep(["raw", "unknown"], metadata={"dagster/table_name": "pagila.public.nope"}),
        ],
    )
    def films() -> None: ...

    specs = specs_by_key(pagila)
    defs = link_to_existing_assets(dg.Definitions(assets=[*specs.values(), other, films]))
    assert deps_of(defs, dg.AssetKey(["reports", "films"])) == {
        key(pagila, "public", "film"),
        dg.AssetKey(["other"]),
        dg.AssetKey(["raw", "unknown"]),  # not ours: stays a stub
    }
    assert dg.AssetKey(["raw", "film"]) not in defs.resolve_asset_graph().get_all_asset_keys()


def test_without_producers_nothing_changes(pagila: PgTarget) -> None:
    defs = dg.Definitions(assets=list(specs_by_key(pagila).values()))
    assert link_to_existing_assets(defs) is defs


@pytest.fixture(name="custom_translator_defs", scope="module")
def custom_translator_defs_fixture(
    pagila: PgTarget, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dg.Definitions]:
    """Loads a copy of `examples/custom_translator` in-process, against the test server.

    The first load reads the catalog into the copy's state folder, as `dg dev` would.
    """
    project = tmp_path_factory.mktemp("example") / "custom_translator"
    shutil.copytree(REPO_ROOT / "examples" / "custom_translator", project, ignore=shutil.ignore_patterns(".local_defs_state"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("POSTGRES_CONNECTION_HOST", pagila.host)
        monkeypatch.setenv("POSTGRES_CONNECTION_PORT", str(pagila.port))
        monkeypatch.setenv("POSTGRES_CONNECTION_PASSWORD", pagila.password)
        monkeypatch.syspath_prepend(str(project / "src"))
        try:
            module = importlib.import_module("custom_translator.definitions")
            with scoped_definitions_load_context():
                yield module.defs()
        finally:
            for name in [m for m in sys.modules if m == "custom_translator" or m.startswith("custom_translator.")]:
                del sys.modules[name]


def warehouse(name: str) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", "public", name])


def test_example_translator_subclass_and_yaml_translation(custom_translator_defs: dg.Definitions) -> None:
    graph = custom_translator_defs.resolve_asset_graph()
    payment = graph.get(warehouse("payment"))
    assert payment.group_name == "pagila_storage"  # PagilaTranslator (Python)
    assert payment.tags["layer"] == "storage"
    assert payment.tags["domain"] == "payments"  # translation: (YAML), merged on top
    assert payment.owners == ["team:dba"]  # owners_by_role
    assert payment.description == "partitioned table `pagila.public.payment`"
    film_list = graph.get(warehouse("film_list"))
    assert (film_list.group_name, film_list.tags["layer"], film_list.tags["domain"]) == ("pagila_serving", "serving", "rentals")


def test_example_links_to_the_assets_its_code_builds(custom_translator_defs: dg.Definitions) -> None:
    graph = custom_translator_defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert {dg.AssetKey(["loaders", "film"]), dg.AssetKey(["reports", "rental_by_category"])} <= keys
    assert warehouse("film") not in keys and warehouse("rental_by_category") not in keys
    assert set(graph.get(warehouse("film_list")).parent_keys) == {
        dg.AssetKey(["loaders", "film"]) if t == "film" else warehouse(t) for t in FILM_LIST_READS
    }
    assert set(graph.get(dg.AssetKey(["reports", "rental_by_category"])).parent_keys) == {warehouse("payment")}
    # The connection's schema checks no longer target the relations the code owns.
    check_targets = {check_key.asset_key for checks in custom_translator_defs.asset_checks or [] for check_key in checks.check_keys}
    assert warehouse("film") not in check_targets
    assert check_targets <= keys  # none brings a dropped key back as a stub
    # Every connection view is connected to what it reads.
    views = [k for k in keys if k.path[0] == "warehouse" and "view" in graph.get(k).kinds]
    assert len(views) == 7 and all(graph.get(k).parent_keys for k in views)
