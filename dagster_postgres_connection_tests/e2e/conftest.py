"""End-to-end fixtures: the quickstart example served by `dg dev` against the test Postgres.

The e2e tests run against the newest selected PostgreSQL version only. The catalog itself is
tested on every version by the other tests; what these add (the webserver, GraphQL, the UI) does
not depend on the server version, and one `dg dev` start costs 15-30 s on a busy 2-core machine.
"""

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg2 import sql

from dagster_postgres_connection.testing import EmbeddedPostgres
from dagster_postgres_connection_tests.e2e.webserver import DagsterWebserver
from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

EXAMPLE = REPO_ROOT / "examples" / "quickstart"
CONNECTION = "pagila_prod"
# Pagila has no comments; these make descriptions visible in GraphQL and the screenshots.
FILM_COMMENT = "A film that can be rented: one row per title, with its rating and rental terms."
RATING_COMMENT = "MPAA rating: G, PG, PG-13, R or NC-17."


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselects e2e items of every PostgreSQL version but the newest selected one."""
    here = Path(__file__).parent

    def version(item: pytest.Item) -> int | None:
        callspec = getattr(item, "callspec", None)
        return callspec.params.get("pg_server") if callspec else None

    e2e = [item for item in items if Path(item.path).is_relative_to(here) and version(item) is not None]
    if not e2e:
        return
    newest = max(version(item) or 0 for item in e2e)
    dropped = [item for item in e2e if version(item) != newest]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def example_env(target: PgTarget, dagster_home: Path, project: Path) -> dict[str, str]:
    """The environment a user would set: the three variables the example reads, nothing else."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"), os.environ.get("PYTHONPATH")])),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "POSTGRES_CONNECTION_HOST": target.host,
        "POSTGRES_CONNECTION_PORT": str(target.port),
        "POSTGRES_CONNECTION_PASSWORD": target.password,
    }


@pytest.fixture(name="film_comments", scope="module")
def film_comments_fixture(pagila_server: EmbeddedPostgres, pagila: PgTarget) -> Iterator[None]:
    """Comments on `public.film` and its `rating` column while the module runs, then the old ones.

    The shared `pagila` is otherwise read-only; this module-scoped change is undone before any
    other module runs (the suite runs serially).
    """
    (old_table, old_column), = pagila_server.query(
        "SELECT obj_description('public.film'::regclass, 'pg_class'), "
        "col_description('public.film'::regclass, "
        "(SELECT attnum FROM pg_attribute WHERE attrelid = 'public.film'::regclass AND attname = 'rating'))",
        database=pagila.database,
    )

    def comment(table: str | None, column: str | None) -> None:
        pagila_server.execute(
            sql.SQL("COMMENT ON TABLE public.film IS {}; COMMENT ON COLUMN public.film.rating IS {}").format(
                sql.Literal(table), sql.Literal(column)
            ),
            database=pagila.database,
        )

    comment(FILM_COMMENT, RATING_COMMENT)
    try:
        yield
    finally:
        comment(old_table, old_column)


@pytest.fixture(name="webserver", scope="module")
def webserver_fixture(
    pagila: PgTarget, film_comments: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterWebserver]:
    """`dg dev` on a copy of examples/quickstart (so the repository's copy gets no state).

    No snapshot exists yet, so the code location reads the catalog on its first load, as it
    does for a new user. Stopped, with all its processes, when the module ends or fails.
    """
    root = tmp_path_factory.mktemp("e2e")
    project = root / "quickstart"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".local_defs_state", "__pycache__", ".env"))
    server = DagsterWebserver(project, example_env(pagila, root / "dagster_home", project), root / "dg_dev.log")
    with server:
        # The "Join the Dagster community" dialog would cover the screenshots.
        server.graphql("mutation { setNuxSeen }")
        yield server
