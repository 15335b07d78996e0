"""Test helpers that are not fixtures (fixtures live in ``conftest.py``)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PgTarget:
    """Where a test database lives and how the read-only role reaches it.

    Build configs for TCP from ``host``/``port`` and for the socket from ``socket_dir``/``port``.
    """

    version: int
    host: str
    port: int
    socket_dir: Path
    database: str
    user: str
    password: str = field(repr=False)
    superuser_url: URL = field(repr=False)

    def url(self, *, tcp: bool = True, password: str | None = None) -> URL:
        """URL of the read-only role; ``password`` overrides the right one (for failure tests)."""
        return URL.create(
            "postgresql+psycopg2",
            username=self.user,
            password=self.password if password is None else password,
            host=self.host if tcp else str(self.socket_dir),
            port=self.port,
            database=self.database,
        )


@dataclass
class StatementCounter:
    """SQL statements sent to the server, in order (an ``executemany`` counts once)."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(bind: Engine | Connection | type[Engine]) -> Iterator[StatementCounter]:
    """Count the statements ``bind`` sends while the block runs.

    Pass an engine the library created, or the ``Engine`` class itself to count every engine.

    Example:
        .. code-block:: python

            with count_statements(engine) as counter:
                read_catalog(...)
            assert counter.count == 7, counter.statements
    """
    counter = StatementCounter()

    def _record(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        counter.statements.append(statement)

    event.listen(bind, "before_cursor_execute", _record)
    try:
        yield counter
    finally:
        event.remove(bind, "before_cursor_execute", _record)


def connection_attributes(
    target: PgTarget, *, password_env: str, name: str = "pagila_prod", **extra: Any
) -> dict[str, Any]:
    """`defs.yaml` attributes of a connection to `target`, the password read from `password_env`."""
    return {
        "name": name,
        "host": target.host,
        "port": target.port,
        "username": target.user,
        "password": f"{{{{ env.{password_env} }}}}",
        "databases": [target.database],
        **extra,
    }


@contextmanager
def scaffolded_connection(attributes: dict[str, Any]) -> Iterator[tuple[Any, Path]]:
    """A `dg` sandbox project holding one connection component: yields (sandbox, defs path)."""
    from dagster.components.testing import create_defs_folder_sandbox

    from dagster_postgres_connection import PostgresConnectionComponent

    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=PostgresConnectionComponent,
            defs_yaml_contents={
                "type": "dagster_postgres_connection.PostgresConnectionComponent",
                "attributes": attributes,
            },
        )
        yield sandbox, path
