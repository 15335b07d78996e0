"""Data versions on real Pagila: each kind of write moves them, nothing else does, and the same
data gives the same version in another process and in the sync's events."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.factory import build_postgres_connection_settings
from dagster_postgres_connection.observe.statistics import read_data_versions
from dagster_postgres_connection.observe.versions import view_dependencies, with_view_versions
from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.observe.conftest import (
    CONNECTION,
    PASSWORD_ENV,
    build_defs,
    data_events,
    run_job,
    wait_for_changes,
)
from dagster_postgres_connection_tests.utils import PgTarget

DATA_VERSION_TAG = "dagster/data_version"


def _versions(db: PgTarget) -> dict[str, str]:
    """Every relation's version, views included, by name."""
    settings = build_postgres_connection_settings(
        name=CONNECTION, host=db.host, port=db.port, username=db.user,
        password=dg.EnvVar(PASSWORD_ENV), databases=[db.database],
    )
    deps = view_dependencies(read_catalog(settings).relations())
    tables, in_recovery, statements = read_data_versions(settings, db.database, ["public"])
    assert statements == 1 and not in_recovery
    return {key[2]: version for key, version in with_view_versions(tables, deps).items()}


def _moved(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in after if before.get(name) != after[name]}


@pytest.mark.parametrize(
    ("statement", "table", "changes", "moved"),
    [
        # The materialized view `rental_by_category` reads `category` too: it moves on REFRESH only.
        ("INSERT INTO category (name) VALUES ('Noir')", "category", 1, {"category", "film_list", "nicer_but_slower_film_list", "sales_by_film_category", "actor_info"}),
        ("UPDATE language SET name = 'Klingon' WHERE language_id = 6", "language", 1, {"language"}),
        ("DELETE FROM film_actor WHERE actor_id = 1", "film_actor", 19, {"film_actor", "actor_info", "film_list", "nicer_but_slower_film_list"}),
        # TRUNCATE moves no counter, only the relfilenode.
        ("TRUNCATE film_category", None, 0, {"film_category", "actor_info", "film_list", "nicer_but_slower_film_list", "sales_by_film_category"}),
        ("REFRESH MATERIALIZED VIEW rental_by_category", None, 0, {"rental_by_category"}),
    ],
    ids=["insert", "update", "delete", "truncate", "refresh"],
)
def test_each_kind_of_write_moves_the_version_of_what_it_touched(
    db: PgTarget, pagila_server: EmbeddedPostgres, statement: str, table: str | None, changes: int, moved: set[str]
) -> None:
    before = _versions(db)
    assert _versions(db) == before  # nothing written, nothing moved
    pagila_server.execute(statement, db.database)
    if table is not None:
        wait_for_changes(pagila_server, db, table, changes)
    after = _versions(db)
    assert _moved(before, after) == moved


def test_same_data_gives_the_same_version_in_another_process_and_in_sync_events(
    db: PgTarget, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    here = _versions(db)
    script = (
        "import json, sys\n"
        "from dagster_postgres_connection_tests.observe.test_data_versions import _versions\n"
        "from dagster_postgres_connection_tests.utils import PgTarget\n"
        "from sqlalchemy.engine import URL\n"
        "fields = json.loads(sys.argv[1])\n"
        "target = PgTarget(**fields, superuser_url=URL.create('postgresql'))\n"
        "print(json.dumps(_versions(target)))\n"
    )
    fields = {
        "version": db.version, "host": db.host, "port": db.port, "socket_dir": str(db.socket_dir),
        "database": db.database, "user": db.user, "password": db.password,
    }
    other = subprocess.run(
        [sys.executable, "-c", script, json.dumps(fields)], capture_output=True, text=True, check=True
    )
    assert json.loads(other.stdout.strip().splitlines()[-1]) == here

    events = data_events(run_job(build_defs(db, tmp_path / "snapshot"), instance))
    assert (events["actor"].tags or {}).get(DATA_VERSION_TAG) == here["actor"]
    assert (events["rental_by_category"].tags or {}).get(DATA_VERSION_TAG) == here["rental_by_category"]
