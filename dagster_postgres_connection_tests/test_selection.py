"""Filter semantics: fullmatch, case-insensitive, qualified names, exclude wins, system schemas."""

import pytest

from dagster_postgres_connection.catalog.models import PostgresRelationKind as Kind
from dagster_postgres_connection.catalog.selection import (
    select_database,
    select_relation,
    select_schema,
)
from dagster_postgres_connection.config import PostgresFilters


def filters(**levels: dict) -> PostgresFilters:
    return PostgresFilters.model_validate(levels)


def test_empty_filters_select_everything_but_system_schemas() -> None:
    f = filters()
    assert select_relation(f, "db", "public", "film", Kind.TABLE)
    assert select_schema(f, "Sales 2024")
    for system in ("pg_catalog", "information_schema", "pg_toast", "pg_toast_temp_1", "pg_temp_3"):
        decision = select_schema(f, system)
        assert not decision
        assert decision.rule == "system schema: never synced"


def test_patterns_match_the_whole_name_only() -> None:
    f = filters(schemas={"include": ["sales"]})
    assert select_schema(f, "sales")
    assert not select_schema(f, "sales_eu")
    assert not select_schema(f, "presales")
    assert select_schema(filters(schemas={"include": ["sales.*"]}), "sales_eu")


def test_patterns_are_case_insensitive() -> None:
    f = filters(tables={"include": ["film"]})
    assert select_relation(f, "db", "public", "FILM", Kind.TABLE)
    assert select_relation(f, "db", "public", "Film", Kind.TABLE)


def test_exclude_wins_over_include_and_names_its_rule() -> None:
    f = filters(tables={"include": ["tmp_.*", "film"], "exclude": ["tmp_.*"]})
    decision = select_relation(f, "db", "public", "tmp_load", Kind.TABLE)
    assert not decision
    assert decision.rule == "excluded by tables.exclude 'tmp_.*' (matched 'tmp_load')"
    assert select_relation(f, "db", "public", "film", Kind.TABLE).rule == (
        "included by tables.include 'film' (matched 'film')"
    )
    assert select_relation(f, "db", "public", "actor", Kind.TABLE).rule == (
        "not matched by any tables.include pattern"
    )


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("film", True),
        ("public\\.film", True),
        ("pagila\\.public\\.film", True),
        ("other\\.film", False),
        ("pagila\\.other\\.film", False),
        (".*\\.public\\..*", True),
    ],
)
def test_table_patterns_may_match_qualified_names(pattern: str, expected: bool) -> None:
    f = filters(tables={"include": [pattern]})
    assert bool(select_relation(f, "pagila", "public", "film", Kind.TABLE)) is expected


def test_tables_filter_covers_tables_partitioned_and_foreign_but_not_views() -> None:
    f = filters(tables={"exclude": [".*"]})
    for kind in (Kind.TABLE, Kind.PARTITIONED_TABLE, Kind.FOREIGN_TABLE):
        assert not select_relation(f, "db", "s", "x", kind)
    for kind in (Kind.VIEW, Kind.MATERIALIZED_VIEW):
        assert select_relation(f, "db", "s", "x", kind)


def test_views_filter_covers_views_and_materialized_views_only() -> None:
    f = filters(views={"include": ["keep_.*"]})
    assert select_relation(f, "db", "s", "keep_me", Kind.MATERIALIZED_VIEW)
    assert not select_relation(f, "db", "s", "drop_me", Kind.VIEW)
    assert select_relation(f, "db", "s", "drop_me", Kind.TABLE)


def test_database_and_schema_levels_decide_first() -> None:
    f = filters(databases={"exclude": ["staging"]}, schemas={"include": ["public"]})
    assert not select_database(f, "STAGING")
    decision = select_relation(f, "staging", "public", "film", Kind.TABLE)
    assert not decision and decision.rule.startswith("excluded by databases.exclude")
    decision = select_relation(f, "prod", "audit", "film", Kind.TABLE)
    assert not decision and decision.rule == "not matched by any schemas.include pattern"


def test_odd_identifiers_are_matched_literally_when_escaped() -> None:
    name = 'we"ird name/with.dots 🦆'
    f = filters(tables={"include": ['we"ird name/with\\.dots 🦆']})
    assert select_relation(f, "db", "Sales Schema", name, Kind.TABLE)
