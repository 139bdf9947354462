#!/usr/bin/env bash
# Set up (idempotent) and run the demo. Extra arguments go to `voxdistill demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/voxdistill demo "$@"
