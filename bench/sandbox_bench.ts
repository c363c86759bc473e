/**
 * The driver against hostile trial behaviour (issue 19): what 600 reports that each invent a new
 * metric key cost the driver, and what one 32 MiB line without a newline costs the channel's
 * line reader (time and memory), next to the same work done benignly.
 *
 *     deno run -A bench/sandbox_bench.ts
 *
 * It runs against whichever checkout it sits in (copy it into an older one to compare).
 */
import { Tuner, uniform } from "../mod.ts";
import * as protocol from "../core/protocol.ts";

async function reports(newKeys: boolean): Promise<number> {
  const storage = await Deno.makeTempDir();
  const t0 = performance.now();
  await new Tuner({
    trainable: async (_config, session) => {
      for (let i = 0; i < 600; i++) {
        await session.report(newKeys ? { loss: i, [`k${i}`]: i } : { loss: i, k: i });
      }
    },
    space: { x: 1 },
    metric: "loss",
    mode: "min",
    storage,
    reporter: false,
  }).fit();
  const ms = performance.now() - t0;
  await Deno.remove(storage, { recursive: true });
  return ms;
}

function stream(total: number, chunk: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const piece = new Uint8Array(chunk).fill(120);
  return new ReadableStream({
    pull(c) {
      if (sent >= total) return c.close();
      c.enqueue(piece);
      sent += chunk;
    },
  });
}

async function longLine(
  name: string,
  read: (s: ReadableStream<Uint8Array>) => AsyncGenerator<unknown>,
): Promise<void> {
  const rss0 = Deno.memoryUsage().rss;
  let peak = rss0;
  const timer = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 10);
  const t0 = performance.now();
  let outcome = "read to the end";
  try {
    for await (const _ of read(stream(32 << 20, 64 << 10))) { /* nothing */ }
  } catch (e) {
    outcome = `refused: ${(e as Error).message.slice(0, 50)}...`;
  }
  const ms = performance.now() - t0;
  clearInterval(timer);
  peak = Math.max(peak, Deno.memoryUsage().rss);
  console.log(
    `32 MiB line, ${name}: ${ms.toFixed(0)} ms, peak RSS +${
      ((peak - rss0) / 2 ** 20).toFixed(0)
    } MiB, ${outcome}`,
  );
}

const same = await reports(false);
const fresh = await reports(true);
console.log(`600 reports, one key:        ${same.toFixed(0)} ms`);
console.log(`600 reports, a new key each: ${fresh.toFixed(0)} ms`);

const p = protocol as unknown as Record<string, unknown>;
if (typeof p.readLines === "function") {
  await longLine("readLines (the unbounded reader)", p.readLines as never);
}
try {
  const channel = await import("../core/" + "channel.ts");
  await longLine(
    "readBoundedLines (authenticated limit, 1 MiB)",
    (s) => channel.readBoundedLines(s, 1 << 20),
  );
  await longLine(
    "readBoundedLines (before hello, 4 KiB)",
    (s) => channel.readBoundedLines(s, 4096),
  );
} catch (e) {
  if (!(e instanceof TypeError)) throw e; // no channel.ts in this checkout
}

async function sandboxed(n: number): Promise<number> {
  const storage = await Deno.makeTempDir();
  const t0 = performance.now();
  await new Tuner({
    trainable: new URL("./fixtures/one_report.ts", import.meta.url),
    space: { x: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    numSamples: n,
    maxConcurrent: 1,
    storage,
    reporter: false,
  }).fit();
  const ms = performance.now() - t0;
  await Deno.remove(storage, { recursive: true });
  return ms;
}
await sandboxed(2); // warm the module cache
const one = await sandboxed(1), many = await sandboxed(25);
console.log(`an experiment of 1 sandboxed trial: ${one.toFixed(0)} ms`);
console.log(`per sandboxed trial (start, 1 report, end): ${((many - one) / 24).toFixed(1)} ms`);
