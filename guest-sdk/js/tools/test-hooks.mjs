// Lets `node --test` find the SDK as `vigil_filter` from any folder (scripts/build-js-guest.sh
// --test passes `--import` this file): the same module the build bundles. Inside Vigil's
// guest-sdk/js the package resolves itself; a project made by `vigil filter new` links it in
// node_modules; this hook covers any other folder.

import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

const SDK = new URL("../vigil_filter.js", import.meta.url).href;

if (isMainThread) register(import.meta.url);

/** Resolves `vigil_filter` to this checkout's SDK; everything else as Node does. */
export async function resolve(specifier, context, next) {
  if (specifier === "vigil_filter") return { url: SDK, shortCircuit: true };
  return next(specifier, context);
}
