"""The snapshot file, format 3: every record as a JSON row of its field values, in C-speed `json`.

Dagster's serdes (`serialize_value`) writes each record as an object with its class name and
field names and walks the tree in Python: for a 10k-table catalog (~11k relations, ~150k
columns) that took ~2.3 s to write and ~1.7 s to read, 5-8x the `json` calls themselves.
Here a record is packed as the list of its field values, nested records the same way, trailing
defaults dropped; the field names of every record type are written once, in the file's header:

    {"format": "dagster-postgres-connection/snapshot", "format_version": 3,
     "fields": {"PostgresRelation": ["database", "schema", ...], ...},
     "summary": {"catalog_fingerprints": {...}, ...},
     "snapshot": ["pagila_prod", "localhost", 5432, ...]}

`summary` (`summary.py`, optional) comes before the snapshot: `load_summary` reads only the head
of the file to decide whether a sync may skip the read.

Reading maps each row through the header's field names, so the rules of serdes still hold: a
field added later takes its default in an older file, a stored field this version does not know
is dropped. Records are built with their checked constructors, so a malformed file fails to load
instead of loading wrong values. Which fields hold nested records (one, optional or a sequence)
and enums is read off each record's annotations.
"""

import json
import operator
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from dagster_shared.check.record import is_record
from dagster_shared.record import get_record_annotations, get_record_defaults, replace

from dagster_postgres_connection.catalog.models import (
    PostgresCatalogSnapshot,
    PostgresDatabase,
    PostgresRelation,
)
from dagster_postgres_connection.catalog.summary import SnapshotSummary

FORMAT_NAME = "dagster-postgres-connection/snapshot"


class _RecordCodec:
    """Packs one record class to rows and back; nested record and enum fields by position."""

    def __init__(self, cls: type, codecs: dict[type, "_RecordCodec"]) -> None:
        codecs[cls] = self
        self.cls = cls
        annotations = get_record_annotations(cls)
        self.fields: tuple[str, ...] = tuple(annotations)
        self._values = operator.attrgetter(*self.fields)  # records forbid iteration; this runs in C
        defaults = get_record_defaults(cls)
        # Per field, the values that count as its default (an empty tuple default also matches []).
        self.trailing_defaults = [
            () if name not in defaults else ((), []) if defaults[name] == () else (defaults[name],)
            for name in self.fields
        ]
        # Field index -> how to (un)pack it; plain values pass through untouched.
        self.nested: dict[int, tuple[str, Any]] = {}
        for index, annotation in enumerate(annotations.values()):
            shape, inner = _shape(annotation)
            if shape == "enum":
                self.nested[index] = (shape, inner)
            elif shape in ("one", "many"):
                self.nested[index] = (shape, codecs.get(inner) or _RecordCodec(inner, codecs))

    def pack(self, record: Any) -> list[Any]:
        row: list[Any] = list(self._values(record)) if len(self.fields) > 1 else [self._values(record)]
        if self.nested:
            for index, (shape, inner) in self.nested.items():
                value = row[index]
                if value is None:
                    continue
                if shape == "enum":
                    row[index] = value.value
                elif shape == "one":
                    row[index] = inner.pack(value)
                elif value:
                    row[index] = [inner.pack(item) for item in value]
        size, trailing_defaults = len(row), self.trailing_defaults
        while size and row[size - 1] in trailing_defaults[size - 1]:
            size -= 1
        del row[size:]
        return row

    def unpacker(self, stored_fields: Mapping[str, Sequence[str]]) -> "_RowUnpacker":
        return _RowUnpacker(self, stored_fields, {})


class _RowUnpacker:
    """Rows written with `stored_fields` (the file's header) -> records of this version."""

    def __init__(
        self,
        codec: _RecordCodec,
        stored_fields: Mapping[str, Sequence[str]],
        unpackers: dict[type, "_RowUnpacker"],
    ) -> None:
        unpackers[codec.cls] = self
        self.cls = codec.cls
        # None: the file has no field list for this record type; fine until a row of it comes.
        listed = stored_fields.get(codec.cls.__name__)
        self.listed = listed is not None
        stored = [str(name) for name in listed] if listed is not None else []
        position = {name: index for index, name in enumerate(codec.fields)}
        # For each stored position: the field it fills now (None: a field since removed).
        self.names: list[str | None] = [name if name in position else None for name in stored]
        self.all_known = None not in self.names
        self.nested: list[tuple[int, str, Any]] = []
        for stored_index, name in enumerate(stored):
            if name in position and position[name] in codec.nested:
                shape, inner = codec.nested[position[name]]
                if shape != "enum":
                    inner = unpackers.get(inner.cls) or _RowUnpacker(
                        inner, stored_fields, unpackers
                    )
                self.nested.append((stored_index, shape, inner))

    def unpack(self, row: list[Any]) -> Any:
        if not self.listed:
            raise KeyError(f"the header has no field list for {self.cls.__name__}")
        if not isinstance(row, list) or len(row) > len(self.names):
            raise TypeError(
                f"expected a row of at most {len(self.names)} {self.cls.__name__} fields, got {row!r:.80}"
            )
        for index, shape, inner in self.nested:
            if index >= len(row) or row[index] is None:
                continue
            value = row[index]
            if shape == "enum":
                row[index] = inner(value)
            elif shape == "one":
                row[index] = inner.unpack(value)
            else:
                row[index] = [inner.unpack(item) for item in value]
        if self.all_known:
            return self.cls(**dict(zip(self.names, row, strict=False)))  # type: ignore[misc]  # all str here
        return self.cls(
            **{
                name: value
                for name, value in zip(self.names, row, strict=False)
                if name is not None
            }
        )


def _shape(annotation: Any) -> tuple[str, Any]:
    """`("one" | "many" | "enum" | "plain", inner type)` of a record field's annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):  # `X | None`
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _shape(args[0]) if len(args) == 1 else ("plain", None)
    if origin is not None and origin not in (dict, Mapping) and issubclass(origin, Sequence):
        (item,) = typing.get_args(annotation) or (Any,)
        return ("many", item) if isinstance(item, type) and is_record(item) else ("plain", None)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "enum", annotation
    if isinstance(annotation, type) and is_record(annotation):
        return "one", annotation
    return "plain", None


_CODECS: dict[type, _RecordCodec] = {}
_SNAPSHOT_CODEC = _RecordCodec(PostgresCatalogSnapshot, _CODECS)
_DATABASES_INDEX = _SNAPSHOT_CODEC.fields.index("databases")
_RELATIONS_INDEX = _CODECS[PostgresDatabase].fields.index("relations")


_RELATIONS_PER_CHUNK = 256


def dumps(snapshot: PostgresCatalogSnapshot) -> str:
    """The snapshot as format-3 JSON text."""
    return "".join(dump_chunks(snapshot))


def dump_chunks(snapshot: PostgresCatalogSnapshot) -> Iterator[str]:
    """The format-3 text in pieces, relations packed and encoded a few hundred at a time.

    Written whole, a 10k-table catalog would be in memory three times at the end of a sync
    (records, packed rows, text): ~80 MB more at peak than streaming it.
    """
    databases = list(snapshot.databases)
    skeleton = _SNAPSHOT_CODEC.pack(replace(snapshot, databases=[]))
    # Each database's relations are a marker in the skeleton, replaced by the streamed rows
    # (NUL cannot occur in Postgres text, so no name can collide with it).
    markers = [f"\u0000relations of database {index}\u0000" for index in range(len(databases))]
    database_codec = _CODECS[PostgresDatabase]
    database_rows = []
    for database, marker in zip(databases, markers, strict=True):
        row = database_codec.pack(replace(database, relations=[]))
        row[_RELATIONS_INDEX] = marker
        database_rows.append(row)
    skeleton[_DATABASES_INDEX] = database_rows
    header = {codec.cls.__name__: list(codec.fields) for codec in _CODECS.values()}
    text = json.dumps(
        {
            "format": FORMAT_NAME,
            "format_version": snapshot.format_version,
            "fields": header,
            "summary": SnapshotSummary.of(snapshot).to_json(),
            "snapshot": skeleton,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    relation_codec = _CODECS[PostgresRelation]
    for database, marker in zip(databases, markers, strict=True):
        before, text = text.split(json.dumps(marker, ensure_ascii=False), 1)
        yield before + "["
        relations = database.relations
        for start in range(0, len(relations), _RELATIONS_PER_CHUNK):
            rows = [relation_codec.pack(relation) for relation in relations[start : start + _RELATIONS_PER_CHUNK]]
            chunk = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)[1:-1]
            yield ("," if start else "") + chunk
        yield "]"
    yield text


def is_format_3(document: object) -> bool:
    return isinstance(document, dict) and document.get("format") == FORMAT_NAME


def loads(document: Mapping[str, Any]) -> PostgresCatalogSnapshot:
    """A parsed format-3 document -> the snapshot (raises TypeError/ValueError/CheckError when malformed)."""
    stored_fields = document["fields"]
    if not isinstance(stored_fields, dict):
        raise TypeError("the header's `fields` is not an object")
    snapshot = _SNAPSHOT_CODEC.unpacker(stored_fields).unpack(document["snapshot"])
    if not isinstance(snapshot, PostgresCatalogSnapshot):
        raise TypeError(f"expected a snapshot, got {type(snapshot).__name__}")
    # The header is authoritative: the row drops `format_version` when it equals the default.
    return replace(snapshot, format_version=int(document["format_version"]))


_HEAD_CHUNK = 64 * 1024


def load_summary(path: Path) -> SnapshotSummary | None:
    """The `summary` member of a format-3 file, parsed from the head of the file only.

    The members before `snapshot` are decoded one by one (`raw_decode`), reading more of the file
    only when one is cut; None for other formats, a file without a summary, or anything malformed
    (the caller then reads the catalog, which is always safe).
    """
    decoder = json.JSONDecoder()
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read(_HEAD_CHUNK)
            position = _skip(text, 0, "{")
            members: dict[str, Any] = {}
            while True:
                try:  # one member; `position` moves only once it is whole
                    key, end = decoder.raw_decode(text, position)
                    end = _skip(text, end, ":")
                    if key == "snapshot":
                        break
                    value, end = decoder.raw_decode(text, end)
                    position = _skip(text, end, ",")
                    members[key] = value
                except (ValueError, IndexError):
                    more = handle.read(_HEAD_CHUNK)
                    if not more:
                        return None
                    text += more
    except (OSError, ValueError, IndexError):
        return None
    if members.get("format") != FORMAT_NAME or not isinstance(members.get("summary"), dict):
        return None
    try:
        return SnapshotSummary.from_json(members["summary"])
    except (KeyError, TypeError, ValueError):
        return None


def _skip(text: str, position: int, expected: str) -> int:
    """The position after `expected` (whitespace around it allowed); ValueError if another character comes."""
    while text[position].isspace():
        position += 1
    if text[position] != expected:
        raise ValueError(f"expected {expected!r} at {position}")
    position += 1
    while position < len(text) and text[position].isspace():
        position += 1
    return position
