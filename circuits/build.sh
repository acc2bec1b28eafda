#!/usr/bin/env bash
# make circuits: rebuilds every artefact of the digits MLP circuit from its sources.
#
#   1. the quantized model's circuit inputs are already in circuits/digits/ (train.py makes them);
#   2. circom2 --O2 compiles circuits/digits_mlp.circom (R1CS + wasm witness generator);
#   3. a local powers-of-tau ceremony of 2^POWER (cached in circuits/ptau/, never committed):
#      new -> one contribution -> a beacon -> prepare phase2;
#   4. Groth16 phase 2: setup -> one contribution -> a beacon -> verification key;
#   5. the Solidity verifier, renamed DigitsMLPVerifier, into contracts/verifiers/;
#   6. circuits/build/manifest.json: sha256 of every committed artefact and the constraint count.
#
# Reproducibility: the compile (R1CS, wasm) and the beacons are deterministic, but snarkjs mixes
# operating-system randomness into every `contribute` whatever entropy text it is given, so a
# rebuild yields a different (equally valid) proving key, verification key and verifier. Every
# artefact is regenerated together, so they always match each other. A local ceremony with one
# contributor is for development only: see "Zero-knowledge proofs" in the README.
#
# Usage: circuits/build.sh [--ptau-only]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
POWER=14                       # 2^14 = 16,384 >= constraints + public inputs + 1
PTAU_DIR="$ROOT/circuits/ptau"
BUILD="$ROOT/circuits/build"
WORK="$ROOT/circuits/.work"    # scratch: circom sources + circomlib copy, intermediate keys
SNARKJS=(node --max-old-space-size=4096 "$ROOT/node_modules/snarkjs/build/cli.cjs")
CIRCOM=(node "$ROOT/node_modules/circom2/cli.js")
# Public, fixed beacon values: anyone can re-derive the beacon step from them.
PHASE1_BEACON=6a6f796e65742d6469676974732d6d6c702d7068617365312d626561636f6e21
PHASE2_BEACON=6a6f796e65742d6469676974732d6d6c702d7068617365322d626561636f6e21

step() { printf '==> %s\n' "$*"; }

ptau() {
  local final="$PTAU_DIR/pot${POWER}_final.ptau"
  if [ -s "$final" ]; then
    step "powers of tau 2^$POWER: cached at ${final#"$ROOT"/}"
    return
  fi
  mkdir -p "$PTAU_DIR"
  local tmp="$PTAU_DIR/tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  step "powers of tau 2^$POWER: new (several minutes in JavaScript)"
  "${SNARKJS[@]}" powersoftau new bn128 "$POWER" "$tmp/pot_0000.ptau"
  step "powers of tau: contribution"
  "${SNARKJS[@]}" powersoftau contribute "$tmp/pot_0000.ptau" "$tmp/pot_0001.ptau" \
    --name="JoyNet local phase 1 contribution" -e="JoyNet digits MLP local phase 1 entropy"
  step "powers of tau: beacon"
  "${SNARKJS[@]}" powersoftau beacon "$tmp/pot_0001.ptau" "$tmp/pot_beacon.ptau" "$PHASE1_BEACON" 10 \
    -n="JoyNet phase 1 beacon"
  step "powers of tau: prepare phase 2 (the slow part)"
  "${SNARKJS[@]}" powersoftau prepare phase2 "$tmp/pot_beacon.ptau" "$final.tmp"
  mv "$final.tmp" "$final"
  rm -rf "$tmp"
}

ptau
[ "${1:-}" = "--ptau-only" ] && exit 0
