"""What a sync needs to know about the last snapshot before deciding to read again.

Written at the head of the snapshot file (`codec.dump_chunks`), before the relations, so that
`codec.load_summary` reads a few hundred bytes instead of parsing a 10k-table snapshot. Plain
JSON, outside serdes: no record class, no storage name.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot


@dataclass(frozen=True)
class SnapshotSummary:
    """What the check needs from a snapshot, without its relations (`codec.load_summary` reads it
    from the head of the file, so a CLI sync never parses a 10k-table snapshot to skip it)."""

    connection_name: str
    host: str
    port: int
    selection_fingerprint: str
    format_version: int
    catalog_fingerprints: Mapping[str, str]  # database read -> its fingerprint ("" when unknown)
    skipped_databases: Sequence[str]  # databases not read (no CONNECT, failed)
    captured_at: float = 0.0
    relation_count: int = 0
    column_count: int = 0

    @classmethod
    def of(cls, snapshot: PostgresCatalogSnapshot) -> "SnapshotSummary":
        return cls(
            connection_name=snapshot.connection_name,
            host=snapshot.host,
            port=snapshot.port,
            selection_fingerprint=snapshot.selection_fingerprint,
            format_version=snapshot.format_version,
            catalog_fingerprints={d.name: d.catalog_fingerprint for d in snapshot.databases},
            skipped_databases=sorted(
                {s.database for s in snapshot.skipped if s.schema is None and s.name is None}
            ),
            captured_at=snapshot.captured_at,
            relation_count=len(snapshot.relations()),
            column_count=sum(len(r.columns) for r in snapshot.relations()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "connection_name": self.connection_name,
            "host": self.host,
            "port": self.port,
            "selection_fingerprint": self.selection_fingerprint,
            "format_version": self.format_version,
            "catalog_fingerprints": dict(self.catalog_fingerprints),
            "skipped_databases": list(self.skipped_databases),
            "captured_at": self.captured_at,
            "relation_count": self.relation_count,
            "column_count": self.column_count,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SnapshotSummary":
        fingerprints = data["catalog_fingerprints"]
        if not isinstance(fingerprints, dict):
            raise TypeError("`catalog_fingerprints` is not an object")
        return cls(
            connection_name=str(data["connection_name"]),
            host=str(data["host"]),
            port=int(data["port"]),
            selection_fingerprint=str(data["selection_fingerprint"]),
            format_version=int(data["format_version"]),
            catalog_fingerprints={str(k): str(v) for k, v in fingerprints.items()},
            skipped_databases=[str(name) for name in data["skipped_databases"]],
            captured_at=float(data.get("captured_at", 0.0)),
            relation_count=int(data.get("relation_count", 0)),
            column_count=int(data.get("column_count", 0)),
        )
