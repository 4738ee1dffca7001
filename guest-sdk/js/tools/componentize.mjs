// Builds a JavaScript filter into a vigil:filter@0.2.0 component (scripts/build-js-guest.sh
// runs it; not meant to be run by hand):
//
//   node componentize.mjs TOOLS_DIR ENTRY.js WIT_DIR WORLD OUT.wasm
//
// 1. esbuild bundles ENTRY.js (the script's generated glue: the app, the SDK, the host binding)
//    into one ES module; `vigil_filter` always resolves to this checkout's SDK, other packages
//    from the app's node_modules; the contract's own imports (vigil:..., wasi:...) stay imports.
// 2. ComponentizeJS (StarlingMonkey) makes the component of WORLD from WIT_DIR, with the engine
//    features the host does not provide disabled: no wasi:http (fetch) and no incoming handler.
//    stdio (console, uncaught errors to the host's log), clocks (the stream clock) and random
//    stay: the host links those WASI preview 2 interfaces.

import { writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [tools, entry, wit, world, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node componentize.mjs TOOLS_DIR ENTRY.js WIT_DIR WORLD OUT.wasm");
  process.exit(2);
}
const sdk = join(dirname(fileURLToPath(import.meta.url)), "..", "vigil_filter.js");
const load = (pkg, file) => import(pathToFileURL(join(tools, "node_modules", pkg, file)).href);

/** Features ComponentizeJS would link that the host does not: wasi:http and its handler. */
const DISABLED = ["http", "fetch-event"];

const esbuild = await load("esbuild", "lib/main.js");
let bundle;
try {
  const result = await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: dirname(entry),
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    target: "es2022",
    external: ["vigil:*", "wasi:*"],
    alias: { vigil_filter: sdk },
    logLevel: "silent",
    legalComments: "none",
  });
  bundle = result.outputFiles[0].text;
} catch (e) {
  const messages = e.errors ?? [{ text: String(e) }];
  for (const m of messages) {
    const where = m.location && resolve(dirname(entry), m.location.file);
    const at = where ? `${where}:${m.location.line}:${m.location.column}: ` : "";
    console.error(`${at}${m.text}`);
  }
  process.exit(1);
}
const source = join(dirname(entry), "filter.js");
await writeFile(source, bundle);

const { componentize } = await load("@bytecodealliance/componentize-js", "src/componentize.js");
try {
  const { component } = await componentize({
    sourcePath: source,
    witPath: wit,
    worldName: world,
    disableFeatures: DISABLED,
  });
  await writeFile(out, component);
} catch (e) {
  // The first lines say what went wrong (a syntax error, a missing export, a top-level throw).
  console.error(String(e.message ?? e).split("\n").slice(0, 30).join("\n"));
  process.exit(1);
}
