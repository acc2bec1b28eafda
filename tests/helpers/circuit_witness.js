#!/usr/bin/env node
// Witnesses of a compiled circuit for the generator's tests: one JSON input per stdin line, one
// line per input on stdout, {"witness": ["1", ...]} or {"error": "..."} when the wasm's own
// constraint checks (every === of the circuit) reject it.
//   node circuit_witness.js <circuit.wasm>
"use strict";

const fs = require("fs");
const readline = require("readline");
const { WitnessCalculatorBuilder } = require("circom_runtime");

async function main() {
  const calculator = await WitnessCalculatorBuilder(fs.readFileSync(process.argv[2]));
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      answer = { witness: (await calculator.calculateWitness(JSON.parse(line), true)).map(String) };
    } catch (error) {
      answer = { error: String(error && error.message ? error.message : error) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
