#!/usr/bin/env bash
# make circuits: rebuilds every artefact of a circuit from its sources (by default the digits MLP's).
#
#   1. the circuit source is already there: circuits/digits_mlp.circom is generated from the
#      quantized model (`joynet circuit generate`; circuits/digits/ holds the model);
#   2. circom2 --O2 compiles it (R1CS + wasm witness generator);
#   3. a local powers-of-tau ceremony of 2^POWER (cached in circuits/ptau/, never committed):
#      new -> one contribution -> a beacon -> prepare phase2;
#   4. Groth16 phase 2: setup -> one contribution -> a beacon -> verification key;
#   5. the Solidity verifier, renamed DigitsMLPVerifier, into contracts/verifiers/ (--verifier), and
#      the batch verifier <NAME>BatchVerifier generated from the same key (joynet.zk.batch_verifier);
#   6. <out>/manifest.json: sha256 of every committed artefact and the constraint count.
#
# Reproducibility: the compile (R1CS, wasm) and the beacons are deterministic, but snarkjs mixes
# operating-system randomness into every `contribute` whatever entropy text it is given, so a
# rebuild yields a different (equally valid) proving key, verification key and verifier. Every
# artefact is regenerated together, so they always match each other. A local ceremony with one
# contributor is for development only: see "Zero-knowledge proofs" in the README.
#
# Usage: circuits/build.sh [--ptau-only] [--source FILE.circom] [--out DIR] [--verifier NAME|none]
#                          [--ptau FILE --power N [--wait]]
#   --source    the circuit (default circuits/digits_mlp.circom); its artefacts are named after it
#   --out       where the artefacts go (default circuits/build, i.e. joynet/zk/circuit/)
#   --verifier  the Solidity verifier contract's name in contracts/verifiers/ (default
#               DigitsMLPVerifier), or none
#   --ptau      an existing prepared powers of tau of 2^N (--power N) instead of the local one
#   --wait      compile first, then wait for the --ptau file (a ceremony still being prepared)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
POWER=14                       # 2^14 = 16,384 >= constraints + public inputs + 1
PTAU_DIR="$ROOT/circuits/ptau"
PTAU=""
SOURCE="circuits/digits_mlp.circom"
BUILD="$ROOT/circuits/build"
VERIFIER=DigitsMLPVerifier
PTAU_ONLY=0
WAIT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ptau-only) PTAU_ONLY=1 ;;
    --source) SOURCE=$2; shift ;;
    --out) BUILD=$(realpath -m "$2"); shift ;;
    --verifier) VERIFIER=$2; shift ;;
    --ptau) PTAU=$(realpath -m "$2"); shift ;;
    --power) POWER=$2; shift ;;
    --wait) WAIT=1 ;;
    *) echo "circuits/build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
NAME=$(basename "$SOURCE" .circom)
WORK="$ROOT/circuits/.work/$NAME"    # scratch: circom sources + circomlib copy, intermediate keys
SNARKJS=(node --max-old-space-size=4096 "$ROOT/node_modules/snarkjs/build/cli.cjs")
CIRCOM=(node "$ROOT/node_modules/circom2/cli.js")
# Public, fixed beacon values: anyone can re-derive the beacon step from them.
PHASE1_BEACON=6a6f796e65742d6469676974732d6d6c702d7068617365312d626561636f6e21
PHASE2_BEACON=6a6f796e65742d6469676974732d6d6c702d7068617365322d626561636f6e21

step() { printf '==> %s\n' "$*"; }

ptau() {
  if [ -n "$PTAU" ]; then
    if [ "$WAIT" = 1 ]; then
      step "powers of tau 2^$POWER: waiting for $PTAU"
      while [ ! -s "$PTAU" ]; do sleep 10; done
    fi
    step "powers of tau 2^$POWER: $PTAU"
    return
  fi
  local final="$PTAU_DIR/pot${POWER}_final.ptau"
  PTAU=$final
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

compile() {
  step "circom2 --O2 $SOURCE"
  rm -rf "$WORK" && mkdir -p "$WORK/circomlib"
  cp "$SOURCE" "$WORK/"
  # circom2 (WebAssembly) sees only its working directory: copy the circomlib files in.
  for file in poseidon poseidon_constants bitify comparators binsum aliascheck compconstant; do
    cp "node_modules/circomlib/circuits/$file.circom" "$WORK/circomlib/"
  done
  (cd "$WORK" && "${CIRCOM[@]}" "$NAME.circom" --r1cs --wasm --sym --O2 -l circomlib -o .)
}

setup() {
  local ptau="$PTAU"
  step "groth16 setup"
  "${SNARKJS[@]}" groth16 setup "$WORK/$NAME.r1cs" "$ptau" "$WORK/${NAME}_0000.zkey"
  step "phase 2 contribution"
  "${SNARKJS[@]}" zkey contribute "$WORK/${NAME}_0000.zkey" "$WORK/${NAME}_0001.zkey" \
    --name="JoyNet local phase 2 contribution" -e="JoyNet digits MLP local phase 2 entropy"
  step "phase 2 beacon"
  "${SNARKJS[@]}" zkey beacon "$WORK/${NAME}_0001.zkey" "$WORK/$NAME.zkey" "$PHASE2_BEACON" 10 \
    -n="JoyNet phase 2 beacon"
  step "zkey verify (the proving key matches the circuit and the powers of tau)"
  "${SNARKJS[@]}" zkey verify "$WORK/$NAME.r1cs" "$ptau" "$WORK/$NAME.zkey"
}

export_artefacts() {
  step "verification key, wasm witness generator, Solidity verifier"
  mkdir -p "$BUILD"
  cp "$WORK/$NAME.zkey" "$BUILD/$NAME.zkey"
  cp "$WORK/${NAME}_js/$NAME.wasm" "$BUILD/$NAME.wasm"
  "${SNARKJS[@]}" zkey export verificationkey "$BUILD/$NAME.zkey" "$BUILD/verification_key.json"
  if [ "$VERIFIER" != none ]; then
    mkdir -p contracts/verifiers
    "${SNARKJS[@]}" zkey export solidityverifier "$BUILD/$NAME.zkey" "$WORK/verifier.sol"
    # The template's own licence line stays first; our note follows it.
    awk 'NR == 1 { print; print "// Generated by `make circuits` (circuits/build.sh) from the snarkjs Groth16 verifier template; do not edit."
                   print "// Public inputs, in order: [weightsCommitment, inputCommitment, outputBinding = class * 2^224 + requestId * 2^160 + node]."; next }
         { sub(/contract Groth16Verifier/, "contract " verifier); print }' verifier="$VERIFIER" \
      "$WORK/verifier.sol" > "contracts/verifiers/$VERIFIER.sol"
    step "batch verifier (N proofs in one pairing check), from the same verification key"
    "${PYTHON:-python3}" -m joynet.zk.batch_verifier "$BUILD/verification_key.json" \
      "contracts/verifiers/${VERIFIER%Verifier}BatchVerifier.sol" --name "${VERIFIER%Verifier}BatchVerifier"
  fi
  step "manifest"
  "${PYTHON:-python3}" circuits/write_manifest.py "$WORK/$NAME.r1cs" "$WORK/$NAME.sym" \
    --source "$SOURCE" --out "$BUILD" --verifier "$VERIFIER" --power "$POWER"
}

if [ "$PTAU_ONLY" = 1 ]; then
  ptau
  exit 0
fi
compile  # first: a compile error shows before a long ceremony
ptau
setup
export_artefacts
step "done: ${BUILD#"$ROOT"/}/$NAME.* (verifiers: $VERIFIER and its batch verifier)"
