"""Opening connections: read-only, time-bounded, and never leaking the password.

Every session is `default_transaction_read_only`, has a connect timeout, a `statement_timeout`
and a `lock_timeout`. URLs are built with `URL.create` (escapes special characters, masks the
password in repr), and driver errors are turned into our own messages, which name the user,
host and database but never a credential.
"""

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import URL, Connection, Engine, Row, TextClause, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from dagster_postgres_connection.config import PostgresConnectionSettings
from dagster_postgres_connection.errors import (
    PostgresCatalogChangedError,
    PostgresCatalogReadError,
    PostgresDatabaseUnavailableError,
    PostgresUnreachableError,
)

APPLICATION_NAME = "dagster-postgres-connection"

# A relation dropped after our snapshot was taken, then looked up by OID "as of now" by a
# function like pg_get_viewdef: concurrent DDL, gone on the next attempt.
_CONCURRENT_DDL = re.compile(r"could not open relation with OID|cache lookup failed for|could not find tuple for")

_VANISHED_RELATION = re.compile(
    r"could not open relation with OID (\d+)|cache lookup failed for attribute \d+ of relation (\d+)"
)
_SAVEPOINT = "dpc_catalog"
_LOCK_BUDGET = "dpc_lock_timeout_seconds"  # conn.info key: the configured total lock wait
_DEPARSE_LOCK_WAIT_MS = 100  # well below PostgreSQL's default deadlock_timeout (1 s)
_MAX_VANISHED = 200  # relations dropped during one read before we give up (then: retried later)
_WORK_MEM = "32MB"

# Server messages about one database: `database "x" does not exist`, `permission denied for
# database "x"`, `database "x" is not currently accepting connections`.
_DATABASE_LEVEL = re.compile(
    r'database ".*" (does not exist|is not currently accepting connections)|permission denied for database'
)


def build_url(settings: PostgresConnectionSettings, database: str) -> URL:
    query: dict[str, str] = {}
    if settings.sslmode:
        query["sslmode"] = settings.sslmode
    if settings.sslrootcert:
        query["sslrootcert"] = settings.sslrootcert
    return URL.create(
        "postgresql+psycopg2",  # SQLAlchemy 2.1 defaults to psycopg 3; we ship psycopg2
        username=settings.username,
        password=settings.password.get(),
        host=settings.host,
        port=settings.port,
        database=database,
        query=query,
    )


class StatementCounter:
    """Counts the SQL statements an engine sends: the proof that reads are batched."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: object) -> None:
        self.count += 1


def create_catalog_engine(
    settings: PostgresConnectionSettings, database: str
) -> tuple[Engine, StatementCounter]:
    """An engine for one database, one connection at a time (no pool kept between reads)."""
    options = " ".join(
        (
            "-c default_transaction_read_only=on",
            f"-c statement_timeout={settings.statement_timeout_seconds * 1000}",
            f"-c lock_timeout={settings.lock_timeout_seconds * 1000}",
            "-c idle_in_transaction_session_timeout=600000",
            # Catalog statements hash pg_class, pg_description, ...: at 50k tables the largest
            # hash (column comments, ~14 MB) went to disk in batches under the default 4 MB,
            # spilling ~70 MB of column rows with it. 32 MB (x hash_mem_multiplier) keeps every
            # hash of a catalog read in memory to beyond 100k tables; these statements are the
            # session's only work, one session per database read.
            f"-c work_mem={_WORK_MEM}",
            # No parallel workers: from ~50k tables the planner parallelizes the key statements,
            # whose per-row work (column-name probes, deparsing) stays in the leader anyway, and
            # building their shared hash of pg_class kept each of 3 processes busy 112 ms
            # (serially, of the tables alone: 42 ms). A catalog read should not take a busy
            # server's workers either (benchmarks/README.md, "Catalog statements from 10k to 50k").
            "-c max_parallel_workers_per_gather=0",
        )
    )
    engine = create_engine(
        build_url(settings, database),
        poolclass=NullPool,
        connect_args={
            "connect_timeout": settings.connect_timeout_seconds,
            "application_name": APPLICATION_NAME,
            "options": options,
        },
        hide_parameters=True,
    )
    counter = StatementCounter()
    event.listen(engine, "before_cursor_execute", counter)
    return engine, counter


def describe_connection_error(
    error: BaseException, settings: PostgresConnectionSettings, database: str
) -> str:
    """One clear line plus a hint, from a driver error: names user/host/database, never the password."""
    raw = str(getattr(error, "orig", None) or error).strip()
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    # libpq's lines end without a full stop ("Connection refused" / "Is the server running..."):
    # end each sentence, so that they and the hint below do not run together.
    server_message = " ".join(_end_sentence(line) for line in lines[:-1]) + (" " if len(lines) > 1 else "") + "".join(lines[-1:])
    where = f"`{settings.username}`@`{settings.location}`/`{database}`"
    hint = _connection_hint(server_message.lower(), settings, database)
    return f"Could not connect to {where}: {_end_sentence(_redact(server_message, settings))} {hint}"


def _end_sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", ":", ";")) else f"{text}."


def _connection_hint(lowered: str, settings: PostgresConnectionSettings, database: str) -> str:
    # Order matters: TLS messages also mention files that "do not exist".
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        if os.environ.get(settings.password.env_var) == "":
            return (
                f"The environment variable `{settings.password.env_var}` is empty: set it to the "
                f"password of role `{settings.username}`."
            )
        return (
            f"Check that the environment variable `{settings.password.env_var}` holds the password "
            f"of role `{settings.username}`."
        )
    if "does not match host name" in lowered:
        return (
            f"The server's certificate is issued for another name than `host` (`{settings.host}`): "
            "connect with the name in the certificate, or use `sslmode: verify-ca` to check only its issuer."
        )
    if "root certificate file" in lowered:
        return "Set `sslrootcert` to the CA certificate that signed the server's certificate, or use `sslmode: require`."
    if "certificate verify failed" in lowered:
        return "The certificate in `sslrootcert` did not sign the server's certificate: point `sslrootcert` at the right CA."
    if "server does not support ssl" in lowered:
        return "The server does not offer TLS: use `sslmode: prefer` (or `disable`), or enable `ssl` on the server."
    if "ssl" in lowered or "certificate" in lowered:
        return "Check `sslmode` and `sslrootcert` against the server's certificate."
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"Check `host`: `{settings.host}` does not resolve."
    if "timeout expired" in lowered:
        return (
            f"The server did not answer within {settings.connect_timeout_seconds} s: check `host`, "
            f"`port` and firewalls, or raise `connect_timeout_seconds`."
        )
    if "connection refused" in lowered or "no such file or directory" in lowered:
        return f"Nothing listens on `{settings.location}`: check `host` and `port`, and that Postgres is running."
    if _is_database_level(lowered):
        if "does not exist" in lowered:
            return f"Database `{database}` does not exist (or was just dropped): fix `databases` or the `databases` filter."
        if "permission denied" in lowered:
            return f'Grant it: GRANT CONNECT ON DATABASE "{database}" TO "{settings.username}";'
        return "The database does not accept connections right now; it is skipped."
    if "not permitted to log in" in lowered:
        return f'Role `{settings.username}` cannot log in: ALTER ROLE "{settings.username}" LOGIN;'
    return "See the server's message above."


def _is_database_level(lowered: str) -> bool:
    """Failures that concern one database only (the others can still be read)."""
    return bool(_DATABASE_LEVEL.search(lowered))


def _redact(message: str, settings: PostgresConnectionSettings) -> str:
    # Belt and braces: libpq never echoes the password, but a DSN in a message would.
    try:
        secret = settings.password.get()
    except Exception:
        return message
    return message.replace(secret, "***") if secret else message


def execute_despite_drops(
    conn: Connection, statement: TextClause, params: Mapping[str, Any] | None = None
) -> Sequence[Row[Any]]:
    """Runs a deparsing catalog statement (one using `queries._LOCKED_RELATIONS_CTE`) inside
    `catalog_transaction`, so that concurrent DDL neither fails the sync nor waits on it.

    - Our REPEATABLE READ snapshot still lists a relation dropped a moment ago, but the deparse
      functions (`pg_get_viewdef`, ...) look it up as of now and fail naming its OID: the
      statement is retried with that OID in `:vanished`, each retry ruling out one relation.
    - A deparse call waits at most `_DEPARSE_LOCK_WAIT_MS` for another session's lock: then the
      statement is retried with a fresh look at `pg_locks`, until `lock_timeout_seconds` is spent.

    Before a retry the transaction rolls back to the savepoint `catalog_transaction` set: nothing
    to undo (it is read-only), the snapshot stays, and every lock we took is released, so the
    other session proceeds instead of becoming a deadlock victim.
    """
    retry = _Retry(conn)
    while True:
        try:
            return conn.execute(statement, retry.params(params)).all()
        except DBAPIError as error:
            retry.prepare(error)


def stream_despite_drops(
    conn: Connection,
    statement: TextClause,
    params: Mapping[str, Any] | None,
    *,
    batch_size: int,
    consume: Callable[[Sequence[Row[Any]]], None],
    restart: Callable[[], None],
) -> None:
    """`execute_despite_drops`, with the rows handed to `consume` `batch_size` at a time from a
    server-side cursor, so that they never all sit in memory at once (~760k column rows at 50k
    tables: ~500 MB of libpq buffer and Python rows). After a retry the rows come again from the
    start: `restart` is called first, so the consumer drops what it got."""
    retry = _Retry(conn)
    while True:
        try:
            # An option of this statement only: set on the connection, it would stay there (SQLAlchemy
            # 2 changes the connection in place) and turn every later statement into a cursor.
            result = conn.execute(statement.execution_options(stream_results=True), retry.params(params))
            for batch in result.yield_per(batch_size).partitions():
                consume(batch)
            return
        except DBAPIError as error:
            retry.prepare(error)
            restart()


class _Retry:
    """What `execute_despite_drops` does between two attempts of a statement."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.vanished: list[int] = []
        self.lock_deadline = time.monotonic() + conn.info[_LOCK_BUDGET]

    def params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**(params or {}), "vanished": self.vanished, "deparse_lock_wait": f"{_DEPARSE_LOCK_WAIT_MS}ms"}

    def prepare(self, error: DBAPIError) -> None:
        """Re-raises `error` unless a new attempt can succeed; else rolls back to the savepoint."""
        message = str(error.orig)
        match = _VANISHED_RELATION.search(message)
        waited = "lock timeout" in message or "deadlock detected" in message
        if match is None and not (waited and time.monotonic() < self.lock_deadline):
            raise error
        if len(self.vanished) >= _MAX_VANISHED:
            raise error
        self.conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        if match is not None:
            self.vanished.append(int(next(group for group in match.groups() if group)))
        else:
            time.sleep(_DEPARSE_LOCK_WAIT_MS / 1000)


@contextlib.contextmanager
def catalog_transaction(engine: Engine, settings: PostgresConnectionSettings, database: str) -> Iterator[Connection]:
    """One read-only REPEATABLE READ transaction: the whole database is read from one snapshot."""
    try:
        conn = engine.connect()
    except (OperationalError, DBAPIError) as error:
        message = describe_connection_error(error, settings, database)
        if _is_database_level(str(getattr(error, "orig", None) or error).lower()):
            raise PostgresDatabaseUnavailableError(message) from None
        raise PostgresUnreachableError(message) from None
    try:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            # One savepoint, so a statement tripping over a concurrent DROP can be retried
            # (execute_despite_drops) without a new transaction, hence a new snapshot.
            conn.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
            conn.info[_LOCK_BUDGET] = settings.lock_timeout_seconds
            yield conn
    except DBAPIError as error:
        message = " ".join(str(error.orig).split()) if error.orig else type(error).__name__
        if "lock timeout" in message:
            message += (
                f" (lock_timeout_seconds={settings.lock_timeout_seconds}: another session holds a lock "
                "the catalog read needs; sync again later, or raise `lock_timeout_seconds`)"
            )
        elif re.search(r"statement timeout|canceling statement", message):
            message += (
                f" (statement_timeout_seconds={settings.statement_timeout_seconds}; raise it for very large catalogs)"
            )
        error_class = PostgresCatalogChangedError if _CONCURRENT_DDL.search(message) else PostgresCatalogReadError
        raise error_class(
            f"Reading the catalog of `{database}` on `{settings.location}` failed: {_redact(message, settings)}"
        ) from None
    finally:
        conn.close()
