#!/usr/bin/env bash
# Installs Debian's Chromium for the report screenshot test (playwright-core drives it; a
# downloaded browser is not allowed here). Idempotent; prints the browser's path.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >&2
fi
command -v chromium
