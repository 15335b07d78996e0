"""Dagster 1.13.27: a multi-check definition that went through `with_definition_metadata_update`
(what `load_from_defs_folder` applies to every component's Definitions) makes the asset graph
quadratic in its number of checks."""
import sys, time, warnings
warnings.simplefilter("ignore")
import dagster as dg

def checks_def(keys):
    specs = {f"c{i}": dg.AssetCheckSpec("ok", asset=k) for i, k in enumerate(keys)}
    @dg.op(out={n: dg.Out(None, is_required=False) for n in specs})
    def many_checks():
        return None
    return dg.AssetChecksDefinition.create(keys_by_input_name={}, node_def=many_checks,
                                           check_specs_by_output_name=specs, can_subset=True)

for n in (500, 1000, 2000):
    keys = [dg.AssetKey(["t", str(i)]) for i in range(n)]
    for label, update in (("as built", False), ("metadata updated", True)):
        defs = dg.Definitions(assets=[dg.AssetSpec(k) for k in keys], asset_checks=[checks_def(keys)])
        if update:
            defs = defs.with_definition_metadata_update(lambda m: {**m, "x": 1})
        started = time.perf_counter()
        defs.get_repository_def().asset_graph
        print(f"{n} checks, {label}: {time.perf_counter() - started:.2f} s  "
              f"({type(defs.asset_checks[0]).__name__})")
