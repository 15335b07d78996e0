"""`get_dagster_logger()` without importing `dagster`.

Dagster's `get_dagster_logger()` is `logging.getLogger("dagster").getChild("builtin")` with the
parent's level forced to DEBUG (`dagster/_utils/log.py`). Returning that same logger object
keeps our warnings in the event log of a run (Dagster captures `dagster.*` records there),
while the catalog reader and the CLI's `sync` need not import the `dagster` package.
"""

import logging


def get_dagster_logger() -> logging.Logger:
    """The logger `dagster.get_dagster_logger()` returns: `dagster.builtin`."""
    base = logging.getLogger("dagster")
    base.setLevel(logging.DEBUG)  # as Dagster does: it enforces DEBUG on its base logger
    return base.getChild("builtin")
