/**
 * Collectives between the workers of one multi-worker trial (`resources.workers > 1`): a
 * chunked, pipelined ring all-reduce, a ring broadcast and a barrier, over TCP between
 * neighbours on a ring. No JavaScript library does this (there is no NCCL or Gloo binding for
 * Deno or Node, and TensorFlow.js has no distributed training), so it is written here, on
 * `Deno.connect`/`Deno.listen` alone.
 *
 * Each worker listens on an address of its own, connects to the next rank's address and
 * accepts one connection from the previous rank. A connection opens with a hello that carries
 * the trial's ring token (given to the workers of this trial run only, through their channels
 * to the driver) and the sender's rank; anything else is closed. Each collective starts with
 * a header naming the call (kind, length, root, sequence number), so workers that call
 * different collectives get an error naming both calls instead of a hang or garbage.
 *
 * A worker that dies closes its sockets: its neighbours' pending collective fails at once
 * with {@linkcode CollectiveError}, which fails the trial, and the driver stops the other
 * workers. A worker that hangs is caught by the collective timeout.
 *
 * This module is imported by a trial process only when it is one of several workers.
 *
 * @module
 */

import { writeAll } from "./_write_all.ts";

/** A `host:port` a worker listens on or connects to. */
export interface RingAddress {
  /** Host name or IP address. */
  readonly hostname: string;
  /** TCP port. */
  readonly port: number;
}

/** Where a worker stands in its trial's group, as the driver tells it in the `start` message. */
export interface GroupInfo {
  /** This worker's rank, 0 .. worldSize-1. Rank 0's reports and checkpoints are the trial's. */
  readonly rank: number;
  /** The rank among the trial's workers on this node. */
  readonly localRank: number;
  /** How many workers the trial has. */
  readonly worldSize: number;
  /** The address this worker listens on (its previous rank connects here). */
  readonly listen: RingAddress;
  /** The address of the next rank, which this worker connects to. */
  readonly next: RingAddress;
  /** The trial run's ring token: a connection without it is refused. */
  readonly token: string;
  /**
   * Network permissions (`host:port`) this worker was granted only to form its ring, where its
   * neighbours' places were not known when it started (a Slurm step's tasks): once the ring is
   * formed, the worker revokes all of them but its next neighbour's, before the trainable loads.
   */
  readonly revokeAfterRing?: readonly string[];
  /**
   * How long a collective may wait for the others (forming the ring waits at least 2 minutes).
   * @default 1800000
   */
  readonly timeoutMs?: number;
}

/** How {@linkcode Collectives.allreduce} combines the workers' values. */
export type ReduceOp = "sum" | "mean";

/** What a collective works on: one array, or several (reduced as if concatenated). */
export type CollectiveData = Float32Array | Float32Array[];

/**
 * The collectives of a worker: all of them must be called by every worker of the trial, in the
 * same order, with arrays of the same lengths.
 */
export interface Collectives {
  /** This worker's rank. */
  readonly rank: number;
  /** This worker's rank on its node. */
  readonly localRank: number;
  /** The number of workers. */
  readonly worldSize: number;
  /**
   * Combines `data` across the workers, in place: afterwards every worker holds the same sum
   * (or mean) bit for bit. Returns `data`.
   */
  allreduce<T extends CollectiveData>(data: T, op?: ReduceOp): Promise<T>;
  /** Copies `root`'s `data` into every worker's `data`, in place. Returns `data`. */
  broadcast<T extends CollectiveData>(data: T, root?: number): Promise<T>;
  /** Resolves once every worker has called it. */
  barrier(): Promise<void>;
  /** Closes the ring connections. */
  close(): void;
}

/**
 * A collective failed: a worker left the ring, the workers called different collectives, or
 * the collective timed out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CollectiveError } from "./collectives.ts";
 * assert.equal(new CollectiveError("x").name, "CollectiveError");
 * ```
 */
export class CollectiveError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CollectiveError";
  }
}

/**
 * The collectives of a trial with one worker: `allreduce` and `broadcast` return their input,
 * `barrier` returns at once.
 *
 * @returns collectives for a world of one.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { soloCollectives } from "./collectives.ts";
 * const c = soloCollectives();
 * const x = await c.allreduce(new Float32Array([1, 2]), "mean");
 * assert.equal(x[1], 2);
 * assert.equal(c.worldSize, 1);
 * ```
 */
export function soloCollectives(): Collectives {
  return {
    rank: 0,
    localRank: 0,
    worldSize: 1,
    allreduce: (data) => {
      checkData(data, "allreduce");
      return Promise.resolve(data);
    },
    broadcast: (data, root = 0) => {
      checkData(data, "broadcast");
      if (root !== 0) {
        return Promise.reject(new RangeError(`broadcast: root ${root} is not a rank of 1 worker`));
      }
      return Promise.resolve(data);
    },
    barrier: () => Promise.resolve(),
    close: () => {},
  };
}

/** Options of {@linkcode connectRing}. */
export interface RingOptions {
  /** Floats per chunk of the pipeline. @default 65536 (256 KiB) */
  readonly chunkFloats?: number;
}

const MAGIC = 0x54425231; // "TBR1"
const HELLO_BYTES = 8 + 64;
const HEADER_BYTES = 24;
const KIND_NAMES = ["", "allreduce(sum)", "allreduce(mean)", "broadcast"] as const;

/**
 * Connects a worker to its ring: listens on `info.listen`, connects to `info.next` (retrying
 * while the next worker starts) and accepts its previous rank, both authenticated by the
 * ring token.
 *
 * @param info where this worker stands (from the driver).
 * @param options pipeline chunking.
 * @returns the worker's collectives.
 * @throws {CollectiveError} when the ring cannot be formed within `info.timeoutMs`.
 * @example
 * ```ts ignore
 * import { connectRing } from "./collectives.ts";
 * const ring = await connectRing(groupInfoFromTheDriver);
 * const grads = await ring.allreduce(new Float32Array(1000), "mean");
 * ```
 */
export async function connectRing(
  info: GroupInfo,
  options: RingOptions = {},
): Promise<Collectives> {
  const { rank, worldSize } = info;
  const timeoutMs = info.timeoutMs ?? 30 * 60_000;
  const chunk = Math.max(1, Math.floor(options.chunkFloats ?? 65536));
  const prevRank = (rank - 1 + worldSize) % worldSize;
  const nextRank = (rank + 1) % worldSize;
  // Forming the ring waits for the slowest worker's start-up (a worker that dies meanwhile
  // fails the trial through the driver), so it gets at least two minutes whatever the timeout.
  const formMs = Math.max(timeoutMs, 120_000);
  const deadline = Date.now() + formMs;
  const token = new TextEncoder().encode(info.token.padEnd(64, " ").slice(0, 64));
  const listener = Deno.listen({ hostname: info.listen.hostname, port: info.listen.port });

  const accept = (async (): Promise<Deno.Conn> => {
    // Only the previous rank with the trial's token gets in; anything else is closed.
    for (let tries = 0; tries < 256; tries++) {
      const conn = await listener.accept();
      const hello = new Uint8Array(HELLO_BYTES);
      const ok = await withTimeout(readExact(conn, hello), 10_000).then(() => true, () => false);
      const view = new DataView(hello.buffer);
      if (
        ok && view.getUint32(0) === MAGIC && view.getUint32(4) === prevRank &&
        timingSafeEqual(hello.subarray(8), token)
      ) {
        return conn;
      }
      try {
        conn.close();
      } catch { /* gone */ }
    }
    throw new CollectiveError("too many refused connections on the ring");
  })();
  const connect = (async (): Promise<Deno.Conn> => {
    for (let wait = 20;; wait = Math.min(500, wait * 2)) {
      try {
        const conn = await Deno.connect({ hostname: info.next.hostname, port: info.next.port });
        const hello = new Uint8Array(HELLO_BYTES);
        const view = new DataView(hello.buffer);
        view.setUint32(0, MAGIC);
        view.setUint32(4, rank);
        hello.set(token, 8);
        await writeAll(conn, hello);
        return conn;
      } catch (e) {
        if (!(e instanceof Deno.errors.ConnectionRefused) || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let send: Deno.Conn, recv: Deno.Conn;
  try {
    [send, recv] = await Promise.race([
      Promise.all([connect, accept]),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new CollectiveError(
                `worker rank ${rank} of ${worldSize}: the ring did not form within ${formMs} ms ` +
                  `(a worker did not start or cannot be reached)`,
              ),
            ),
          formMs,
        );
      }),
    ]);
  } catch (e) {
    connect.then((c) => c.close(), () => {});
    accept.then((c) => c.close(), () => {});
    throw e instanceof CollectiveError ? e : new CollectiveError(
      `worker rank ${rank} of ${worldSize}: cannot form the ring: ${(e as Error).message}`,
      { cause: e },
    );
  } finally {
    clearTimeout(timer);
    try {
      listener.close();
    } catch { /* closed */ }
  }
  for (const c of [send, recv]) {
    try {
      (c as Deno.TcpConn).setNoDelay?.(true);
    } catch { /* not TCP */ }
  }
  return new Ring(info, send, recv, chunk, timeoutMs, prevRank, nextRank);
}

class Ring implements Collectives {
  readonly rank: number;
  readonly localRank: number;
  readonly worldSize: number;
  readonly #send: Deno.Conn;
  readonly #recv: Deno.Conn;
  readonly #chunk: number;
  readonly #timeoutMs: number;
  readonly #prev: number;
  readonly #next: number;
  #seq = 0;
  #broken: CollectiveError | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    info: GroupInfo,
    send: Deno.Conn,
    recv: Deno.Conn,
    chunk: number,
    timeoutMs: number,
    prev: number,
    next: number,
  ) {
    this.rank = info.rank;
    this.localRank = info.localRank;
    this.worldSize = info.worldSize;
    this.#send = send;
    this.#recv = recv;
    this.#chunk = chunk;
    this.#timeoutMs = timeoutMs;
    this.#prev = prev;
    this.#next = next;
  }

  allreduce<T extends CollectiveData>(data: T, op: ReduceOp = "sum"): Promise<T> {
    checkData(data, "allreduce");
    if (op !== "sum" && op !== "mean") {
      return Promise.reject(
        new TypeError(`allreduce: op must be "sum" or "mean", got ${JSON.stringify(op)}`),
      );
    }
    return this.#run(data, op === "sum" ? 1 : 2, 0, (buf) => this.#allreduce(buf, op));
  }

  broadcast<T extends CollectiveData>(data: T, root = 0): Promise<T> {
    checkData(data, "broadcast");
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      return Promise.reject(
        new RangeError(`broadcast: root must be a rank 0..${this.worldSize - 1}, got ${root}`),
      );
    }
    return this.#run(data, 3, root, (buf) => this.#broadcast(buf, root));
  }

  async barrier(): Promise<void> {
    // An all-reduce of one float per worker passes a token twice around the ring: nobody
    // returns before everybody has called.
    await this.allreduce(new Float32Array(this.worldSize));
  }

  close(): void {
    for (const c of [this.#send, this.#recv]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }

  /** Serialises collectives, flattens the data, bounds the call by the timeout. */
  #run<T extends CollectiveData>(
    data: T,
    kind: number,
    root: number,
    body: (buf: Float32Array) => Promise<void>,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#broken) throw this.#broken;
      const parts: Float32Array[] = Array.isArray(data) ? data : [data as Float32Array];
      const flat = parts.length === 1 ? parts[0] : concat(parts);
      const seq = ++this.#seq;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const e = new CollectiveError(
            `worker rank ${this.rank}: ${KIND_NAMES[kind]} #${seq} did not complete within ` +
              `${this.#timeoutMs} ms (another worker hangs or is busy elsewhere)`,
          );
          this.#broken = e;
          this.close();
          reject(e);
        }, this.#timeoutMs);
      });
      try {
        await Promise.race([
          (async () => {
            await this.#header(kind, seq, flat.length, root);
            await body(flat);
          })(),
          timeout,
        ]);
      } catch (e) {
        if (!this.#broken) {
          this.#broken = e instanceof CollectiveError ? e : new CollectiveError(
            `worker rank ${this.rank}: ${KIND_NAMES[kind]} #${seq} failed: ${(e as Error).message}`,
            { cause: e },
          );
          this.close();
        }
        throw this.#broken;
      } finally {
        clearTimeout(timer);
      }
      if (parts.length > 1) {
        let off = 0;
        for (const p of parts) {
          p.set(flat.subarray(off, off + p.length));
          off += p.length;
        }
      }
      return data;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Sends this call's header to the next rank and checks the previous rank's. */
  async #header(kind: number, seq: number, n: number, root: number): Promise<void> {
    const out = new Uint8Array(HEADER_BYTES);
    const v = new DataView(out.buffer);
    v.setUint32(0, MAGIC);
    v.setUint32(4, seq);
    v.setUint32(8, kind);
    v.setFloat64(12, n);
    v.setUint32(20, root);
    const inp = new Uint8Array(HEADER_BYTES);
    await Promise.all([this.#write(out), this.#read(inp)]);
    const w = new DataView(inp.buffer);
    const theirs = `${KIND_NAMES[w.getUint32(8)] ?? "?"} #${w.getUint32(4)} of ${
      w.getFloat64(12)
    } floats${w.getUint32(8) === 3 ? ` from root ${w.getUint32(20)}` : ""}`;
    const ours = `${KIND_NAMES[kind]} #${seq} of ${n} floats${
      kind === 3 ? ` from root ${root}` : ""
    }`;
    if (
      w.getUint32(0) !== MAGIC || w.getUint32(4) !== seq || w.getUint32(8) !== kind ||
      w.getFloat64(12) !== n || w.getUint32(20) !== root
    ) {
      throw new CollectiveError(
        `the workers called different collectives: rank ${this.rank} called ${ours}, ` +
          `rank ${this.#prev} called ${theirs}; every worker must make the same calls in the ` +
          `same order with arrays of the same length`,
      );
    }
  }

  async #read(into: Uint8Array): Promise<void> {
    try {
      await readExact(this.#recv, into);
    } catch (e) {
      throw new CollectiveError(
        `worker rank ${this.#prev} left the ring (its connection to rank ${this.rank} ` +
          `${
            e instanceof Deno.errors.UnexpectedEof ? "closed" : `failed: ${(e as Error).message}`
          })`,
        { cause: e },
      );
    }
  }

  async #write(data: Uint8Array): Promise<void> {
    try {
      await writeAll(this.#send, data);
    } catch (e) {
      throw new CollectiveError(
        `worker rank ${this.#next} left the ring (the connection from rank ${this.rank} ` +
          `failed: ${(e as Error).message})`,
        { cause: e },
      );
    }
  }

  /**
   * Ring all-reduce: p-1 reduce-scatter steps, then p-1 all-gather steps, each segment cut into
   * chunks. Step s sends one segment and receives another; the chunk c sent at step s is the
   * one received (and added) at step s-1, so a chunk moves on as soon as it has arrived, and
   * sending overlaps receiving: a pipeline, with every link busy in both directions.
   */
  async #allreduce(buf: Float32Array, op: ReduceOp): Promise<void> {
    const p = this.worldSize, r = this.rank, n = buf.length, C = this.#chunk;
    if (n === 0) return;
    const segStart = (k: number) => Math.floor((((k % p) + p) % p) * n / p);
    const seg = (k: number): [number, number] => {
      const m = ((k % p) + p) % p;
      return [segStart(m), Math.floor((m + 1) * n / p)];
    };
    const steps = 2 * (p - 1);
    const sendSeg = (s: number) => (s < p - 1 ? r - s : r + 1 - (s - (p - 1)));
    const recvSeg = (s: number) => (s < p - 1 ? r - s - 1 : r - (s - (p - 1)));
    // Progress of the receiver, as (step, chunks done in that step).
    let recvStep = 0, recvChunk = 0;
    let wake: (() => void) | undefined;
    let failed = false;
    const received = (s: number, c: number) => recvStep > s || (recvStep === s && recvChunk > c);
    const sender = async () => {
      for (let s = 0; s < steps; s++) {
        const [a, b] = seg(sendSeg(s));
        for (let off = a, c = 0; off < b; off += C, c++) {
          while (s > 0 && !received(s - 1, c)) {
            if (failed) return;
            await new Promise<void>((res) => (wake = res));
          }
          const end = Math.min(b, off + C);
          await this.#write(new Uint8Array(buf.buffer, buf.byteOffset + off * 4, (end - off) * 4));
        }
      }
    };
    const receiver = async () => {
      const tmp = new Float32Array(Math.min(C, Math.ceil(n / p) + 1));
      const tmpBytes = new Uint8Array(tmp.buffer);
      for (let s = 0; s < steps; s++) {
        const [a, b] = seg(recvSeg(s));
        const reduce = s < p - 1;
        const last = s === p - 2;
        for (let off = a; off < b; off += C) {
          const len = Math.min(b, off + C) - off;
          if (reduce) {
            await this.#read(tmpBytes.subarray(0, len * 4));
            const dst = buf.subarray(off, off + len);
            for (let i = 0; i < len; i++) dst[i] += tmp[i];
            if (last && op === "mean") { for (let i = 0; i < len; i++) dst[i] /= p; }
          } else {
            await this.#read(new Uint8Array(buf.buffer, buf.byteOffset + off * 4, len * 4));
          }
          recvChunk++;
          wake?.();
        }
        recvStep++;
        recvChunk = 0;
        wake?.();
      }
    };
    // The sender waits on the receiver; an error on either side ends both (the ring closes).
    const rx = receiver();
    const tx = sender();
    await Promise.all([rx, tx].map((x) =>
      x.catch((e) => {
        failed = true;
        this.close();
        wake?.();
        throw e;
      })
    ));
  }

  /** Ring broadcast: the root's chunks travel around the ring, each forwarded on arrival. */
  async #broadcast(buf: Float32Array, root: number): Promise<void> {
    const n = buf.length, C = this.#chunk;
    if (n === 0) return;
    const forward = this.#next !== root;
    const bytes = (off: number, end: number) =>
      new Uint8Array(buf.buffer, buf.byteOffset + off * 4, (end - off) * 4);
    if (this.rank === root) {
      for (let off = 0; off < n; off += C) await this.#write(bytes(off, Math.min(n, off + C)));
      return;
    }
    let sending: Promise<void> = Promise.resolve();
    for (let off = 0; off < n; off += C) {
      const end = Math.min(n, off + C);
      await this.#read(bytes(off, end));
      if (forward) sending = sending.then(() => this.#write(bytes(off, end)));
    }
    await sending;
  }
}

function checkData(data: unknown, what: string): void {
  const ok = (x: unknown) => x instanceof Float32Array;
  if (Array.isArray(data) ? !data.every(ok) : !ok(data)) {
    throw new TypeError(
      `${what}: expected a Float32Array or an array of them, got ${
        Array.isArray(data)
          ? `an array holding ${
            data.map((x) => x?.constructor?.name ?? typeof x).filter((n, i, a) =>
              a.indexOf(n) === i
            ).join(", ")
          }`
          : (data as object)?.constructor?.name ?? typeof data
      }`,
    );
  }
}

function concat(parts: Float32Array[]): Float32Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float32Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function readExact(conn: Deno.Conn, into: Uint8Array): Promise<void> {
  let off = 0;
  while (off < into.length) {
    const n = await conn.read(into.subarray(off));
    if (n === null) throw new Deno.errors.UnexpectedEof("the peer closed the connection");
    off += n;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("timeout")), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
