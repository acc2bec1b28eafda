#!/usr/bin/env node
// One Node process for what `snarkjs zkey verify` and `snarkjs zkey export verificationkey` do
// in two (joynet.zk.ceremony.verify_ceremony): checks the zkey's whole contribution chain
// against the r1cs and the powers of tau, printing what the snarkjs CLI prints (the circuit hash
// and every contribution), and only then writes the zkey's verification key, byte for byte as
// the CLI writes it (the circuit id is that file's sha256).
//
//   node ceremony_verify.js <circuit.r1cs> <powers.ptau> <final.zkey> <verification_key.json>
//   exit 0 after "ZKey Ok!"; 1 when the zkey does not verify (snarkjs's reason on stdout).
const snarkjs = require("snarkjs");
const bfj = require("bfj");
const { utils } = require("ffjavascript");

const print = (level) => (...parts) => process.stdout.write(`[${level}] snarkJS: ${parts.join(" ")}\n`);
let reported = false; // snarkjs logs its own reason before it answers false
const logger = {
  info: print("INFO"),
  warn: print("WARN"),
  error: (...parts) => { reported = true; print("ERROR")(...parts); },
  debug: () => {},
};

async function main([r1cs, ptau, zkey, vkeyPath]) {
  if (!(await snarkjs.zKey.verifyFromR1cs(r1cs, ptau, zkey, logger))) {
    if (!reported) logger.error("the zkey does not verify");
    return 1;
  }
  logger.info("ZKey Ok!");
  const vkey = await snarkjs.zKey.exportVerificationKey(zkey, logger);
  await bfj.write(vkeyPath, utils.stringifyBigInts(vkey), { space: 1 });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    logger.error(error && error.message ? error.message : String(error));
    process.exit(1);
  },
);
