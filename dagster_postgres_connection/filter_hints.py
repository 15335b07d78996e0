"""Patterns that are valid regular expressions but were surely meant as globs.

`film*` is a valid regex: `fil` followed by any number of `m`, so it selects `film` and not
`film_actor`, silently. A `*` right after a letter, digit, `_`, `-` or `$` (not escaped, not after
`.`, `]`, `)` or `}`) is read as a glob's "anything": we warn and suggest `.*` there. Free of
`dagster`: the CLI's `sync` path uses it too.
"""

import re

from dagster_postgres_connection.config import PostgresFilters

# An unescaped `*` after a name character: the glob reading of `*`.
_GLOB_STAR = re.compile(r"(?<!\\)(?P<before>[\w$-])\*")


def glob_suggestion(pattern: str) -> str | None:
    """`film*` -> `film.*`; None when `pattern` does not look like a glob."""
    if not _GLOB_STAR.search(pattern):
        return None
    return _GLOB_STAR.sub(lambda match: f"{match['before']}.*", pattern)


def glob_warnings(filters: PostgresFilters, attribute: str = "filters") -> list[str]:
    """One message per glob-like pattern of `filters`, naming its attribute and the fix."""
    messages = []
    for level in ("databases", "schemas", "tables", "views"):
        name_filter = getattr(filters, level)
        for side in ("include", "exclude"):
            for pattern in getattr(name_filter, side):
                suggestion = glob_suggestion(pattern)
                if suggestion is not None:
                    messages.append(
                        f"`{attribute}.{level}.{side}`: pattern '{pattern}' looks like a glob, but filters are "
                        f"regular expressions matching the whole name, where `*` repeats the character before "
                        f"it. Write '{suggestion}' to match any characters there."
                    )
    return messages
