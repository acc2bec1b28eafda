#!/usr/bin/env bash
# make setup: everything JoyNet needs on a fresh machine, from PyPI and npm only. Idempotent:
# each step is skipped when what it produced is newer than what it was made from.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PYTHON=${PYTHON:-python3}

need() { command -v "$1" >/dev/null 2>&1 || { echo "joynet setup: '$1' not found: install $2" >&2; exit 1; }; }
need "$PYTHON" "Python 3.11 (Debian: apt-get install python3 python3-venv)"
need node "Node.js 20 or newer (Debian: apt-get install nodejs)"
need npm "npm (Debian: apt-get install npm)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "joynet setup: Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || { echo "joynet setup: Node.js 20 or newer is required (found $(node --version))" >&2; exit 1; }

step() { printf '==> %s\n' "$*"; }
stale() { [ ! -e "$1" ] || [ -n "$(find "${@:2}" -newer "$1" 2>/dev/null | head -1)" ]; }

# 1. npm packages (solc-js, anvil, circom2, snarkjs, circomlib, OpenZeppelin, js-ipfs) from the lock file.
if stale node_modules/.joynet-installed package-lock.json package.json; then
  step "npm ci (solc 0.8.28, anvil, circom2, snarkjs, circomlib, OpenZeppelin contracts, js-ipfs for the storage tests)"
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.joynet-installed
fi

# 1b. Mermaid's self-contained browser bundle, for the documentation site's diagrams (make docs):
#     the pinned package's tarball only (npm checks its integrity), none of its dependencies. The
#     site serves it itself, so that no page loads it from a CDN when viewed.
MERMAID_VERSION=11.17.2
MERMAID_DIR=node_modules/.mermaid
if [ "$(cat "$MERMAID_DIR/VERSION" 2>/dev/null)" != "$MERMAID_VERSION" ]; then
  step "npm pack mermaid@$MERMAID_VERSION (the documentation site's diagrams)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "mermaid@$MERMAID_VERSION" --loglevel=error >/dev/null)
  tar -xzf "$tmp/mermaid-$MERMAID_VERSION.tgz" -C "$tmp" package/dist/mermaid.min.js
  mkdir -p "$MERMAID_DIR"
  mv "$tmp/package/dist/mermaid.min.js" "$MERMAID_DIR/mermaid.min.js"
  echo "$MERMAID_VERSION" > "$MERMAID_DIR/VERSION"
  rm -rf "$tmp"
fi

# 1c. Debian packages that two tests run (nothing else needs them), each installed when its program
#     is missing and we are root; otherwise the step says what to run.
debian_program() {  # debian_program PATH PACKAGE WHAT-NEEDS-IT
  [ -x "$1" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "apt-get install $2 ($3)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "joynet setup: $1 is missing: run 'apt-get update && apt-get install -y $2' as root ($3 needs it)" >&2
  fi
}
# Chromium: the explorer's browser test (tests/e2e/test_explorer.py), driven by Playwright, whose own
# browser downloads are never used.
debian_program /usr/bin/chromium chromium "the explorer's browser test"
# systemd-analyze: the check of the edge agent's systemd unit (tests/unit/test_deploy_files.py).
debian_program /usr/bin/systemd-analyze systemd "the systemd unit's test"

# 2. Python virtualenv from the pinned requirements (requirements-docs.txt: the documentation site's
#    tools; requirements-dev.txt: the code checks of make lint), with the joynet package itself editable.
if [ ! -x "$VENV/bin/python" ]; then
  step "python -m venv .venv"
  "$PYTHON" -m venv "$VENV"
fi
if stale "$VENV/.joynet-installed" requirements.txt requirements-docs.txt requirements-dev.txt requirements-ipfs.txt pyproject.toml; then
  step "pip install -r requirements.txt -r requirements-docs.txt -r requirements-dev.txt (pinned)"
  # One resolution for all three: the documentation tools (make docs) and the code checks (make lint)
  # move no pin of requirements.txt.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-docs.txt -r requirements-dev.txt
  # --no-deps: see the header of requirements-ipfs.txt.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-ipfs.txt
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  touch "$VENV/.joynet-installed"
fi

# 3. The solc-js shim where py-solc-x looks for installed compilers (SOLCX_BINARY_PATH, set for
#    every venv process by toolchain/joynet_env.py), the anvil binary on the venv's PATH, and the
#    .pth file that applies that environment.
SOLC_VERSION=$(node -p 'require("./node_modules/solc/package.json").version')
mkdir -p "$VENV/solcx"
SHIM="$VENV/solcx/solc-v$SOLC_VERSION"
cat > "$SHIM.tmp" <<SH
#!/bin/sh
# solc $SOLC_VERSION (solc-js) for py-solc-x / ape-solidity; written by toolchain/setup.sh.
exec node "$ROOT/toolchain/solc-shim.js" "\$@"
SH
chmod +x "$SHIM.tmp" && mv "$SHIM.tmp" "$SHIM"
# anvil writes the chain's older states to a state folder under the home directory and leaves them
# there when it is stopped by a signal, as ape-foundry stops it: about 500 MB per test run, which
# filled the CI disk. The wrapper keeps old states in memory only (--max-persisted-states 0), so
# state queries at blocks far behind the head fail with BlockOutOfRangeError; nothing here needs them.
# JOYNET_ANVIL_STEPS_TRACING=0 drops the --steps-tracing ape-foundry passes: anvil then keeps no
# per-opcode trace of every transaction in memory (call traces and gas breakdowns need them; the
# load benchmark's thousands of transactions took anvil past 20 GB with them).
rm -f "$VENV/bin/anvil"
cat > "$VENV/bin/anvil.tmp" <<SH
#!/bin/sh
# anvil from npm, without on-disk state history; written by toolchain/setup.sh.
if [ "\$JOYNET_ANVIL_STEPS_TRACING" = 0 ]; then
  for arg in "\$@"; do
    shift
    [ "\$arg" = --steps-tracing ] || set -- "\$@" "\$arg"
  done
fi
exec "$ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" "\$@" --max-persisted-states 0
SH
chmod +x "$VENV/bin/anvil.tmp" && mv "$VENV/bin/anvil.tmp" "$VENV/bin/anvil"
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\nimport joynet_env\n' "$ROOT/toolchain" > "$SITE/joynet-toolchain.pth"

# 4. Checks that the toolchain answers as ape expects.
"$SHIM" --version | grep -q "Version: $SOLC_VERSION+commit." \
  || { echo "joynet setup: the solc shim does not report solc $SOLC_VERSION" >&2; exit 1; }
"$VENV/bin/anvil" --version >/dev/null \
  || { echo "joynet setup: anvil from npm does not run on this machine" >&2; exit 1; }
step "toolchain ready: $("$SHIM" --version | tail -1), $("$VENV/bin/anvil" --version | head -1)"
