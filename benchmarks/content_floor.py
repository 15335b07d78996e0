"""The content floor: Dagster alone, showing the same content as our component, through a component.

The `dagster-floor` row (`probes.py`) is bare `AssetSpec`s: same keys and deps, nothing else. It
leaves out what the product must show (column schemas, lineage, our metadata), which Dagster
then carries through the asset graph and the served snapshot (78 MB at 10k against 10 MB for
bare specs), and the component machinery of `dg.load_from_defs_folder` (code references and
`dagster/component_origin` on every spec). `ContentFloorComponent` isolates what *our* code adds:
a minimal `dg.Component` (public API only) that rebuilds, from a content file, exactly the
`AssetSpec`s our component builds (key, deps, description, group, kinds and tags, owners and
metadata, each metadata value as the spec holds it) and returns them in a plain
`dg.Definitions`; no checks, no jobs, so it compares with our `schema_checks: false` load.

The content file is written beforehand, outside the measured process (`probes.py
content-prepare`): Dagster's `serialize_value` of one record per spec (`write_content`). In the
measured load, `dg.deserialize_value` rebuilds the objects: Dagster's own cost of constructing
the same content.

This module imports only `dagster`: a `defs.yaml` names it as `content_floor.ContentFloorComponent`
(the generated project's loader has `benchmarks/` on `sys.path`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

COMPONENT_TYPE = "content_floor.ContentFloorComponent"

# What Dagster's component machinery adds to every spec declared in a defs.yaml
# (`_add_defs_yaml_metadata` in dagster/components/core/defs_module.py). Left out of the content
# file: the floor's own component load adds its own.
COMPONENT_METADATA_KEYS = frozenset({"dagster/code_references", "dagster/component_origin"})

_KIND_TAG_PREFIX = "dagster/kind/"

# Seconds the last `ContentFloorComponent.build_defs` spent in `deserialize_value` (the probe
# reports it; module state because Dagster instantiates the component, not the probe).
last_deserialize_seconds: float | None = None


def content_record(spec: dg.AssetSpec) -> dict[str, Any]:
    """One spec's content as serdes can write it; the component machinery's metadata left out."""
    if any(dep.partition_mapping is not None for dep in spec.deps):
        raise ValueError(
            f"{spec.key.to_user_string()}: a dep with a partition mapping is not content this floor writes"
        )
    return {
        "key": spec.key,
        "deps": [dep.asset_key for dep in spec.deps],
        "description": spec.description,
        "group_name": spec.group_name,
        "kinds": sorted(spec.kinds),
        "tags": {k: v for k, v in spec.tags.items() if not k.startswith(_KIND_TAG_PREFIX)},
        "owners": list(spec.owners),
        # Pairs, not a dict: serdes writes a dict's keys sorted, and the order of the metadata is
        # the order the UI shows it in (and part of the served snapshot).
        "metadata": [[k, v] for k, v in spec.metadata.items() if k not in COMPONENT_METADATA_KEYS],
    }


def write_content(specs: Iterable[dg.AssetSpec], path: Path) -> int:
    """Writes the content file (Dagster's `serialize_value` of every spec's record); returns its size."""
    path.write_text(dg.serialize_value([content_record(spec) for spec in specs]))
    return path.stat().st_size


def spec_of(record: Mapping[str, Any]) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=record["key"],
        deps=record["deps"],
        description=record["description"],
        group_name=record["group_name"],
        kinds=set(record["kinds"]),
        tags=record["tags"] or None,
        owners=record["owners"],
        metadata=dict(record["metadata"]),
    )


class ContentFloorComponent(dg.Component, dg.Model, dg.Resolvable):
    """Assets rebuilt from a content file written by `write_content`; nothing else."""

    content_path: str

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        global last_deserialize_seconds
        started = time.perf_counter()
        records = dg.deserialize_value(Path(self.content_path).read_text(), list)
        last_deserialize_seconds = time.perf_counter() - started
        return dg.Definitions(assets=[spec_of(record) for record in records])
