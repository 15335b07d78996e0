"""Property: for random identifiers and filter patterns, `preview`, the component and an
independent oracle agree on what is synced and under which keys, and nothing crashes.

Each example creates a schema of randomly named tables and views in one database, then
compares three views of the selection: a few lines of plain `re.fullmatch` (the documented
semantics), `dagster-postgres-connection preview --json`, and the component's asset specs.
"""

import itertools
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster.components.testing import create_defs_folder_sandbox
from hypothesis import HealthCheck, event, given, settings, strategies as st
from psycopg2 import sql

from dagster_postgres_connection import PostgresConnectionComponent
from dagster_postgres_connection.cli import cli
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.reliability.conftest import PASSWORD_ENV
from dagster_postgres_connection_tests.utils import PgTarget

CONNECTION = "fuzz"
_schema_numbers = itertools.count()

# Printable characters of every script (letters, digits, punctuation, symbols, spaces, emoji);
# PostgreSQL takes any of them in a quoted identifier, up to 63 bytes.
identifier = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp"), blacklist_characters="\x00"),
    min_size=1, max_size=16,
).filter(lambda name: len(name.encode()) <= 63 and name.strip() == name and name != "")


@st.composite
def catalogs(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Distinct table and view names (PostgreSQL names are case-sensitive, so `A` and `a` both)."""
    names = draw(st.lists(identifier, min_size=1, max_size=8, unique=True))
    split = draw(st.integers(min_value=0, max_value=len(names)))
    return names[:split], names[split:]


def patterns_for(names: list[str]) -> st.SearchStrategy[str]:
    """Patterns that hit some names: an escaped name, an escaped prefix + `.*`, a one-char class,
    or a random (valid) regex from a small alphabet."""
    pool = names or ["x"]
    return st.one_of(
        st.sampled_from(pool).map(re.escape),
        st.sampled_from(pool).map(lambda n: re.escape(n[: max(1, len(n) // 2)]) + ".*"),
        st.sampled_from(pool).map(lambda n: f"[{re.escape(n[0])}].*"),
        st.text(st.sampled_from("ab.*_|?"), min_size=1, max_size=6).filter(_compiles),
        st.just(".*"),
    )


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def oracle(database: str, schema: str, name: str, include: list[str], exclude: list[str]) -> bool:
    """The documented semantics, written independently: case-insensitive whole-name matches on
    `name`, `schema.name` or `database.schema.name`; exclude wins; no include means all."""
    candidates = (name, f"{schema}.{name}", f"{database}.{schema}.{name}")

    def hit(patterns: list[str]) -> bool:
        return any(re.fullmatch(p, c, re.IGNORECASE) for p in patterns for c in candidates)

    return not hit(exclude) and (not include or hit(include))


@pytest.fixture(name="fuzz_db", scope="module")
def fuzz_db_fixture(pagila_server: EmbeddedPostgres) -> Iterator[PgTarget]:
    from dagster_postgres_connection_tests.conftest import make_target

    name = f"fuzz_{secrets.token_hex(3)}"
    pagila_server.create_database(name)
    pagila_server.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO dagster_reader").format(sql.Identifier(name)))
    try:
        yield make_target(pagila_server, name)
    finally:
        pagila_server.drop_database(name)


@pytest.fixture(name="project", scope="module")
def project_fixture(fuzz_db: PgTarget) -> Iterator[tuple[Any, Path]]:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=PostgresConnectionComponent,
            defs_yaml_contents={"type": "dagster_postgres_connection.PostgresConnectionComponent", "attributes": {}},
        )
        yield sandbox, path


def _create(server: EmbeddedPostgres, target: PgTarget, schema: str, tables: list[str], views: list[str]) -> None:
    s = sql.Identifier(schema)
    statements = [sql.SQL("CREATE SCHEMA {}").format(s)]
    statements += [sql.SQL("CREATE TABLE {}.{} (id int)").format(s, sql.Identifier(t)) for t in tables]
    statements += [sql.SQL("CREATE VIEW {}.{} AS SELECT 1 AS one").format(s, sql.Identifier(v)) for v in views]
    statements.append(
        sql.SQL("GRANT USAGE ON SCHEMA {s} TO dagster_reader; GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO dagster_reader").format(s=s)
    )
    server.execute(sql.SQL("; ").join(statements), target.database)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), catalog=catalogs())
def test_preview_component_and_oracle_agree(
    data: st.DataObject,
    catalog: tuple[list[str], list[str]],
    pagila_server: EmbeddedPostgres,
    fuzz_db: PgTarget,
    project: tuple[Any, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables, views = catalog
    names = tables + views
    table_include = data.draw(st.lists(patterns_for(names), max_size=2), label="tables.include")
    table_exclude = data.draw(st.lists(patterns_for(names), max_size=1), label="tables.exclude")
    view_include = data.draw(st.lists(patterns_for(names), max_size=2), label="views.include")
    schema = f"fz{next(_schema_numbers)} {data.draw(identifier, label='schema')}"[:40]
    _create(pagila_server, fuzz_db, schema, tables, views)
    try:
        monkeypatch.setenv(PASSWORD_ENV, fuzz_db.password)
        sandbox, path = project
        attributes = {
            "name": CONNECTION, "host": fuzz_db.host, "port": fuzz_db.port, "username": fuzz_db.user,
            "password": f"{{{{ env.{PASSWORD_ENV} }}}}", "databases": [fuzz_db.database],
            "filters": {
                "schemas": {"include": [re.escape(schema)]},
                "tables": {"include": table_include, "exclude": table_exclude},
                "views": {"include": view_include},
            },
        }
        (path / "defs.yaml").write_text(
            yaml.safe_dump({"type": "dagster_postgres_connection.PostgresConnectionComponent", "attributes": attributes}, allow_unicode=True)
        )
        for state in sandbox.project_root.rglob(".local_defs_state/*/state"):
            state.unlink()  # every example syncs afresh on load

        expected = {
            name for name in tables if oracle(fuzz_db.database, schema, name, table_include, table_exclude)
        } | {name for name in views if oracle(fuzz_db.database, schema, name, view_include, [])}

        event(f"selected {'none' if not expected else 'all' if len(expected) == len(names) else 'some'}")
        result = CliRunner().invoke(cli, ["preview", "--json", str(path / "defs.yaml")], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        rows = [r for r in json.loads(result.stdout)["relations"] if r["schema"] == schema]
        assert {r["name"] for r in rows} == set(names)
        assert {r["name"] for r in rows if r["status"] == "synced"} == expected

        with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
        keys = {dg.AssetKey([CONNECTION, fuzz_db.database, schema, name]) for name in expected}
        assert set(specs) == keys
        for key, spec in specs.items():
            assert spec.metadata["dagster/table_name"] == f"{fuzz_db.database}.{schema}.{key.path[-1]}"
        preview_keys = {r["asset_key"] for r in rows if r["status"] == "synced"}
        assert preview_keys == {key.to_user_string() for key in keys}
    finally:
        pagila_server.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)), fuzz_db.database)
