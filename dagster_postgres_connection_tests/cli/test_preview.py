"""`preview` on Pagila with filters: the rules it reports, and keys equal to what the component loads."""

import asyncio
import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster.components.testing import create_defs_folder_sandbox

from dagster_postgres_connection import PostgresConnectionComponent
from dagster_postgres_connection_tests.cli.conftest import PASSWORD_ENV, RunCli, target_flags
from dagster_postgres_connection_tests.utils import PgTarget, connection_attributes

FILTERS = {
    "schemas": {"include": ["public"]},
    "tables": {"include": ["film.*", "actor", "payment.*", "rental"], "exclude": ["film_category"]},
    "views": {"exclude": [".*_list"]},
}


def attributes(target: PgTarget, **extra: Any) -> dict[str, Any]:
    return connection_attributes(target, password_env=PASSWORD_ENV, **extra)


def test_preview_matches_what_the_component_loads(pagila: PgTarget, run_cli: RunCli, monkeypatch: Any) -> None:
    monkeypatch.setenv(PASSWORD_ENV, pagila.password)
    translation = {"key": "{{ props.schema }}/{{ props.name }}"}  # the preview must use the translator too
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=PostgresConnectionComponent,
            defs_yaml_contents={
                "type": "dagster_postgres_connection.PostgresConnectionComponent",
                "attributes": attributes(pagila, filters=FILTERS, translation=translation),
            },
        )
        result = run_cli("preview", str(defs_path / "defs.yaml"), "--json")
        assert result.exit_code == 0, result.output
        preview = json.loads(result.output)
        assert not list(Path(sandbox.project_root).rglob(".local_defs_state/*/state")), "preview wrote state"

        with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, _):
            assert isinstance(component, PostgresConnectionComponent)
            asyncio.run(component.refresh_state(sandbox.project_root))
        with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            # The specs defined (the asset graph also holds stubs for upstream relations left out).
            loaded = {spec.key.to_user_string() for spec in defs.assets or () if isinstance(spec, dg.AssetSpec)}

    synced = {row["asset_key"] for row in preview["relations"] if row["status"] == "synced"}
    assert synced == loaded
    assert synced == {
        "public/film", "public/film_actor", "public/actor", "public/payment", "public/rental",
        "public/rental_by_category", "public/sales_by_film_category", "public/sales_by_store", "public/actor_info",
    }
    rows = {row["name"]: row for row in preview["relations"]}
    assert rows["film_category"]["status"] == "excluded"
    assert rows["film_category"]["rule"] == "excluded by tables.exclude 'film_category' (matched 'film_category')"
    assert rows["film_list"]["rule"] == "excluded by views.exclude '.*_list' (matched 'film_list')"
    assert rows["customer"]["rule"] == "not matched by any tables.include pattern"
    assert rows["film"]["rule"] == "included by tables.include 'film.*' (matched 'film')"
    assert rows["payment_p2022_01"]["status"] == "not_an_asset"  # rolled up into `payment`
    assert preview["totals"]["synced"] == 9


def test_explain_one_relation(pagila: PgTarget, run_cli: RunCli) -> None:
    flags = [*target_flags(pagila), "--schema", "public"]
    result = run_cli("preview", *flags, "--explain", "PUBLIC.Film_List")
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    explained = [line for line in lines if line.startswith("+ film_list ")]
    assert len(explained) == 1
    assert explained[0].endswith("view included: views.include is empty (all) -> postgres/pagila/public/film_list".replace(" included", " " * 15 + "included"))
    assert not any(line.startswith("+ film ") for line in lines)

    missing = run_cli("preview", *flags, "--explain", "no_such_table")
    assert missing.exit_code == 2
    assert "Error: `no_such_table` matches no database, schema or relation" in missing.output


def test_excluded_schema_is_summarised_with_its_rule(pagila_server: Any, fresh_database: Any, run_cli: RunCli) -> None:
    target = fresh_database()
    pagila_server.execute("CREATE SCHEMA staging; CREATE TABLE staging.t (id int)", target.database)
    result = run_cli("preview", *target_flags(target), "--schema", "public")
    assert result.exit_code == 0, result.output
    assert "  schema staging: 1 excluded (not matched by any schemas.include pattern)" in result.output.splitlines()
    assert "Total: 23 relation(s) would be synced, 1 excluded, 0 skipped (not readable), 7 not assets of their own." in result.output


def test_a_glob_like_pattern_is_warned_with_the_regex_to_write(pagila: PgTarget, run_cli: RunCli) -> None:
    """`publi*` is a valid regex that selects no schema of Pagila: say what was meant."""
    result = run_cli("preview", *target_flags(pagila), "--schema", "publi*", "--json")
    assert result.exit_code == 0, result.output
    assert (
        "warning: `filters.schemas.include`: pattern 'publi*' looks like a glob, but filters are regular "
        "expressions matching the whole name, where `*` repeats the character before it. Write 'publi.*' "
        "to match any characters there."
    ) in result.output
