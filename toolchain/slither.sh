#!/usr/bin/env bash
# make slither: Slither over contracts/ (OpenZeppelin and the test-only attacker contracts of
# contracts/test/, which are never deployed, left out of the findings), offline, compiled by
# the project's solc (solc-js behind toolchain/solc-shim.js, installed by make setup). Slither lives
# in its own virtualenv, .venv-slither, made here on first use from toolchain/requirements-slither.txt
# (idempotent: reinstalled only when that file is newer). Arguments are passed on to slither, e.g.
# --fail-medium, --json FILE, --exclude-informational, --detect NAME.
#
# crytic-compile is run in its standard-JSON mode (--compile-force-framework solc-json) on an input
# written by toolchain/slither_input.py, so it calls the shim only with --version and
# --standard-json, the two calls the shim answers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv-slither"
PYTHON=${PYTHON:-python3}
REQUIREMENTS=toolchain/requirements-slither.txt

SOLC_VERSION=$(node -p 'require("./node_modules/solc/package.json").version' 2>/dev/null) \
  || { echo "joynet slither: node_modules/solc is missing: run make setup" >&2; exit 1; }
SOLC="$ROOT/.venv/solcx/solc-v$SOLC_VERSION"
[ -x "$SOLC" ] && [ -x "$ROOT/.venv/bin/python" ] \
  || { echo "joynet slither: $SOLC or .venv is missing: run make setup" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> python -m venv .venv-slither"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -e "$VENV/.joynet-installed" ] || [ "$REQUIREMENTS" -nt "$VENV/.joynet-installed" ]; then
  echo "==> pip install -r $REQUIREMENTS (pinned)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  touch "$VENV/.joynet-installed"
fi

# solc-select (imported by crytic-compile) keeps its folder under $VIRTUAL_ENV when that is set, and
# under the home directory otherwise; it never downloads here, since --solc names a binary.
export VIRTUAL_ENV="$VENV"
INPUT="$VENV/joynet-standard-input.json"
"$ROOT/.venv/bin/python" toolchain/slither_input.py > "$INPUT"

exec "$VENV/bin/slither" "$INPUT" \
  --compile-force-framework solc-json \
  --solc "$SOLC" \
  --filter-paths 'node_modules|openzeppelin|contracts/test/' \
  "$@"
