"""Our errors as `dagster.Failure` inside ops.

`PostgresConnectionError` is a plain exception, so that reading a catalog (and the CLI) does
not import `dagster`. Inside an op, a `Failure` is what makes the run show our message as the
step's failure description instead of a framework wrapper around a traceback.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Failure

from dagster_postgres_connection.errors import PostgresConnectionError


@contextmanager
def reported_as_failure() -> Iterator[None]:
    """Re-raises a `PostgresConnectionError` as a `Failure` with the same message."""
    try:
        yield
    except PostgresConnectionError as error:
        raise Failure(description=error.message) from error
