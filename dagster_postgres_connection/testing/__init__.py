"""Test helpers: a real, embedded PostgreSQL server (needs the ``dev`` extra).

Not imported by ``dagster_postgres_connection`` itself; import it explicitly.
"""

from dagster_postgres_connection.testing.embedded_postgres import (
    LOCALHOST,
    PAGILA_DIR,
    SUPERUSER,
    SUPPORTED_VERSIONS,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    find_free_port,
)

__all__ = [
    "LOCALHOST",
    "PAGILA_DIR",
    "SUPERUSER",
    "SUPPORTED_VERSIONS",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "find_free_port",
]
