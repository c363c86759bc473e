/**
 * TensorFlow.js in Tunebox trials (the `./backends/tfjs` export): see `./tfjs/mod.ts`. Kept as a
 * file so that imports of `plugins/backends/tfjs.ts` keep working.
 *
 * @module
 */
export * from "./tfjs/mod.ts";
