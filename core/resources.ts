/**
 * CPU and GPU accounting for trials: which devices exist ({@linkcode discoverGpus}), and a
 * {@linkcode ResourcePool} that packs trials onto them, fractional GPUs included, and gives each
 * trial the environment (`CUDA_VISIBLE_DEVICES`, ...) that pins it to its devices.
 *
 * Pause and resume need nothing special: a paused trial releases its allocation and acquires a
 * new one (possibly on another device) when it resumes.
 *
 * @module
 */

import type { Resources } from "./plugin.ts";

/** Re-exported: the request type {@linkcode ResourcePool} takes. */
export type { Resources };

/** One GPU the driver may hand to trials. */
export interface Device {
  /** The device index as `nvidia-smi -L` numbers it (PCI bus order). */
  readonly index: number;
  /** The product name, e.g. `NVIDIA H100 80GB HBM3`. */
  readonly name: string;
  /** The device UUID (`GPU-...`), when known; `CUDA_VISIBLE_DEVICES` then names it. */
  readonly uuid?: string;
}

/** The share of one device given to a trial. */
export interface GpuShare {
  /** The device index ({@linkcode Device.index}). */
  readonly index: number;
  /** The fraction of the device, in (0, 1]. */
  readonly share: number;
}

/** What a trial holds while it runs. */
export interface Allocation {
  /** The trial holding it. */
  readonly trialId: string;
  /** CPUs held (may be fractional). */
  readonly cpu: number;
  /** The GPU shares held; empty for a CPU-only trial. */
  readonly gpus: readonly GpuShare[];
  /**
   * Variables to set in the trial's environment: `CUDA_VISIBLE_DEVICES` (the trial's devices,
   * or `""` to hide every GPU from a CPU-only trial), `CUDA_DEVICE_ORDER=PCI_BUS_ID` (so indices
   * mean what `nvidia-smi` says), and `TF_FORCE_GPU_ALLOW_GROWTH=true` on a shared device so that
   * TensorFlow does not grab the whole device's memory.
   */
  readonly env: Readonly<Record<string, string>>;
}

/** Options of {@linkcode ResourcePool}. */
export interface ResourcePoolOptions {
  /** CPUs the trials may use together (may be fractional). */
  readonly cpus: number;
  /** The GPUs trials may use. @default [] */
  readonly gpus?: readonly Device[];
}

/** Free capacity of a pool. */
export interface FreeResources {
  /** Free CPUs. */
  readonly cpu: number;
  /** Free share of each device, in device order. */
  readonly gpus: readonly GpuShare[];
}

// Shares are counted in 1/10000 units (Ray's resolution) so that 0.1 + 0.2 fits 0.3 exactly.
const UNIT = 10_000;
const toUnits = (x: number): number => Math.round(x * UNIT);
const fromUnits = (u: number): number => u / UNIT;

/**
 * Counts CPUs and GPU shares held by running trials and hands out allocations.
 *
 * A fractional GPU request (`gpu: 0.25`) goes onto one device: the fullest device it still fits
 * (best fit), so whole devices stay free for whole-GPU trials. A whole request (`gpu: 2`) takes
 * that many completely free devices. Requests above 1 must be whole numbers, as in Ray.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ResourcePool } from "./resources.ts";
 * const pool = new ResourcePool({ cpus: 4, gpus: [{ index: 0, name: "GPU 0" }] });
 * const a = pool.tryAcquire("t1", { cpu: 1, gpu: 0.5 });
 * assert.equal(a?.env.CUDA_VISIBLE_DEVICES, "0");
 * assert.equal(pool.maxConcurrent({ cpu: 1, gpu: 0.5 }), 2);
 * pool.release("t1");
 * ```
 */
export class ResourcePool {
  readonly #cpus: number;
  readonly #devices: readonly Device[];
  #freeCpu: number;
  readonly #freeGpu: number[];
  readonly #held = new Map<string, Allocation>();

  /**
   * Creates a pool.
   *
   * @param options the CPUs and devices to share out.
   * @throws {RangeError} when `cpus` is not a positive finite number, or devices repeat an index.
   */
  constructor(options: ResourcePoolOptions) {
    const { cpus, gpus = [] } = options;
    if (typeof cpus !== "number" || !Number.isFinite(cpus) || cpus <= 0) {
      throw new RangeError(
        `ResourcePool option "cpus" must be a positive finite number, got ${String(cpus)}`,
      );
    }
    const seen = new Set<number>();
    for (const d of gpus) {
      if (!Number.isInteger(d.index) || d.index < 0) {
        throw new RangeError(
          `ResourcePool option "gpus" needs integer indices >= 0, got ${String(d.index)}`,
        );
      }
      if (seen.has(d.index)) {
        throw new RangeError(`ResourcePool option "gpus" lists device ${d.index} twice`);
      }
      seen.add(d.index);
    }
    this.#cpus = toUnits(cpus);
    this.#freeCpu = this.#cpus;
    this.#devices = [...gpus];
    this.#freeGpu = gpus.map(() => UNIT);
  }

  /** The devices of the pool. */
  get devices(): readonly Device[] {
    return this.#devices;
  }

  /** Every allocation currently held, in acquisition order. */
  get allocations(): readonly Allocation[] {
    return [...this.#held.values()];
  }

  /**
   * The allocation a trial holds, if any.
   *
   * @param trialId the trial.
   * @returns its allocation, or undefined.
   */
  allocation(trialId: string): Allocation | undefined {
    return this.#held.get(trialId);
  }

  /**
   * The free capacity now.
   *
   * @returns free CPUs and the free share of each device.
   */
  free(): FreeResources {
    return {
      cpu: fromUnits(this.#freeCpu),
      gpus: this.#devices.map((d, i) => ({ index: d.index, share: fromUnits(this.#freeGpu[i]) })),
    };
  }

  /**
   * Checks that a request could ever be met by this pool.
   *
   * @param req the trial's resources.
   * @throws {RangeError} when the request is malformed or larger than the whole pool, with a
   * message naming what was asked and what exists.
   */
  check(req: Resources): void {
    this.#units(req);
  }

  /**
   * Whether {@linkcode ResourcePool.tryAcquire} would reserve `req` now; reserves nothing (and
   * makes no allocation object: the runner asks before every start).
   *
   * @param req the trial's resources (`cpu` defaults to 1, `gpu` to 0).
   * @returns true when the resources are free now.
   * @throws {RangeError} when the request can never fit (see {@linkcode ResourcePool.check}).
   */
  fits(req: Resources): boolean {
    const { cpu, gpu } = this.#units(req);
    // No GPU asked (the usual trial): nothing to pick, and #pickDevices never compiled.
    return cpu <= this.#freeCpu &&
      (gpu === 0 || this.#pickDevices(gpu, this.#freeGpu) !== undefined);
  }

  /**
   * Reserves resources for a trial if they are free now.
   *
   * @param trialId the trial; it must not hold an allocation already.
   * @param req the trial's resources (`cpu` defaults to 1, `gpu` to 0).
   * @returns the allocation, or undefined when the resources are busy (try again later).
   * @throws {RangeError} when the request can never fit (see {@linkcode ResourcePool.check}).
   * @throws {TypeError} when the trial already holds an allocation.
   */
  tryAcquire(trialId: string, req: Resources): Allocation | undefined {
    const { cpu, gpu } = this.#units(req);
    if (this.#held.has(trialId)) {
      throw new TypeError(
        `Trial "${trialId}" already holds resources; release them before acquiring again`,
      );
    }
    if (cpu > this.#freeCpu) return undefined;
    const picked = gpu === 0 ? [] : this.#pickDevices(gpu, this.#freeGpu);
    if (picked === undefined) return undefined;
    this.#freeCpu -= cpu;
    const shares: GpuShare[] = [];
    for (const [slot, units] of picked) {
      this.#freeGpu[slot] -= units;
      shares.push({ index: this.#devices[slot].index, share: fromUnits(units) });
    }
    const alloc: Allocation = Object.freeze({
      trialId,
      cpu: fromUnits(cpu),
      gpus: Object.freeze(shares),
      env: Object.freeze(this.#env(picked)),
    });
    this.#held.set(trialId, alloc);
    return alloc;
  }

  /**
   * Gives back what a trial holds (it ended, was killed, or paused).
   *
   * @param trialId the trial.
   * @returns true when it held something.
   */
  release(trialId: string): boolean {
    const alloc = this.#held.get(trialId);
    if (!alloc) return false;
    this.#held.delete(trialId);
    this.#freeCpu += toUnits(alloc.cpu);
    for (const g of alloc.gpus) {
      const slot = this.#devices.findIndex((d) => d.index === g.index);
      this.#freeGpu[slot] += toUnits(g.share);
    }
    return true;
  }

  /**
   * How many trials of this size fit in the empty pool at once.
   *
   * @param req the trial's resources.
   * @returns the count; `Infinity` for a request of no CPU and no GPU.
   * @throws {RangeError} when the request can never fit.
   */
  maxConcurrent(req: Resources): number {
    const { cpu, gpu } = this.#units(req);
    let n = cpu > 0 ? Math.floor(this.#cpus / cpu) : Infinity;
    if (gpu > 0) {
      const byGpu = gpu < UNIT
        ? this.#devices.length * Math.floor(UNIT / gpu)
        : Math.floor(this.#devices.length / (gpu / UNIT));
      n = Math.min(n, byGpu);
    }
    return n;
  }

  #units(req: Resources): { cpu: number; gpu: number } {
    const cpu = req.cpu ?? 1, gpu = req.gpu ?? 0;
    if (typeof cpu !== "number" || !Number.isFinite(cpu) || cpu < 0) {
      throw new RangeError(
        `resources.cpu must be a finite number >= 0, got ${show(req.cpu)}`,
      );
    }
    if (typeof gpu !== "number" || !Number.isFinite(gpu) || gpu < 0) {
      throw new RangeError(
        `resources.gpu must be a finite number >= 0, got ${show(req.gpu)}`,
      );
    }
    if (gpu > 1 && !Number.isInteger(gpu)) {
      throw new RangeError(
        `resources.gpu must be at most 1 or a whole number, got ${gpu}: a trial shares one ` +
          `device or takes whole devices`,
      );
    }
    const cu = toUnits(cpu), gu = toUnits(gpu);
    if (gpu > 0 && gu === 0) {
      throw new RangeError(`resources.gpu must be 0 or at least 0.0001, got ${gpu}`);
    }
    if (cu > this.#cpus) {
      throw new RangeError(
        `A trial asks for resources.cpu = ${cpu} but the pool has ${fromUnits(this.#cpus)} ` +
          `CPU(s): lower resources.cpu or raise the pool's CPUs`,
      );
    }
    if (gpu > this.#devices.length) {
      const found = this.#devices.length === 0
        ? "no GPU was found"
        : `only ${this.#devices.length} GPU(s) exist (${
          this.#devices.map((d) => `${d.index}: ${d.name}`).join(", ")
        })`;
      throw new RangeError(
        `A trial asks for resources.gpu = ${gpu} but ${found}: lower resources.gpu, or name ` +
          `the devices with the "gpus" option or the TUNEBOX_GPUS variable`,
      );
    }
    return { cpu: cu, gpu: gu };
  }

  /** Picks [slot, units] pairs for a request, or undefined when it does not fit now. */
  #pickDevices(gpu: number, free: readonly number[]): [number, number][] | undefined {
    if (gpu === 0) return [];
    if (gpu < UNIT) {
      // Best fit: the fullest device that still has room.
      let best = -1;
      for (let i = 0; i < free.length; i++) {
        if (free[i] >= gpu && (best < 0 || free[i] < free[best])) best = i;
      }
      return best < 0 ? undefined : [[best, gpu]];
    }
    const whole = gpu / UNIT;
    const slots: [number, number][] = [];
    for (let i = 0; i < free.length && slots.length < whole; i++) {
      if (free[i] === UNIT) slots.push([i, UNIT]);
    }
    return slots.length === whole ? slots : undefined;
  }

  #env(picked: readonly [number, number][]): Record<string, string> {
    const env: Record<string, string> = {
      CUDA_VISIBLE_DEVICES: picked.map(([slot]) => deviceId(this.#devices[slot])).join(","),
    };
    if (picked.length > 0) env.CUDA_DEVICE_ORDER = "PCI_BUS_ID";
    if (picked.some(([, units]) => units < UNIT)) env.TF_FORCE_GPU_ALLOW_GROWTH = "true";
    return env;
  }
}

function show(x: unknown): string {
  return typeof x === "string" ? JSON.stringify(x) : String(x);
}

function deviceId(d: Device): string {
  return d.uuid ?? String(d.index);
}

/** Options of {@linkcode discoverGpus}. */
export interface DiscoverGpusOptions {
  /**
   * The devices to use instead of asking `nvidia-smi`: a list, or a count of simulated devices
   * (`0` turns GPUs off). @default the `TUNEBOX_GPUS` variable if set, else `nvidia-smi -L`
   */
  readonly gpus?: readonly Device[] | number;
  /**
   * Environment to read `TUNEBOX_GPUS` and `CUDA_VISIBLE_DEVICES` from.
   * @default `Deno.env` (unreadable variables count as unset)
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Told why discovery found nothing when `nvidia-smi` exists but fails. @default console.warn */
  readonly warn?: (message: string) => void;
}

/**
 * Finds the GPUs trials may use: the `gpus` option, else the `TUNEBOX_GPUS` variable (a count
 * of simulated devices, or comma-separated names, for tests), else `nvidia-smi -L`. A missing
 * `nvidia-smi` means no GPU, and so does a Linux machine without an NVIDIA driver (neither
 * `/dev/nvidiactl` nor `/dev/dxg`: `nvidia-smi` is not run there). When the driver's own `CUDA_VISIBLE_DEVICES` is set (e.g. by a batch
 * scheduler), only the devices it names are used.
 *
 * @param options where to look.
 * @returns the devices, in index order.
 * @throws {RangeError} when `gpus` or `TUNEBOX_GPUS` is malformed.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { discoverGpus } from "./resources.ts";
 * const devices = await discoverGpus({ gpus: 2 });
 * assert.deepEqual(devices.map((d) => d.name), ["GPU 0", "GPU 1"]);
 * ```
 */
export async function discoverGpus(options: DiscoverGpusOptions = {}): Promise<Device[]> {
  const getEnv = (k: string): string | undefined => {
    if (options.env) return options.env[k];
    try {
      return Deno.env.get(k);
    } catch {
      return undefined;
    }
  };
  const { gpus } = options;
  if (gpus !== undefined) {
    if (typeof gpus === "number") return simulated(gpus, `option "gpus"`);
    if (!Array.isArray(gpus)) {
      throw new RangeError(
        `discoverGpus option "gpus" must be a list of devices or a count, got ${String(gpus)}`,
      );
    }
    return [...gpus].sort((a, b) => a.index - b.index);
  }
  const forced = getEnv("TUNEBOX_GPUS");
  if (forced !== undefined && forced.trim() !== "") return forcedGpus(forced);
  // Without an NVIDIA driver there is nothing to ask: a stat or two, where starting a command
  // costs milliseconds the first time in a process (Deno loads its process module).
  if (!mayHaveNvidiaDriver()) return [];
  return await askNvidiaSmi(getEnv, options.warn ?? ((m: string) => console.warn(m)));
}

// The two ways below of finding devices are functions of their own, compiled only when used
// (most machines have neither TUNEBOX_GPUS nor an NVIDIA driver).

/** The devices `TUNEBOX_GPUS` (set, not blank) names or counts. */
function forcedGpus(forced: string): Device[] {
  const t = forced.trim();
  if (/^\d+$/.test(t)) return simulated(Number(t), "TUNEBOX_GPUS");
  const names = t.split(",").map((s) => s.trim());
  if (names.some((n) => n === "")) {
    throw new RangeError(
      `TUNEBOX_GPUS must be a count ("2") or comma-separated device names ` +
        `("A100,A100"), got "${forced}"`,
    );
  }
  return names.map((name, index) => ({ index, name }));
}

/** The devices `nvidia-smi -L` lists, less those `CUDA_VISIBLE_DEVICES` hides. */
async function askNvidiaSmi(
  getEnv: (k: string) => string | undefined,
  warn: (m: string) => void,
): Promise<Device[]> {
  let text: string;
  try {
    const out = await new Deno.Command("nvidia-smi", {
      args: ["-L"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim() || text.trim();
      warn(`nvidia-smi -L failed (exit code ${out.code}): ${err} — running without GPUs`);
      return [];
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    warn(
      `Could not run nvidia-smi -L (${e instanceof Error ? e.message : String(e)}) — running ` +
        `without GPUs; allow it with --allow-run=nvidia-smi or pass the "gpus" option`,
    );
    return [];
  }
  return visibleDevices(parseNvidiaSmiList(text), getEnv("CUDA_VISIBLE_DEVICES"));
}

/**
 * False only when this is surely a machine without an NVIDIA driver: Linux with neither
 * `/dev/nvidiactl` nor `/dev/dxg` (WSL 2's GPU device), whose `nvidia-smi` could only fail. True
 * elsewhere, and when the device files cannot be looked at (then `nvidia-smi` tells).
 */
function mayHaveNvidiaDriver(): boolean {
  if (Deno.build.os !== "linux") return true;
  for (const path of ["/dev/nvidiactl", "/dev/dxg"]) {
    try {
      Deno.statSync(path);
      return true;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) return true;
    }
  }
  return false;
}

function simulated(n: number, what: string): Device[] {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`${what} must be a whole number of devices >= 0, got ${n}`);
  }
  return Array.from({ length: n }, (_, index) => ({ index, name: `GPU ${index}` }));
}

/**
 * The devices a `CUDA_VISIBLE_DEVICES` value leaves visible, in the order it names them. Ids are
 * indices or UUID prefixes; like CUDA, the list ends at the first id that names no device (so
 * `"-1"` and `""` hide every device). An unset variable leaves every device visible.
 *
 * @param devices every device `nvidia-smi -L` lists.
 * @param cudaVisibleDevices the variable's value, or undefined when unset.
 * @returns the visible devices.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { visibleDevices } from "./resources.ts";
 * const all = [{ index: 0, name: "A" }, { index: 1, name: "B" }];
 * assert.deepEqual(visibleDevices(all, "1"), [{ index: 1, name: "B" }]);
 * ```
 */
export function visibleDevices(
  devices: readonly Device[],
  cudaVisibleDevices: string | undefined,
): Device[] {
  const visible = cudaVisibleDevices;
  if (visible === undefined) return [...devices];
  const ids = visible.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const keep: Device[] = [];
  for (const id of ids) {
    // CUDA stops at the first id it cannot parse (e.g. "-1"), and so do we.
    const d = /^\d+$/.test(id)
      ? devices.find((x) => x.index === Number(id))
      : devices.find((x) => x.uuid !== undefined && x.uuid.startsWith(id));
    if (!d) break;
    if (!keep.includes(d)) keep.push(d);
  }
  return keep;
}

/**
 * Parses the output of `nvidia-smi -L` (`GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)`).
 * MIG instance lines are skipped: their parent GPU is listed as one device.
 *
 * @param text the command's output.
 * @returns the devices listed.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseNvidiaSmiList } from "./resources.ts";
 * const d = parseNvidiaSmiList("GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5a1f)\n");
 * assert.deepEqual(d, [{ index: 0, name: "NVIDIA A100-SXM4-40GB", uuid: "GPU-5a1f" }]);
 * ```
 */
export function parseNvidiaSmiList(text: string): Device[] {
  const devices: Device[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^GPU (\d+): (.*?)(?: \(UUID: ([^)]+)\))?\s*$/.exec(line);
    if (!m) continue;
    devices.push(
      m[3] ? { index: Number(m[1]), name: m[2], uuid: m[3] } : {
        index: Number(m[1]),
        name: m[2],
      },
    );
  }
  return devices;
}
