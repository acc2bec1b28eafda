#!/usr/bin/env node
// The long-lived proving process behind joynet.ZKProver.
//
// Loads the wasm witness generator, the proving key and the verification key once, builds the
// BN254 curve (its worker threads) once, then answers one JSON request per stdin line with one
// JSON response per stdout line, so that a proof pays neither Node start-up nor key loading.
//
//   node prover_worker.js <circuit.wasm> <circuit.zkey> <verification_key.json>
//   -> {"ready": true, "nPublic": 4}
//   <- {"id": 1, "op": "prove", "input": {"signal": "decimal" | [...], ...}}
//   -> {"id": 1, "proof": {...}, "publicSignals": [...], "verified": true,
//       "witnessSeconds": 0.9, "proveSeconds": 2.4, "proveCpuSeconds": 4.1, "verifySeconds": 0.02}
//   (proveCpuSeconds: the CPU time of the whole process during the proof, the curve's worker
//   threads included; above proveSeconds when they ran in parallel)
//   <- {"id": 2, "op": "verify", "publicSignals": [...], "proof": {...}, "vkey": {...} (optional)}
//   -> {"id": 2, "verified": true}   (against "vkey" when given, else the worker's own key;
//                                     a proof it cannot read: "verified": false, "unreadable": why)
//   <- {"id": 3, "op": "witness", "input": {...}}
//   -> {"id": 3, "witness": ["1", ...]}            (every wire, for tests and debugging)
//   <- {"id": 4, "op": "wtns", "input": {...}, "path": "<scratch dir>/witness.wtns"}
//   -> {"id": 4, "witnessSeconds": 0.02}           (the witness as a .wtns file, for the native prover)
// A failed request answers {"id": n, "error": "..."}; the process goes on. EOF on stdin ends it.
// stdout carries only these lines; diagnostics go to stderr.
"use strict";

const fs = require("fs");
const readline = require("readline");
const snarkjs = require("snarkjs");
const { WitnessCalculatorBuilder } = require("circom_runtime");

async function main() {
  const [wasmPath, zkeyPath, vkeyPath] = process.argv.slice(2);
  if (!vkeyPath) throw new Error("usage: prover_worker.js <circuit.wasm> <circuit.zkey> <verification_key.json>");

  const witnessCalculator = await WitnessCalculatorBuilder(fs.readFileSync(wasmPath));
  const zkey = new Uint8Array(fs.readFileSync(zkeyPath));
  const vkey = JSON.parse(fs.readFileSync(vkeyPath, "utf8"));
  const curve = await snarkjs.curves.getCurveFromName(vkey.curve);  // cached for every later call
  // A proving key from another ceremony than the verification key would give proofs that never
  // verify: refuse to start instead.
  const zkeyVerificationKey = await snarkjs.zKey.exportVerificationKey(zkey);
  for (const field of ["nPublic", "vk_alpha_1", "vk_beta_2", "vk_gamma_2", "vk_delta_2", "IC"]) {
    if (JSON.stringify(zkeyVerificationKey[field]) !== JSON.stringify(vkey[field])) {
      throw new Error(`the proving key does not match the verification key (${field} differs)`);
    }
  }

  const reply = (message) => process.stdout.write(JSON.stringify(message) + "\n");
  const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;
  const cpuSeconds = (start) => {
    const used = process.cpuUsage(start);
    return (used.user + used.system) / 1e6;
  };

  async function prove(input) {
    let start = process.hrtime.bigint();
    const witness = await witnessCalculator.calculateWTNSBin(input, true);
    const witnessSeconds = seconds(start);
    start = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const { proof, publicSignals } = await snarkjs.groth16.prove(zkey, witness);
    const proveSeconds = seconds(start);
    const proveCpuSeconds = cpuSeconds(cpu);
    start = process.hrtime.bigint();
    const verified = await snarkjs.groth16.verify(vkey, publicSignals, proof);
    return { proof, publicSignals, verified, witnessSeconds, proveSeconds, proveCpuSeconds, verifySeconds: seconds(start) };
  }

  const handlers = {
    prove: (request) => prove(request.input),
    // With "vkey": the proof of another circuit (a model package's own key), on the same curve.
    // A proof snarkjs cannot read (missing or malformed points) does not verify: it comes from
    // whoever answered, and must not pass for a failure of this worker.
    verify: async (request) => {
      try {
        return { verified: await snarkjs.groth16.verify(request.vkey || vkey, request.publicSignals, request.proof) };
      } catch (error) {
        return { verified: false, unreadable: String((error && error.message) || error) };
      }
    },
    wtns: async (request) => {
      const start = process.hrtime.bigint();
      fs.writeFileSync(request.path, await witnessCalculator.calculateWTNSBin(request.input, true));
      return { witnessSeconds: seconds(start) };
    },
    witness: async (request) => ({
      witness: (await witnessCalculator.calculateWitness(request.input, true)).map(String),
    }),
  };

  reply({ ready: true, nPublic: vkey.nPublic });
  // Requests are answered one at a time, in order: the caller waits for each answer anyway.
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let request = {};
    try {
      request = JSON.parse(line);
      const handler = handlers[request.op];
      if (!handler) throw new Error(`unknown op ${JSON.stringify(request.op)}`);
      reply({ id: request.id, ...(await handler(request)) });
    } catch (error) {
      reply({ id: request.id, error: String(error && error.message ? error.message : error) });
    }
  }
  await curve.terminate();
}

main().catch((error) => {
  process.stderr.write(`prover worker: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
