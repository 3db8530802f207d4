"""Loads a .mlpackage with Apple's coremltools and rebuilds its MIL program, which runs
coremltools' type inference on every op. No Core ML runtime exists on Linux, so this is the
check ditc's CoreML packages get from Apple's own code. Prints one JSON document."""
import json
import sys
import warnings

warnings.filterwarnings("ignore")


def main(path):
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

    model = ct.models.MLModel(path, skip_model_load=True)
    spec = model.get_spec()
    prog = milproto_load(spec, spec.specificationVersion, model.weights_dir)
    ops, transposes_in_blocks, max_rank = {}, 0, 0
    block_prefixes = ("down_", "mid_", "up_")
    for op in prog.functions["main"].operations:
        ops[op.op_type] = ops.get(op.op_type, 0) + 1
        if op.op_type == "transpose" and op.name.startswith(block_prefixes):
            transposes_in_blocks += 1
        # constants (LUTs of the iOS18 form are [1, ..., K, 1]) never flow as activations
        for out in op.outputs if op.op_type != "const" else []:
            if out.shape is not None:
                max_rank = max(max_rank, len(out.shape))
    print(json.dumps({
        "path": path,
        "ok": True,
        "coremltools": ct.__version__,
        "specificationVersion": spec.specificationVersion,
        "ops": dict(sorted(ops.items())),
        "transposesInBlocks": transposes_in_blocks,
        "maxRank": max_rank,
    }))


if __name__ == "__main__":
    # one JSON line per package, so many packages share one interpreter start
    for path in sys.argv[1:]:
        try:
            main(path)
        except Exception as e:  # reported as data: the caller decides what a failure means
            print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        sys.stdout.flush()
