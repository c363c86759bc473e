/**
 * Saving and restoring models as checkpoints (`model.json` + `weights.bin`) with plain Deno file
 * calls, so every backend can checkpoint, tfjs-node or not.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";

/** A model as `model.fit` trains it. */
export type LayersModel = tf.LayersModel;

/** Options of {@linkcode saveModel}. */
export interface SaveModelOptions {
  /** Save the optimizer's state too. @default true */
  readonly includeOptimizer?: boolean;
}

/**
 * Saves a model into a folder as `model.json` + `weights.bin` (the layout tfjs-node's `file://`
 * handler reads), with plain `Deno.writeFile`: no tfjs-node needed.
 *
 * @param model the model.
 * @param dir the folder; created if missing.
 * @param options whether to include the optimizer's state.
 * @returns once both files are written.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTfjs, restoreModel, saveModel } from "./mod.ts";
 * const { tf } = await loadTfjs({ prefer: ["cpu"] });
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
 * const dir = await Deno.makeTempDir();
 * await saveModel(model, dir);
 * assert.deepEqual((await restoreModel(dir))?.outputs[0].shape, [null, 2]);
 * ```
 */
export async function saveModel(
  model: LayersModel,
  dir: string,
  options: SaveModelOptions = {},
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const handler = tf.io.withSaveHandler(async (artifacts) => {
    const weights = artifacts.weightData === undefined
      ? new ArrayBuffer(0)
      : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    const json = {
      modelTopology: artifacts.modelTopology,
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy,
      ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
      ...(artifacts.userDefinedMetadata
        ? { userDefinedMetadata: artifacts.userDefinedMetadata }
        : {}),
      weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs ?? [] }],
    };
    await Deno.writeFile(`${dir}/weights.bin`, new Uint8Array(weights));
    await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(json));
    return {
      modelArtifactsInfo: {
        dateSaved: new Date(),
        modelTopologyType: "JSON",
        weightDataBytes: weights.byteLength,
      },
    };
  });
  await model.save(handler, { includeOptimizer: options.includeOptimizer ?? true });
}

/**
 * Loads a model saved by {@linkcode tuneCallback} or {@linkcode saveModel}: from the session's
 * checkpoint (resolves to undefined when the trial has none, i.e. a fresh start) or from a
 * folder. With a saved optimizer state the model comes back compiled, ready to go on training.
 *
 * @param source the trial's session, or a checkpoint folder.
 * @returns the model, or undefined for a session without a checkpoint.
 * @throws {Deno.errors.NotFound} when a folder holds no `model.json`.
 * @example
 * ```ts ignore
 * const model = (await restoreModel(session)) ?? buildModel(config);
 * ```
 */
export async function restoreModel(
  source: string | { readonly checkpoint?: string },
): Promise<LayersModel | undefined> {
  const dir = typeof source === "string" ? source : source.checkpoint;
  if (dir === undefined) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/model.json`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(
        `No model checkpoint in "${dir}": model.json is missing (was it saved with ` +
          `tuneCallback or saveModel?)`,
        { cause: e },
      );
    }
    throw e;
  }
  const json = JSON.parse(text) as tf.io.ModelJSON;
  const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs = manifest.flatMap((g) => g.weights);
    const parts = await Promise.all(
      manifest.flatMap((g) => g.paths).map((p) => Deno.readFile(`${dir}/${p}`)),
    );
    const total = parts.reduce((n, p) => n + p.byteLength, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.byteLength;
    }
    return [specs, data.buffer];
  });
  return await tf.loadLayersModel({ load: () => Promise.resolve(artifacts) });
}
