#!/usr/bin/env bash
# Sets up Apple's coremltools (pinned) in a virtualenv at .venv-coremltools, for the checker that
# loads .mlpackage files (no CoreML runtime exists on Linux; coremltools' loader and MIL
# rebuild are the check). Idempotent; prints the venv's python on success.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-coremltools
PIN=coremltools==9.0
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import coremltools, sys; sys.exit(0 if coremltools.__version__ == '${PIN#*==}' else 1)" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PIN" >&2
fi
echo "$VENV/bin/python"
