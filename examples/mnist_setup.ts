/**
 * What the MNIST examples (02, 03, 04, 06) share on the driver side: the size knobs read from the
 * environment, the decoded digits in a data folder that sandboxed trials may read, the search
 * space of `mnist_trainable.ts`, and the live table's columns.
 */
import { type Callback, choice, loguniform, type ResultGrid, type SandboxPolicy } from "../mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { tfjsBackend } from "../plugins/backends/tfjs.ts";
import { writeMnistCache } from "../plugins/backends/mnist.ts";

/** The sizes of a run and where it goes; each can be overridden by an environment variable. */
export interface MnistSetup {
  /** `EPOCHS`: epochs per trial (also ASHA's maxT). */
  readonly epochs: number;
  /** `TRAIN_SIZE`: training digits per trial. */
  readonly trainSize: number;
  /** `NUM_SAMPLES`: trials. */
  readonly numSamples: number;
  /** `SEED`. */
  readonly seed: number;
  /** `STORAGE`: where experiment folders go. */
  readonly storage: string;
  /** `NAME`: the experiment folder's name (default: trainable and date). */
  readonly name: string | undefined;
  /** The shared, read-only folder holding the decoded digits. */
  readonly dataDir: string;
  /**
   * What trials may do: read the data folder and the wasm files of TensorFlow.js, and, once
   * `deno task setup:tensorflow` built the native backend, load it (FFI on its binding's folder).
   */
  readonly sandbox: SandboxPolicy;
}

/** Reads the size knobs (with these defaults) and decodes the digits once into the data folder. */
export async function mnistSetup(
  defaults: { epochs: number; trainSize: number; numSamples: number },
): Promise<MnistSetup> {
  const env = (k: string, d: number) => Number(Deno.env.get(k) ?? d);
  const storage = Deno.env.get("STORAGE") ?? "./tunebox_results";
  await writeMnistCache(`${storage}/mnist_data`);
  // The native backend's permissions only name what is built: FFI appears once it is.
  // BACKEND=wasm keeps trials off it (they then pick wasm), e.g. to compare.
  const native = tfjsBackend({ native: Deno.env.get("BACKEND") !== "wasm" }).permissions();
  const dataDir = await Deno.realPath(`${storage}/mnist_data`);
  return {
    epochs: env("EPOCHS", defaults.epochs),
    trainSize: env("TRAIN_SIZE", defaults.trainSize),
    numSamples: env("NUM_SAMPLES", defaults.numSamples),
    seed: env("SEED", 0),
    storage,
    name: Deno.env.get("NAME"),
    dataDir,
    sandbox: { ...native, read: [dataDir, ...(native.read ?? [])] },
  };
}

/** The backends the trials reported in their first result, e.g. "tensorflow (4 trials)". */
export function backendsUsed(results: ResultGrid): string {
  const counts = new Map<string, number>();
  for (const t of results.trials) {
    const b = String(results.history(t.id)[0]?.backend ?? "unknown");
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  return [...counts].map(([b, n]) => `${b} (${n} trial${n === 1 ? "" : "s"})`).join(", ");
}

/** The search space of the classifier: layer sizes, learning rate (log scale) and batch size. */
export function mnistSpace(s: MnistSetup) {
  return {
    layer_1: choice([32, 64, 128]),
    layer_2: choice([64, 128, 256]),
    lr: loguniform(1e-4, 1e-1),
    batch_size: choice([32, 64, 128]),
    epochs: s.epochs,
    train_size: s.trainSize,
    data_dir: s.dataDir,
  };
}

/** The live table with short column names. */
export function mnistTable(): Callback {
  return tableReporter({
    parameterColumns: { layer_1: "l1", layer_2: "l2", lr: "lr", batch_size: "batch" },
    metricColumns: { val_loss: "val_loss", val_acc: "val_acc" },
  });
}
