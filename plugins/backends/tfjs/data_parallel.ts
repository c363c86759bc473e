/**
 * Data-parallel training of a TensorFlow.js model across the workers of a trial
 * (`resources.workers`), which TensorFlow.js has no support for: each worker computes the
 * gradients of its part of the global batch, the gradients are summed across the workers with
 * the session's ring all-reduce (weighted by each part's size, so uneven parts give the exact
 * gradient of the global batch), and every worker applies the same update: the replicas stay
 * identical, bit for bit.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { LayersModel } from "./checkpoint.ts";

/** A TensorFlow.js tensor (`tf.Tensor`). */
export type Tensor = tf.Tensor;
/** A TensorFlow.js scalar (`tf.Scalar`). */
export type Scalar = tf.Scalar;
/** A TensorFlow.js optimizer (`tf.train.adam(...)`, ...). */
export type Optimizer = tf.Optimizer;

/** The part of a trial's session that data-parallel training uses (Tunebox's session has it). */
export interface CollectiveSession {
  /** This worker's rank. */
  readonly rank: number;
  /** The number of workers. */
  readonly worldSize: number;
  /** Sums `data` across the workers, in place. */
  allreduce(data: Float32Array, op?: "sum" | "mean"): Promise<Float32Array>;
  /** Copies rank `root`'s `data` into every worker's, in place. */
  broadcast(data: Float32Array, root?: number): Promise<Float32Array>;
}

/** A loss by name, or a function of (labels, predictions) giving a scalar mean loss. */
export type DataParallelLoss =
  | "meanSquaredError"
  | "categoricalCrossentropy"
  | ((yTrue: Tensor, yPred: Tensor) => Scalar);

/** Options of {@linkcode dataParallel}. */
export interface DataParallelOptions {
  /** The optimizer that applies the averaged gradients (one per worker, same settings). */
  readonly optimizer: Optimizer;
  /** The trial's session: its rank, world size and collectives. */
  readonly session: CollectiveSession;
  /** The loss, averaged over the examples of a batch. @default "categoricalCrossentropy" */
  readonly loss?: DataParallelLoss;
}

/** A model trained across the workers of a trial. */
export interface DataParallel {
  /** The model (every worker holds an identical replica). */
  readonly model: LayersModel;
  /**
   * One training step on this worker's part of the global batch (`xs`, `ys`; may be empty):
   * gradients are combined across the workers and applied everywhere.
   *
   * @returns the mean loss over the global batch.
   */
  step(xs: Tensor, ys: Tensor): Promise<number>;
  /** Copies rank 0's weights to every worker (after building or restoring a model). */
  sync(): Promise<void>;
}

/**
 * Wraps a model for data-parallel training across the workers of a trial. Call `sync()` once
 * after building or restoring the model, then `step()` with each worker's part of each global
 * batch (`session.shard(...)`).
 *
 * @param model the model (built the same way on every worker).
 * @param options the optimizer, the session and the loss.
 * @returns the wrapper.
 * @throws {TypeError} when the session has no collectives or the loss is unknown.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dataParallel, loadTfjs } from "./mod.ts";
 * import { soloCollectives } from "../../../core/collectives.ts";
 * const { tf } = await loadTfjs({ prefer: ["cpu"] });
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
 * const dp = dataParallel(model, {
 *   optimizer: tf.train.sgd(0.1),
 *   session: soloCollectives(), // in a trial: the session
 *   loss: "meanSquaredError",
 * });
 * await dp.sync();
 * const loss = await dp.step(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[1], [2]]));
 * assert.equal(loss > 0, true);
 * ```
 */
export function dataParallel(model: LayersModel, options: DataParallelOptions): DataParallel {
  const { optimizer, session } = options;
  if (
    !session || typeof session.allreduce !== "function" ||
    typeof session.broadcast !== "function"
  ) {
    throw new TypeError(
      "dataParallel: options.session must be the trial's session (with allreduce and broadcast)",
    );
  }
  if (!optimizer || typeof optimizer.applyGradients !== "function") {
    throw new TypeError(
      "dataParallel: options.optimizer must be a tf.Optimizer, e.g. tf.train.adam()",
    );
  }
  const lossFn = resolveLoss(options.loss ?? "categoricalCrossentropy");
  const vars = (): tf.Variable[] =>
    model.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
  return {
    model,
    async step(xs, ys) {
      const list = vars();
      const sizes = list.map((v) => v.size);
      const total = sizes.reduce((a, b) => a + b, 0);
      const n = xs.shape[0] ?? 0;
      // [gradients × n ..., loss × n, n]: one all-reduce gives the global sums.
      const flat = new Float32Array(total + 2);
      if (n > 0) {
        const { value, grads } = tf.variableGrads(
          () => lossFn(ys, model.apply(xs, { training: true }) as tf.Tensor),
          list,
        );
        let off = 0;
        for (const v of list) {
          const g = grads[v.name]; // absent when the loss does not depend on v: zero
          if (g) {
            const data = g.dataSync();
            for (let i = 0; i < data.length; i++) flat[off + i] = data[i] * n;
            g.dispose();
          }
          off += v.size;
        }
        flat[total] = value.dataSync()[0] * n;
        value.dispose();
      }
      flat[total + 1] = n;
      await session.allreduce(flat, "sum");
      const global = flat[total + 1];
      if (global === 0) return NaN;
      const named: Record<string, tf.Tensor> = {};
      let off = 0;
      list.forEach((v, i) => {
        const part = flat.subarray(off, off + sizes[i]).map((x) => x / global);
        named[v.name] = tf.tensor(part, v.shape);
        off += sizes[i];
      });
      optimizer.applyGradients(named);
      for (const t of Object.values(named)) t.dispose();
      return flat[total] / global;
    },
    async sync() {
      const weights = model.getWeights();
      const sizes = weights.map((w) => w.size);
      const flat = new Float32Array(sizes.reduce((a, b) => a + b, 0));
      let off = 0;
      for (const w of weights) {
        flat.set(w.dataSync() as Float32Array, off);
        off += w.size;
      }
      await session.broadcast(flat, 0);
      off = 0;
      const fresh = weights.map((w, i) => {
        const t = tf.tensor(flat.slice(off, off + sizes[i]), w.shape);
        off += sizes[i];
        return t;
      });
      model.setWeights(fresh);
      for (const t of fresh) t.dispose();
    },
  };
}

function resolveLoss(loss: DataParallelLoss): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar {
  if (typeof loss === "function") return loss;
  switch (loss) {
    case "meanSquaredError":
      return (t, p) => tf.losses.meanSquaredError(t, p) as tf.Scalar;
    case "categoricalCrossentropy":
      return (t, p) => tf.metrics.categoricalCrossentropy(t, p).mean() as tf.Scalar;
    default:
      throw new TypeError(
        `dataParallel: unknown loss ${JSON.stringify(loss)}; use "meanSquaredError", ` +
          `"categoricalCrossentropy" or a function (yTrue, yPred) => scalar`,
      );
  }
}
