#!/usr/bin/env bash
# Set up voxdistill on a fresh machine: the Debian packages it calls (speech synthesis) and the
# Python package in a virtual environment. Idempotent: a second run checks and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Speech synthesis and text for the corpus; chromium and its driver for the test that renders the report;
# g++ for torch.compile's CPU code (evaluate/transcribe --compile-decoder).
DEBIAN_PACKAGES=(espeak-ng flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k fortunes-min
                 chromium chromium-driver g++)
VENV=${VOXDISTILL_VENV:-.venv}

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Reinstall only when the project's requirements changed since the last successful install.
stamp="$VENV/.voxdistill-installed"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing the voxdistill package into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  # torch first, from the local CPU wheel; everything else is installed against the constraint.
  "$VENV/bin/pip" install -q -c constraints.txt torch==2.13.0
  "$VENV/bin/pip" install -q -c constraints.txt -e ".[test]"
  echo "$want" > "$stamp"
fi
