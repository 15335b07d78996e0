"""Warnings while a code location loads: each said once, and none of Dagster's own noise.

Dagster builds a code location's definitions twice in one load: a code server (`dg dev`,
`dg check defs`, `dagster definitions validate`) first calls the `@dg.definitions` function under
an INITIALIZATION `DefinitionsLoadContext` to resolve it (`get_loadable_targets(resolve_lazy_defs=
True)` in `dagster/_grpc/server.py`), then again under a new RECONSTRUCTION context to build the
repository (`reconstruct_repository_def_from_pointer`). `warn_at_load` says a message of the first
build and skips its repeat in the second; any other load (a run's process, which only
reconstructs, a plain Python load, tests) warns every time.

Dagster also converts check definitions back into `AssetChecksDefinition`s while building the
repository (`repository_data.py`, `AssetChecksDefinition(**ad.get_attributes_dict())`), passing
their `execution_type` and so raising its own `BetaWarning` for that parameter on every load:
nothing our definitions can avoid, and nothing a user can act on. `ignore_check_conversion_beta_warning`
filters that one warning, from that one place.
"""

import logging
import re
import threading
import warnings

from dagster import BetaWarning, get_dagster_logger

_lock = threading.Lock()
# Said while initializing, not yet repeated by the reconstruction that follows.
_said_at_initialization: dict[str, None] = {}


def _current_load_type() -> str | None:
    """The type of Dagster's current `DefinitionsLoadContext` (only private API exposes it)."""
    try:
        from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext
    except ImportError:  # moved: warn every time rather than fail a load
        return None
    return DefinitionsLoadContext.get().load_type.name if DefinitionsLoadContext.is_set() else None


def warn_at_load(message: str) -> None:
    """`get_dagster_logger().warning(message)`, not repeated by the second build of one load
    (see the module docstring)."""
    load_type = _current_load_type()
    with _lock:
        if load_type == "RECONSTRUCTION" and message in _said_at_initialization:
            del _said_at_initialization[message]
            return
        if load_type == "INITIALIZATION":
            _said_at_initialization[message] = None
    get_dagster_logger().warning(message)


_BETA_MESSAGE = "Parameter `execution_type` of function `AssetsDefinition.__init__` is currently in beta"
_CONVERSION_MODULE = "dagster._core.definitions.repository_definition.repository_data"


class _CheckConversionBetaWarningFilter(logging.Filter):
    """Drops that one warning where Dagster's processes log it: their `warnings.showwarning`
    (`dagster/_utils/log.py`) sends `path:line: BetaWarning: message` to the `dagster` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (_BETA_MESSAGE in text and f"{_CONVERSION_MODULE.replace('.', '/')}.py" in text)


def ignore_check_conversion_beta_warning() -> None:
    """Ignore Dagster's `BetaWarning` for `execution_type`, raised by its own conversion of check
    definitions in `repository_data.py` (see the module docstring); any other stays.

    Both as a warnings filter (plain Python) and as a filter on the `dagster` logger: Dagster may
    import user code inside `warnings.catch_warnings()`, whose end drops the first (seen in the
    code server of `dg dev`), and its processes show warnings through that logger.
    """
    warnings.filterwarnings(
        "ignore",
        message=re.escape(_BETA_MESSAGE),
        category=BetaWarning,
        module=re.escape(_CONVERSION_MODULE),
    )
    logger = logging.getLogger("dagster")
    if not any(isinstance(existing, _CheckConversionBetaWarningFilter) for existing in logger.filters):
        logger.addFilter(_CheckConversionBetaWarningFilter())
