"""`interned`: one copy of each name that many catalog records repeat.

psycopg2 makes a new `str` for every value of every row. At 50k tables the snapshot's keys,
indexes and grants repeat the same few thousand column names, schemas, owners, roles and index
methods hundreds of thousands of times (~60 MB of copies, measured with the snapshot's strings
walked at 10k tables and scaled); the records keep one interned copy of each. Unique values
(relation, index and constraint names, definitions) are left alone: interning them would only
add an entry to the interpreter's table.
"""

import sys
from collections.abc import Iterable

intern = sys.intern


def interned(values: Iterable[str]) -> list[str]:
    """A list of the values, each the interned copy."""
    return [intern(value) for value in values]


def interned_or_none(value: str | None) -> str | None:
    return None if value is None else intern(value)
