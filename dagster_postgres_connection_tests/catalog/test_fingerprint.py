"""The catalog fingerprint: every kind of DDL we display is seen, a quiet catalog is not read again.

Each test reads a private Pagila copy (plus a small table, view and roles of its own), runs one
change as the superuser, and asks `check_unchanged` about the snapshot read before it. The
full read is then run too, to prove the change is one the snapshot displays.
"""

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from dagster_postgres_connection.catalog.codec import load_summary
from dagster_postgres_connection.catalog.fingerprint import check_unchanged
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot, PostgresRelation
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.state import write_snapshot
from dagster_postgres_connection.catalog.summary import SnapshotSummary
from dagster_postgres_connection.cli import cli
from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.factory import build_postgres_connection_settings
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.conftest import READER_ROLE
from dagster_postgres_connection_tests.utils import PgTarget, count_statements

PASSWORD_ENV = "DPC_FINGERPRINT_PW"


@dataclass
class Catalog:
    server: EmbeddedPostgres
    target: PgTarget
    settings: PostgresConnectionSettings
    group: str  # a role of this test: members may read public.fp_secret
    owner: str  # a role of this test, to own things

    def sql(self, statements: str) -> None:
        self.server.execute(statements.format(group=self.group, owner=self.owner), self.target.database)

    def read(self) -> PostgresCatalogSnapshot:
        return read_catalog(self.settings)


@pytest.fixture(name="catalog")
def catalog_fixture(
    pagila_server: EmbeddedPostgres, fresh_database: Callable[..., PgTarget], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Catalog]:
    target = fresh_database()
    monkeypatch.setenv(PASSWORD_ENV, target.password)
    suffix = secrets.token_hex(3)
    catalog = Catalog(
        server=pagila_server,
        target=target,
        settings=build_postgres_connection_settings(
            name="fp", host=target.host, port=target.port, username=target.user,
            password=dg.EnvVar(PASSWORD_ENV), databases=[target.database],
        ),
        group=f"fp_group_{suffix}",
        owner=f"fp_owner_{suffix}",
    )
    pagila_server.execute(f"CREATE ROLE {catalog.group}; CREATE ROLE {catalog.owner}")
    try:
        catalog.sql(
            "CREATE TABLE public.fp_probe (id integer PRIMARY KEY, name text, amount numeric, actor_id integer);"
            "CREATE VIEW public.fp_view AS SELECT id, name FROM public.fp_probe;"
            "CREATE TABLE public.fp_secret (id integer); CREATE TABLE public.fp_spare (id integer);"
            f"GRANT SELECT ON public.fp_probe, public.fp_view, public.fp_spare TO {READER_ROLE};"
            f"REVOKE ALL ON public.fp_secret FROM {READER_ROLE}, PUBLIC;"
            "GRANT SELECT ON public.fp_secret TO {group};"
            # Row estimates are displayed: start from analyzed tables, so that autovacuum's
            # own ANALYZE during the test finds the same numbers.
            "ANALYZE;"
        )
        yield catalog
    finally:
        pagila_server.drop_database(target.database)  # owns objects of the roles
        pagila_server.execute(f"DROP ROLE {catalog.group}; DROP ROLE {catalog.owner}")


def _relation(snapshot: PostgresCatalogSnapshot, name: str) -> PostgresRelation | None:
    return next((r for r in snapshot.relations() if r.schema == "public" and r.name == name), None)


def _probe_column(snapshot: PostgresCatalogSnapshot, column: str) -> object:
    relation = _relation(snapshot, "fp_probe")
    assert relation is not None
    return next((c for c in relation.columns if c.name == column), None)


Shown = Callable[[PostgresCatalogSnapshot], object]


def _exists(name: str) -> Shown:
    return lambda s: _relation(s, name) is not None


def _relation_field(name: str, field: str) -> Shown:
    """`field` of relation public.`name` as the full read shows it (None when the relation is gone)."""
    return lambda s: getattr(_relation(s, name), field, None)


def _probe_names(field: str) -> Shown:
    """The names of public.fp_probe's `field` (its indexes, constraints, policies...)."""
    return lambda s: [item.name for item in getattr(_relation(s, "fp_probe"), field, ())]


def _probe_column_field(column: str, field: str) -> Shown:
    """`field` of column `column` of public.fp_probe."""
    return lambda s: getattr(_probe_column(s, column), field, None)


# (DDL, what the full read shows afterwards that it did not before)
CHANGES: dict[str, tuple[str, Shown]] = {
    "create_table": ("CREATE TABLE public.fp_new (id integer)", _exists("fp_new")),
    "drop_table": ("DROP TABLE public.fp_spare", _exists("fp_spare")),
    "drop_view": ("DROP VIEW public.fp_view", _exists("fp_view")),
    "rename_table": ("ALTER TABLE public.fp_probe RENAME TO fp_renamed", _exists("fp_renamed")),
    "rename_column": ("ALTER TABLE public.fp_probe RENAME COLUMN name TO label", lambda s: _probe_column(s, "label")),
    "add_column": ("ALTER TABLE public.fp_probe ADD COLUMN extra integer", lambda s: _probe_column(s, "extra")),
    "drop_column": ("ALTER TABLE public.fp_probe DROP COLUMN amount", lambda s: _probe_column(s, "amount")),
    "alter_type": ("ALTER TABLE public.fp_probe ALTER COLUMN amount TYPE numeric(12,2)", _probe_column_field("amount", "type")),
    "comment_on_table": ("COMMENT ON TABLE public.fp_probe IS 'probe'", _relation_field("fp_probe", "comment")),
    "comment_on_column": ("COMMENT ON COLUMN public.fp_probe.name IS 'the name'", _probe_column_field("name", "comment")),
    "set_not_null": ("ALTER TABLE public.fp_probe ALTER COLUMN name SET NOT NULL", _probe_column_field("name", "nullable")),
    "set_default": ("ALTER TABLE public.fp_probe ALTER COLUMN name SET DEFAULT 'n/a'", _probe_column_field("name", "default")),
    "unique_key": (
        "ALTER TABLE public.fp_probe ADD CONSTRAINT fp_probe_name_key UNIQUE (name)",
        _probe_names("unique_constraints"),
    ),
    "foreign_key": (
        "ALTER TABLE public.fp_probe ADD FOREIGN KEY (actor_id) REFERENCES public.actor (actor_id)",
        _probe_names("foreign_keys"),
    ),
    "check_constraint": (
        "ALTER TABLE public.fp_probe ADD CONSTRAINT fp_positive CHECK (amount > 0)",
        _probe_names("check_constraints"),
    ),
    "index": ("CREATE INDEX fp_probe_name_idx ON public.fp_probe (name)", _probe_names("indexes")),
    "view_redefinition": (
        "CREATE OR REPLACE VIEW public.fp_view AS SELECT id, name FROM public.fp_probe WHERE id > 0",
        _relation_field("fp_view", "view_definition"),
    ),
    "revoke": (f"REVOKE SELECT ON public.fp_probe FROM {READER_ROLE}", _exists("fp_probe")),
    "revoke_schema_usage": (f"REVOKE USAGE ON SCHEMA public FROM {READER_ROLE}, PUBLIC", lambda s: len(s.relations())),
    "role_membership": (f"GRANT {{group}} TO {READER_ROLE}", _exists("fp_secret")),
    "owner": ("ALTER TABLE public.fp_probe OWNER TO {owner}", _relation_field("fp_probe", "owner")),
    "enum_label": (
        "ALTER TYPE public.mpaa_rating ADD VALUE 'X'",
        lambda s: getattr(next(c for c in _relation(s, "film").columns if c.name == "rating"), "enum_labels", None),  # type: ignore[union-attr]
    ),
    # Access (catalog/security.py)
    "grant_to_another_role": ("GRANT SELECT ON public.fp_probe TO {group}", _relation_field("fp_probe", "select_grantees")),
    "grant_columns": ("GRANT SELECT (name) ON public.fp_probe TO {group}", _relation_field("fp_probe", "column_select_grants")),
    "enable_row_security": ("ALTER TABLE public.fp_probe ENABLE ROW LEVEL SECURITY", _relation_field("fp_probe", "row_security")),
    "create_policy": ("CREATE POLICY fp_own ON public.fp_probe FOR SELECT TO {group} USING (id > 0)", _probe_names("policies")),
    "analyze_changes_row_estimate": (
        "INSERT INTO public.fp_probe (id) SELECT g FROM generate_series(1, 500) g; ANALYZE public.fp_probe",
        _relation_field("fp_probe", "row_estimate"),
    ),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_each_kind_of_change_is_detected(catalog: Catalog, change: str) -> None:
    ddl, shown = CHANGES[change]
    before = catalog.read()
    summary = SnapshotSummary.of(before)
    assert check_unchanged(catalog.settings, summary).unchanged

    catalog.sql(ddl)  # a membership is cluster-wide: the fixture's DROP ROLE undoes it
    check = check_unchanged(catalog.settings, summary)
    assert not check.unchanged, f"{change} slipped through"
    assert check.reason == f"the catalog of `{catalog.target.database}` changed"
    assert check.statement_count <= 3

    after = catalog.read()
    assert shown(after) != shown(before), "the change should be one the snapshot displays"
    assert check_unchanged(catalog.settings, SnapshotSummary.of(after)).unchanged


def test_data_changes_and_other_sessions_temporary_tables_do_not_count(catalog: Catalog) -> None:
    summary = SnapshotSummary.of(catalog.read())
    with catalog.server.connect(catalog.target.database) as conn, conn.cursor() as cur:
        # The session stays open while we check: its temporary table exists meanwhile.
        cur.execute("CREATE TEMPORARY TABLE scratch (id integer PRIMARY KEY, note text)")
        cur.execute("INSERT INTO public.fp_probe (id) VALUES (1)")
        check = check_unchanged(catalog.settings, summary)
    assert check.unchanged, check.reason
    assert check.statement_count == 2  # SAVEPOINT, the fingerprint


def test_a_read_that_skipped_a_locked_relation_vouches_for_nothing(catalog: Catalog) -> None:
    with catalog.server.connect(catalog.target.database) as conn, conn.cursor() as cur:
        cur.execute("BEGIN; LOCK TABLE public.fp_view IN ACCESS EXCLUSIVE MODE")
        snapshot = catalog.read()
        cur.execute("ROLLBACK")  # the lock goes, and nothing in the catalog changed
    view = _relation(snapshot, "fp_view")
    assert view is not None and view.view_definition is None
    assert snapshot.databases[0].catalog_fingerprint == ""
    check = check_unchanged(catalog.settings, SnapshotSummary.of(snapshot))
    assert not check.unchanged
    assert "no fingerprint" in check.reason


def test_a_changed_selection_or_an_older_snapshot_is_read_again(catalog: Catalog) -> None:
    snapshot = catalog.read()
    narrower = build_postgres_connection_settings(
        name="fp", host=catalog.target.host, port=catalog.target.port, username=catalog.target.user,
        password=dg.EnvVar(PASSWORD_ENV), databases=[catalog.target.database],
        filters={"schemas": {"include": ["^public$"]}},
    )
    assert check_unchanged(narrower, SnapshotSummary.of(snapshot)).reason == "`databases` or `filters` changed"
    assert check_unchanged(catalog.settings, None).reason == "no previous snapshot"


def test_cli_sync_without_changes_keeps_the_snapshot_and_reads_nothing_else(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    flags = [
        "sync", "--host", catalog.target.host, "--port", str(catalog.target.port), "--username", catalog.target.user,
        "--database", catalog.target.database, "--password-env-var", PASSWORD_ENV, "--name", "fp", "--output", str(path),
    ]
    runner = CliRunner()
    with count_statements(Engine) as full:
        first = runner.invoke(cli, flags, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "Synced connection `fp`" in first.output
    written = path.stat().st_mtime_ns
    summary = load_summary(path)
    assert summary is not None and summary.catalog_fingerprints[catalog.target.database]

    with count_statements(Engine) as quiet:
        second = runner.invoke(cli, flags, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "unchanged since its snapshot" in second.output
    assert path.stat().st_mtime_ns == written
    assert quiet.count * 2 <= full.count, (quiet.statements, full.count)
    assert not any("pg_attribute a" in s and "format_type" in s for s in quiet.statements)  # no column read

    catalog.sql("COMMENT ON TABLE public.fp_probe IS 'changed'")
    with count_statements(Engine) as changed:
        third = runner.invoke(cli, flags, catch_exceptions=False)
    assert "Synced connection `fp`" in third.output
    assert changed.count == quiet.count + full.count  # the check, then the read as before


def test_summary_at_the_head_of_the_file_matches_the_snapshot(catalog: Catalog, tmp_path: Path) -> None:
    snapshot = catalog.read()
    path = tmp_path / "snapshot.json"
    write_snapshot(snapshot, path)
    assert load_summary(path) == SnapshotSummary.of(snapshot)
    path.write_text('{"format": "something else"}')
    assert load_summary(path) is None
