// Poseidon test vectors from circomlibjs, for tests/unit/test_zk_poseidon.py.
// stdin:  {"hashes": [["1", "2"], ...], "chains": [["e0", "e1", ...], ...]}   (decimal strings)
// stdout: {"wasm": [...], "reference": [...], "chains": [...]}                  (decimal strings)
// "wasm" is circomlibjs's default Poseidon, "reference" its straightforward implementation with
// the original (unoptimized) round constants. A chain hashes its first 16 elements, then the
// previous digest with up to 15 more elements at a time (README: weightsCommitment).
"use strict";

const { buildPoseidon, buildPoseidonReference } = require("circomlibjs");

async function main() {
  const request = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const wasm = await buildPoseidon();
  const reference = await buildPoseidonReference();
  const asString = (hash) => wasm.F.toString(hash);
  const chain = (elements) => {
    let digest = wasm(elements.slice(0, 16).map(BigInt));
    for (let start = 16; start < elements.length; start += 15) {
      digest = wasm([digest, ...elements.slice(start, start + 15).map(BigInt)]);
    }
    return asString(digest);
  };
  process.stdout.write(JSON.stringify({
    wasm: request.hashes.map((inputs) => asString(wasm(inputs.map(BigInt)))),
    reference: request.hashes.map((inputs) => reference.F.toString(reference(inputs.map(BigInt)))),
    chains: request.chains.map(chain),
  }));
}

main().catch((error) => { console.error(error); process.exit(1); });
