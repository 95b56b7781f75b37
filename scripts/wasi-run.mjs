// Runs a wasm32-wasip1 program under Node's WASI: cargo's target runner for the test binaries
// of scripts/wasm-tests.sh. The repository root is preopened (tests read tests/vectors/).
// The crate's proxy-wasm host layer imports Envoy's hostcalls from "env"; a test never calls
// them, so each is a stub that fails loudly if it is.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process from "node:process";

const [wasmPath, ...args] = process.argv.slice(2);
const root = process.env.WASI_ROOT ?? process.cwd();
const wasi = new WASI({
  version: "preview1",
  args: [wasmPath, ...args],
  env: { RUST_BACKTRACE: "0" },
  preopens: { [root]: root },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const imports = wasi.getImportObject();
imports.env = {};
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  if (from === "env" && kind === "function") {
    imports.env[name] = () => {
      throw new Error(`hostcall ${name} called outside Envoy`);
    };
  }
}
const instance = await WebAssembly.instantiate(module, imports);
// proxy-wasm also exports the reactor entry `_initialize`, which WASI.start refuses next to
// `_start`: hand it the command's exports only.
const { memory, _start } = instance.exports;
process.exitCode = wasi.start({ exports: { memory, _start } });
