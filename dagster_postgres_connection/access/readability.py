"""Can the connecting role read a relation? The one rule, which the reader (what it skips), `check`
(what it counts and fixes) and `preview` (what it shows as skipped) all apply."""

from enum import Enum


class Readability(Enum):
    """Whether the connecting role can read a relation, and if not, which privilege it lacks."""

    READABLE = "readable"
    NO_SCHEMA_USAGE = "no_schema_usage"  # USAGE on its schema comes first: without it, nothing inside
    NO_SELECT = "no_select"

    @classmethod
    def of(cls, *, has_usage: bool | None, has_select: bool | None) -> "Readability":
        """From `has_schema_privilege(..., 'USAGE')` and `has_table_privilege(..., 'SELECT')`.

        NULL (None) counts as readable: `has_*_privilege` look a relation up as of now, so one
        dropped while we read answers NULL, and the read keeps it as its snapshot saw it (foreign
        keys and view deps pointing at it never dangle).
        """
        if has_usage is False:
            return cls.NO_SCHEMA_USAGE
        if has_select is False:
            return cls.NO_SELECT
        return cls.READABLE
