"""Minimal reproduction (Dagster-side, dagster 1.13): a code server keeps its first load of a
components project alive after the second, through record constructors that captured the
loader's locals.

A code server loads a project twice (INITIALIZATION, then RECONSTRUCTION). Dagster's own
`@record` classes of the component machinery (`ComponentRootLoc`, the `...Decl` classes,
`ObjectMetadataValue` for `dagster/component_origin`) compile their checked `__new__` at their
first construction, with the calling frame's locals merged into the function's globals
(`EvalContext.update_from_frame`; the mechanism of `dagster_record_locals_repro.py`). Those
locals are the first load's `ComponentTree` (`self`) or its `ComponentLoadContext`, whose cache
holds the first load's `Definitions` and repository: every spec, asset and check of it stays in
memory for the life of the process. No library code here: a plain `dg.Component` returning
`--assets` specs. With `--module-globals-only`, `update_from_frame` keeps the caller's module
globals only (what a fix in dagster_shared would do), and the first load is freed.

Measured with this project's 10,000-table component (same two loads): 418 -> 349 MB RSS,
77,518 -> 44,296 `AssetSpec`s alive; `dg dev`'s code server peaked at 1,019 / 1,092 MB without
and 922 / 812 MB with the fix applied to its process (two runs each, load average 4-7).

    python benchmarks/dagster_component_tree_repro.py [--assets 5000] [--module-globals-only]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run as a script from anywhere

COMPONENT = """
import dagster as dg


class ManyAssets(dg.Component, dg.Model, dg.Resolvable):
    assets: int

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dg.Definitions(
            assets=[
                dg.AssetSpec(["repro", f"table_{i}"], metadata={"rows": i, "note": "x" * 200})
                for i in range(self.assets)
            ]
        )
"""


def keep_module_globals_only() -> None:
    """What a fix in dagster_shared would do: resolve forward references against the caller's
    module globals, without keeping its locals."""
    from dagster_shared.check import builder

    def update_from_frame(self: builder.EvalContext, depth: int) -> None:
        self.global_ns.update(sys._getframe(depth + 1).f_globals)

    builder.EvalContext.update_from_frame = update_from_frame


def alive(type_name: str) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == type_name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--module-globals-only", action="store_true")
    args = parser.parse_args()
    if args.module_globals_only:
        keep_module_globals_only()
    from dagster._core.definitions.definitions_load_context import (
        DefinitionsLoadContext,
        DefinitionsLoadType,
    )
    from dg_project import write_component_project

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "many_assets_component.py").write_text(COMPONENT)
        sys.path[:0] = [str(root), str(root / "src")]
        project = write_component_project(
            root, module="repro_project", connection="repro",
            component_type="many_assets_component.ManyAssets", attributes={"assets": args.assets},
        )  # fmt: skip
        definitions = importlib.import_module(f"{project.module}.definitions")
        for load_type in (DefinitionsLoadType.INITIALIZATION, DefinitionsLoadType.RECONSTRUCTION):
            # As a code server does: each load in its context, its Definitions dropped after use
            # (the server keeps only the repository of the last one).
            with DefinitionsLoadContext.scoped(DefinitionsLoadContext(load_type)):
                repository = definitions.defs().get_repository_def()
            del repository
            print(
                f"after the {load_type.value} load, its Definitions dropped: "
                f"{alive('RepositoryDefinition')} RepositoryDefinition(s) and {alive('AssetSpec')} AssetSpecs still alive"
            )


if __name__ == "__main__":
    main()
