"""`compile_record_constructors`: build `@record` constructors before any catalog is at hand.

dagster_shared compiles a record class's checked `__new__` at its first construction, and puts
the locals of the frame that constructs it into the compiled function's globals
(`EvalContext.update_from_frame`, to resolve forward references). Those locals then live as long
as the class. When that first construction was inside the snapshot decoder or a loop over a
catalog, the whole catalog stayed alive: ~110 MB of a 10,000-table code server's memory, for
good, after its Definitions were built. Compiling each constructor at import, from a frame
holding nothing, keeps that frame's locals the only ones captured.
"""

from collections.abc import Mapping
from contextlib import suppress

from dagster_shared.check.record import is_record


def compile_record_constructors(namespace: Mapping[str, object]) -> None:
    """Compiles the constructor of every `@record` class defined in the module of `namespace`
    (call it with `globals()` at the end of the module)."""
    module = namespace["__name__"]
    for value in list(namespace.values()):
        if isinstance(value, type) and is_record(value) and value.__module__ == module:
            # Compiles on the way in, then fails on the missing arguments; any other failure
            # leaves the compilation to the first real construction, as before.
            with suppress(Exception):
                value()
