"""Include/exclude matching: one implementation for the reader, the asset builder, preview and CLI.

Each decision carries the rule that made it, so `preview --explain` can say why a relation is
in or out.
"""

import re
from collections.abc import Sequence
from typing import Literal

from dagster_shared.record import record

from dagster_postgres_connection.catalog._records import compile_record_constructors
from dagster_postgres_connection.catalog.models import PostgresRelationKind
from dagster_postgres_connection.config import NameFilter, PostgresFilters

FilterLevel = Literal["databases", "schemas", "tables", "views", "profiling.relations"]

# Never synced, whatever the filters say: Postgres' own catalogs and per-session schemas.
_SYSTEM_SCHEMA = re.compile(r"^(pg_catalog|information_schema|pg_toast.*|pg_temp_\d+)$")


def is_system_schema(schema: str) -> bool:
    return bool(_SYSTEM_SCHEMA.match(schema))


@record
class SelectionDecision:
    included: bool
    rule: str  # human-readable: which pattern decided, or the default

    def __bool__(self) -> bool:
        return self.included


def _decide(level: FilterLevel, name_filter: NameFilter, candidates: Sequence[str]) -> SelectionDecision:
    """`candidates` are the spellings a pattern may match (name, schema.name, database.schema.name)."""
    for pattern, regex in zip(name_filter.exclude, name_filter.exclude_regexes, strict=True):
        for candidate in candidates:
            if regex.fullmatch(candidate):
                return SelectionDecision(
                    included=False, rule=f"excluded by {level}.exclude {pattern!r} (matched {candidate!r})"
                )
    if not name_filter.include:
        return SelectionDecision(included=True, rule=f"included: {level}.include is empty (all)")
    for pattern, regex in zip(name_filter.include, name_filter.include_regexes, strict=True):
        for candidate in candidates:
            if regex.fullmatch(candidate):
                return SelectionDecision(
                    included=True, rule=f"included by {level}.include {pattern!r} (matched {candidate!r})"
                )
    return SelectionDecision(included=False, rule=f"not matched by any {level}.include pattern")


def select_database(filters: PostgresFilters, database: str) -> SelectionDecision:
    return _decide("databases", filters.databases, (database,))


def select_schema(filters: PostgresFilters, schema: str) -> SelectionDecision:
    if is_system_schema(schema):
        return SelectionDecision(included=False, rule="system schema: never synced")
    return _decide("schemas", filters.schemas, (schema,))


def select_relation(
    filters: PostgresFilters, database: str, schema: str, name: str, kind: PostgresRelationKind
) -> SelectionDecision:
    """Full decision for one relation, database and schema levels included."""
    for decision in (select_database(filters, database), select_schema(filters, schema)):
        if not decision:
            return decision
    level: FilterLevel = "views" if kind.is_view else "tables"
    name_filter = filters.views if kind.is_view else filters.tables
    return _decide(level, name_filter, (name, f"{schema}.{name}", f"{database}.{schema}.{name}"))


def select_for_profiling(
    relations: NameFilter, database: str, schema: str, name: str
) -> SelectionDecision:
    """`profiling.relations` on `name`, `schema.name` or `database.schema.name`."""
    return _decide("profiling.relations", relations, (name, f"{schema}.{name}", f"{database}.{schema}.{name}"))


compile_record_constructors(globals())  # see catalog/_records.py
