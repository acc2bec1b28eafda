#!/usr/bin/env node
// A solc command-line front end over solc-js (npm `solc`), shaped so that py-solc-x and
// ape-solidity accept it as an installed native compiler. No native solc can be downloaded
// on our machines, and solc-js's own CLI cannot be used directly: it prints an SMT warning
// before the JSON and may cut its output at 64 KiB by exiting right after writing.
//
// Supported calls (all that py-solc-x makes):
//   --version                         -> "Version: 0.8.28+commit.<hash>.<platform>"
//   --standard-json [--base-path P] [--allow-paths A,B] [--include-path I]...
//                                     -> only the standard-JSON output on stdout, exit 0
"use strict";

const fs = require("fs");
const path = require("path");

const args = process.argv.slice(2);
const VERSION_CACHE = path.join(__dirname, ".solc-version-cache");

function loadSolc() {
  // Resolved from the project's node_modules, next to this file's parent.
  return require(require.resolve("solc", { paths: [path.join(__dirname, "..")] }));
}

function printVersion() {
  // ape-solidity asks for the version several times per compile; loading the 8 MB
  // emscripten module each time costs seconds, so the answer is cached beside the shim.
  let long;
  try {
    long = fs.readFileSync(VERSION_CACHE, "utf8").trim();
  } catch (_) {
    long = loadSolc().version(); // e.g. 0.8.28+commit.7893614a.Emscripten.clang
    try {
      fs.writeFileSync(VERSION_CACHE, long + "\n");
    } catch (_) {
      /* read-only install: answer anyway */
    }
  }
  process.stdout.write("solc, the solidity compiler commandline interface\nVersion: " + long + "\n");
}

function optionValues(name) {
  const values = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name && i + 1 < args.length) values.push(args[++i]);
    else if (args[i].startsWith(name + "=")) values.push(args[i].slice(name.length + 1));
  }
  return values;
}

function makeImportResolver() {
  const roots = [];
  for (const p of optionValues("--base-path")) roots.push(path.resolve(p));
  for (const p of optionValues("--include-path")) roots.push(path.resolve(p));
  if (roots.length === 0) roots.push(process.cwd());
  return function findImport(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.join(root, importPath));
    for (const candidate of candidates) {
      try {
        return { contents: fs.readFileSync(candidate, "utf8") };
      } catch (_) {
        /* try the next root */
      }
    }
    return { error: "File not found in " + roots.join(", ") + ": " + importPath };
  };
}

function compileStandardJson() {
  const input = fs.readFileSync(0, "utf8");
  let output;
  try {
    output = loadSolc().compile(input, { import: makeImportResolver() });
  } catch (err) {
    // Report as solc does: a JSON error object, exit status 0.
    output = JSON.stringify({
      errors: [{ type: "InternalCompilerError", severity: "error", component: "general",
                 message: String(err && err.stack ? err.stack : err),
                 formattedMessage: String(err) }],
    });
  }
  // No process.exit() here: let Node flush the pipe fully (outputs exceed 64 KiB).
  process.stdout.write(output);
}

if (args.includes("--version")) {
  printVersion();
} else if (args.includes("--standard-json")) {
  compileStandardJson();
} else {
  process.stderr.write(
    "solc-shim: only --version and --standard-json are supported (this is solc-js behind a shim)\n"
  );
  process.exitCode = 1;
}
