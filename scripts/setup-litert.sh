#!/usr/bin/env bash
# Sets up Google's native LiteRT interpreter (PyPI ai-edge-litert, pinned) in .venv-litert, for
# benchmarks of models past LiteRT.js's 2 GB wasm limit (the full preset at fp32). Idempotent;
# prints the venv's python on success. The tests use LiteRT.js from npm and do not need it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-litert
PIN=ai-edge-litert==2.3.0
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('ai-edge-litert') == '${PIN#*==}' else 1)" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PIN" >&2
fi
echo "$VENV/bin/python"
