"""Minimal reproduction (Dagster-side, dagster_shared 1.13): a `@record` class keeps the locals of
the frame that first constructs it alive for as long as the class lives.

The checked `__new__` is compiled at the first construction, with the caller's frame locals
merged into the compiled function's globals (`dagster_shared/record/__init__.py`,
`EvalContext.update_from_frame` then `compile_fn`'s `exec(body, merged_ns)`). Whatever that
frame held (here a large payload) is never freed. In this project the first `PostgresDatabase`
was built inside the snapshot decoder, whose frame held the whole decoded catalog: ~110 MB kept
for good in every 10,000-table code server. Worked around in `catalog/_records.py`.

    python benchmarks/dagster_record_locals_repro.py
"""

import gc
import weakref

from dagster_shared.record import record


class Payload:
    """Stands for a large object (a decoded catalog)."""


@record
class Item:
    name: str


def first_construction() -> weakref.ref[Payload]:
    payload = Payload()
    Item(name="x")  # the first construction of `Item`: compiles its `__new__` in this frame
    return weakref.ref(payload)


def later_construction() -> weakref.ref[Payload]:
    payload = Payload()
    Item(name="y")  # already compiled: nothing captured
    return weakref.ref(payload)


if __name__ == "__main__":
    first, later = first_construction(), later_construction()
    gc.collect()
    print(f"payload of the frame that first built the record still alive: {first() is not None}")
    print(f"payload of a frame that built it later still alive:          {later() is not None}")
