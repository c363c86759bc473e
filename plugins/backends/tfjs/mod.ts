/**
 * TensorFlow.js in Tunebox trials: pick the fastest backend that loads and computes
 * ({@linkcode loadTfjs}), declare what the sandbox must allow for it ({@linkcode tfjsBackend}),
 * report metrics and checkpoints from `model.fit` ({@linkcode tuneCallback},
 * {@linkcode restoreModel}), train one model across the workers of a trial
 * ({@linkcode dataParallel}) — the counterpart of Ray Tune's `TuneReportCheckpointCallback` —
 * and build the native backend from PyPI's TensorFlow ({@linkcode installNativeBackend}).
 *
 * Backends, fastest first: `tensorflow-gpu` (`npm:@tensorflow/tfjs-node-gpu` built against the
 * `tensorflow` wheel and CUDA 12), `webgpu` (Deno's `navigator.gpu` with
 * `npm:@tensorflow/tfjs-backend-webgpu`, hardware adapters only), `tensorflow`
 * (`npm:@tensorflow/tfjs-node` built against the `tensorflow-cpu` wheel), `wasm`
 * (`npm:@tensorflow/tfjs-backend-wasm`, its `.wasm` files read from the local module folder,
 * never the network), `cpu` (pure JavaScript). The native packages are found on disk and
 * imported by file URL, so neither `deno check` nor a trial ever downloads them; build them with
 * `deno task setup:tensorflow [--gpu]`.
 *
 * ```ts ignore
 * // inside a trainable
 * import { loadTfjs, restoreModel, tuneCallback } from "jsr:@tunebox/tunebox/backends/tfjs";
 * const { tf } = await loadTfjs({ session }); // the first report gets { backend: "tensorflow" }
 * const model = (await restoreModel(session)) ?? build(tf, config);
 * await model.fit(xs, ys, {
 *   epochs: config.epochs, initialEpoch: session.iteration, validationSplit: 0.1,
 *   callbacks: [tuneCallback(session, { metrics: { val_loss: "val_loss", val_acc: "val_acc" } })],
 * });
 * ```
 *
 * @module
 */

export type { JsonValue } from "../../../core/plugin.ts";
export {
  ALL_BACKENDS,
  type ReportOptions,
  type TfjsBackendName,
  type TuneSession,
} from "./types.ts";
export { type LoadedTfjs, loadTfjs, type LoadTfjsOptions, type Tf } from "./load.ts";
export {
  type Device,
  type SandboxPolicy,
  type TfjsBackend,
  tfjsBackend,
  type TfjsBackendOptions,
} from "./permissions.ts";
export {
  type CollectiveSession,
  type DataParallel,
  dataParallel,
  type DataParallelLoss,
  type DataParallelOptions,
  type Optimizer,
  type Scalar,
  type Tensor,
} from "./data_parallel.ts";
export { type TuneCallback, tuneCallback, type TuneCallbackOptions } from "./callback.ts";
export { type LayersModel, restoreModel, saveModel, type SaveModelOptions } from "./checkpoint.ts";
export {
  type NativeManifest,
  type NativePackage,
  TENSORFLOW_VERSION,
  TFJS_VERSION,
} from "./packages.ts";
export {
  backendCommand,
  defaultCacheDir,
  installNativeBackend,
  type InstallNativeOptions,
  type InstallNativeResult,
  NativeSetupError,
} from "./setup.ts";
