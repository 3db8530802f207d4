#!/usr/bin/env python3
"""Runs a .tflite with the native LiteRT interpreter (PyPI ai-edge-litert, XNNPACK on CPU).

The in-Node LiteRT.js is wasm32 and cannot hold a model past 2 GB; this one maps the file, so
the full preset's > 2 GiB fp32 artifact is checked here (benchmarks). Inputs and outputs are raw
little-endian float32 files named in a JSON request on argv[1]:
  {"model": "...", "inputs": {"latent": {"path": "...", "shape": [...]}, ...}, "out": "...", "repeat": 1, "threads": 2}
Prints one JSON line: load and run seconds, peak RSS, output shape, and any error.
"""
import json
import resource
import sys
import time


def main() -> None:
    req = json.loads(open(sys.argv[1]).read())
    result = {}
    try:
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter

        t0 = time.perf_counter()
        interp = Interpreter(model_path=req["model"], num_threads=req.get("threads", 2))
        interp.allocate_tensors()
        result["loadSeconds"] = time.perf_counter() - t0
        by_name = {d["name"]: d for d in interp.get_input_details()}
        runner = interp.get_signature_runner("serving_default")
        feeds = {}
        for name, spec in req["inputs"].items():
            feeds[name] = np.fromfile(spec["path"], dtype="<f4").reshape(spec["shape"])
        runs = []
        out = None
        for _ in range(max(1, req.get("repeat", 1))):
            t1 = time.perf_counter()
            out = runner(**feeds)
            runs.append(time.perf_counter() - t1)
        velocity = out["velocity"].astype("<f4")
        velocity.tofile(req["out"])
        result.update(runSeconds=runs, shape=list(velocity.shape), inputs=sorted(by_name))
    except Exception as e:  # reported to the caller, which fails the check
        result["error"] = f"{type(e).__name__}: {e}"
    result["peakRssBytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
