#!/usr/bin/env node
// A native-solc-compatible front for solc-js (the Emscripten build from npm).
// Why: no native solc can be downloaded on our machines, and py-solc-x (used by
// ape-solidity) only runs a solc executable. It calls exactly two forms:
//   solc --version
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths A,B]  (JSON on stdin)
// This file answers both the way native solc does.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: null, includePaths: [], allowPaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => argv[++i];
    if (arg === "--version") opts.version = true;
    else if (arg === "--standard-json") opts.standardJson = true;
    else if (arg === "--base-path") opts.basePath = next();
    else if (arg === "--include-path") opts.includePaths.push(next());
    else if (arg === "--allow-paths") opts.allowPaths.push(...next().split(","));
    else if (arg.startsWith("--base-path=")) opts.basePath = arg.split("=", 2)[1];
    else if (arg.startsWith("--include-path=")) opts.includePaths.push(arg.split("=", 2)[1]);
    else if (arg.startsWith("--allow-paths=")) opts.allowPaths.push(...arg.split("=", 2)[1].split(","));
    // Other flags (e.g. --no-color) do not change standard-JSON output; ignore them.
  }
  return opts;
}

function makeImportResolver(opts) {
  const roots = [opts.basePath, ...opts.includePaths, ...opts.allowPaths, process.cwd()]
    .filter(Boolean)
    .map((p) => path.resolve(p));
  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.join(root, importPath));
    for (const candidate of candidates) {
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        return { contents: fs.readFileSync(candidate, "utf8") };
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return 0;
  }
  if (!opts.standardJson) {
    process.stderr.write("solc-bridge: only --version and --standard-json are supported\n");
    return 1;
  }
  const input = fs.readFileSync(0, "utf8");
  const output = solc.compile(input, { import: makeImportResolver(opts) });
  process.stdout.write(output);
  return 0;
}

process.exitCode = main();
