"""Errors raised by dagster-postgres-connection.

Every message names the object in backticks, says what is wrong and what to do. None of them
ever contains the password: connection errors are rebuilt from the server's message, never
from a DSN.

They are plain exceptions, so the catalog reader and the `sync` command need no `dagster`
import. Inside Dagster, the sync, schema-check and profile ops re-raise them as
`dagster.Failure` (`observe/failures.py`), so a run still shows the message as the step's
failure description.
"""


class PostgresConnectionError(Exception):
    """Base class of every error this library raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PostgresConfigError(PostgresConnectionError):
    """The configuration is invalid: a bad regex, name, port, or a missing environment variable."""


class PostgresUnreachableError(PostgresConnectionError):
    """The server could not be reached or refused the login."""


class PostgresDatabaseUnavailableError(PostgresUnreachableError):
    """One database cannot be opened (missing, dropped, no CONNECT); the others still can.

    The reader skips such a database with a warning, while any other `PostgresUnreachableError`
    (password, host, port, TLS) ends the whole sync at once: retrying it per database would
    only repeat the same failure N times.
    """


class PostgresCatalogReadError(PostgresConnectionError):
    """Reading the catalog failed after connecting (timeout, lost connection, ...)."""


class PostgresCatalogChangedError(PostgresCatalogReadError):
    """A relation vanished while its database was read: DDL ran concurrently.

    The REPEATABLE READ snapshot still lists the relation, but functions such as
    `pg_get_viewdef` look it up as of now. Transient: the reader retries the database.
    """


class PostgresSnapshotError(PostgresConnectionError):
    """No snapshot, or a snapshot that is corrupt or was written by an incompatible version."""


class PostgresSyncRefusedError(PostgresConnectionError):
    """A sync saw too many relations vanish at once and kept the previous snapshot."""
