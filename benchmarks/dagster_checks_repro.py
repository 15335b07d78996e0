"""Dagster 1.13.27: a multi-check definition that went through `with_definition_metadata_update`
(what `load_from_defs_folder` applies to every component's Definitions) makes the asset graph
super-linear in its number of checks.

`with_attributes` rebuilds an `AssetChecksDefinition` as a plain `AssetsDefinition`
(`AssetsDefinition.dagster_internal_init` is a staticmethod returning the base class), and
`RepositoryData.get_asset_checks_defs_by_key` converts it back once per check key, not once per
definition: one op with N checks becomes N distinct definitions of N checks, which
`resolve_stub_assets_defs` and `AssetGraph.key_mappings_from_assets` then walk again.
`observe/sync_job.py` sidesteps it with ops of `CHECKS_PER_OP` checks.

    .venv/bin/python benchmarks/dagster_checks_repro.py
"""

import time
import warnings

import dagster as dg


def checks_def(keys: list[dg.AssetKey]) -> dg.AssetChecksDefinition:
    specs = {f"c{i}": dg.AssetCheckSpec("ok", asset=key) for i, key in enumerate(keys)}

    @dg.op(out={name: dg.Out(None, is_required=False) for name in specs})
    def many_checks():  # no return annotation: Dagster reads it as the outputs' type
        return None

    return dg.AssetChecksDefinition.create(
        keys_by_input_name={}, node_def=many_checks, check_specs_by_output_name=specs, can_subset=True
    )


def main() -> None:
    warnings.simplefilter("ignore")
    for n in (500, 1000, 2000):
        keys = [dg.AssetKey(["t", str(i)]) for i in range(n)]
        for label, update in (("as built", False), ("metadata updated", True)):
            defs = dg.Definitions(assets=[dg.AssetSpec(k) for k in keys], asset_checks=[checks_def(keys)])
            if update:
                defs = defs.with_definition_metadata_update(lambda metadata: {**metadata, "x": 1})
            started = time.perf_counter()
            graph = defs.get_repository_def().asset_graph
            seconds = time.perf_counter() - started
            kind = type(next(iter(defs.asset_checks or []))).__name__
            print(f"{n} checks, {label}: {seconds:.2f} s ({kind}, {len(graph.asset_check_keys)} checks)")


if __name__ == "__main__":
    main()
