"""Column rows of `queries.LIST_COLUMNS` -> each relation's `PostgresColumn`s, in table order.

The reader streams the rows (`connection.stream_despite_drops`) into a `ColumnBuilder`, which
turns them into records on a worker thread as they arrive, so that the rows of ~760k columns
(50k tables) never all sit in memory at once.
"""

import queue
import sys
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dagster_postgres_connection.catalog.models import COLUMN_FIELDS, PostgresColumn

RelationName = tuple[str, str]  # (schema, name), the Inspector's shape

# Column rows fetched (and built into records) at a time: ~2 MB of rows.
COLUMN_BATCH = 10_000


class ColumnBuilder:
    """`queries.LIST_COLUMNS` rows -> each relation's columns, in order, built on a worker thread
    from batches of rows as they arrive (a bounded queue: the rows never all sit in memory).

    Strings are interned (names and types: a few hundred distinct ones in most catalogs;
    defaults and comments repeat too): at 10k tables ~150k column records stay in memory to the
    end of a sync, 760k at 50k.
    """

    _RESTART = object()
    _DONE = object()

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._batches: queue.Queue[Any] = queue.Queue(maxsize=4)
        self._building = pool.submit(self._build)

    def add(self, rows: Sequence[Any]) -> None:
        self._put(rows)

    def restart(self) -> None:
        """The statement is run again: the rows come again from the start."""
        self._put(self._RESTART)

    def close(self) -> None:
        self._put(self._DONE)

    def result(self) -> dict[RelationName, list[PostgresColumn]]:
        return self._building.result()

    def _put(self, item: object) -> None:
        while True:
            try:
                self._batches.put(item, timeout=0.5)
                return
            except queue.Full:
                if self._building.done():  # the worker failed: say why, rather than wait forever
                    self._building.result()
                    raise RuntimeError("the column builder stopped early") from None

    def _build(self) -> dict[RelationName, list[PostgresColumn]]:
        columns: dict[RelationName, list[PostgresColumn]] = defaultdict(list)
        positions: dict[RelationName, list[int]] = defaultdict(list)  # small ints: 8 bytes each
        labels: dict[tuple[str, ...], list[str]] = {}  # one list per enum, shared by its columns
        fields = COLUMN_FIELDS
        intern = sys.intern
        while (batch := self._batches.get()) is not self._DONE:
            if batch is self._RESTART:
                columns.clear()
                positions.clear()
                continue
            # tuple unpacking and one constructor call per row, nothing more
            for row in batch:
                schema, relation, position, name, type_, *raw = tuple(row)
                # Defaults, comments and the rest repeat a lot (templates, `now()`, ...): one copy each.
                values: list[Any] = [intern(value) if value.__class__ is str else value for value in raw]
                values[:0] = (intern(name), intern(type_))
                enum_labels = values[_ENUM_LABELS]
                # `()` as a loaded snapshot has it, instead of ~760k empty lists at 50k tables
                values[_ENUM_LABELS] = labels.setdefault(tuple(enum_labels), enum_labels) if enum_labels else ()
                key = (schema, relation)
                columns[key].append(PostgresColumn(**dict(zip(fields, values, strict=True))))
                positions[key].append(position)
        # The rows come in no particular order (LIST_COLUMNS does not sort them on the server):
        # table order is the column number. Mostly they come in order already.
        for key, numbers in positions.items():
            if numbers != sorted(numbers):
                order = sorted(range(len(numbers)), key=numbers.__getitem__)
                columns[key] = [columns[key][index] for index in order]
        return dict(columns)


_ENUM_LABELS = COLUMN_FIELDS.index("enum_labels")
