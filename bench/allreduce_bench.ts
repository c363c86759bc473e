/**
 * The ring all-reduce of multi-worker trials (`core/collectives.ts`) between 2 and 4 local
 * worker processes, 1 KB to 100 MB, next to this machine's memory-copy speed.
 *
 *     deno run -A bench/allreduce_bench.ts            # 2 and 4 workers, 1 KB .. 100 MB
 *     deno run -A bench/allreduce_bench.ts --quick    # fewer sizes and repetitions
 *
 * Each worker is its own `deno run` process on its own loopback address, as in a trial. Rank 0
 * times each size (median of the repetitions, after a warm-up) with a barrier before each
 * call. Figures: latency, algorithm bandwidth (bytes / time) and bus bandwidth (NCCL's
 * convention: algbw × 2(p-1)/p, what each link carries). Nothing is asserted.
 */
import { connectRing, type GroupInfo } from "../core/collectives.ts";

const SIZES = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

if (Deno.args[0] === "--sender") {
  // The transport's own limit: one process streaming bytes to another over loopback TCP.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(Deno.args[1]) });
  const chunk = new Uint8Array(256 << 10);
  for (let left = Number(Deno.args[2]); left > 0; left -= chunk.length) {
    let off = 0;
    const part = chunk.subarray(0, Math.min(chunk.length, left));
    while (off < part.length) off += await conn.write(part.subarray(off));
  }
  conn.close();
  Deno.exit(0);
}

if (Deno.args[0] === "--worker") {
  const info = JSON.parse(Deno.args[1]) as GroupInfo;
  const sizes = JSON.parse(Deno.args[2]) as number[];
  const reps = Number(Deno.args[3]);
  const ring = await connectRing(info);
  const out: { bytes: number; ms: number }[] = [];
  for (const bytes of sizes) {
    const data = new Float32Array(Math.max(1, Math.floor(bytes / 4)));
    data.fill(info.rank + 1);
    await ring.allreduce(data); // warm-up
    const times: number[] = [];
    const n = bytes >= 1e8 ? Math.max(2, Math.floor(reps / 3)) : reps;
    for (let i = 0; i < n; i++) {
      await ring.barrier();
      const t0 = performance.now();
      await ring.allreduce(data, "mean");
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    out.push({ bytes, ms: times[Math.floor(times.length / 2)] });
  }
  if (info.rank === 0) console.log(JSON.stringify(out));
  ring.close();
  Deno.exit(0);
}

const quick = Deno.args.includes("--quick");
const sizes = quick ? [1e3, 1e5, 1e7] : SIZES;
const reps = quick ? 5 : 11;

function memcpy(bytes: number): number {
  const a = new Float32Array(bytes / 4).fill(1), b = new Float32Array(bytes / 4);
  b.set(a);
  const times: number[] = [];
  for (let i = 0; i < (bytes >= 1e8 ? 5 : 21); i++) {
    const t0 = performance.now();
    b.set(a);
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

async function ring(p: number): Promise<{ bytes: number; ms: number }[]> {
  const base = `127.${130 + p}.${Math.floor(Math.random() * 250)}`;
  const addrs = Array.from({ length: p }, (_, r) => {
    const hostname = `${base}.${r + 1}`;
    const l = Deno.listen({ hostname, port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return { hostname, port };
  });
  const token = crypto.randomUUID();
  const procs = addrs.map((listen, rank) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-net=${listen.hostname},${addrs[(rank + 1) % p].hostname}`,
        new URL(import.meta.url).pathname,
        "--worker",
        JSON.stringify(
          {
            rank,
            localRank: rank,
            worldSize: p,
            listen,
            next: addrs[(rank + 1) % p],
            token,
          } satisfies GroupInfo,
        ),
        JSON.stringify(sizes),
        String(reps),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output()
  );
  const outs = await Promise.all(procs);
  return JSON.parse(new TextDecoder().decode(outs[0].stdout));
}

async function tcpStream(bytes: number): Promise<number> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      new URL(import.meta.url).pathname,
      "--sender",
      String((l.addr as Deno.NetAddr).port),
      String(bytes),
    ],
  }).spawn();
  const conn = await l.accept();
  const buf = new Uint8Array(1 << 20);
  const t0 = performance.now();
  let got = 0;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    got += n;
  }
  const ms = performance.now() - t0;
  conn.close();
  l.close();
  await child.status;
  return got / (ms / 1000) / 1e9;
}

const fmtBytes = (b: number) => b >= 1e6 ? `${b / 1e6} MB` : b >= 1e3 ? `${b / 1e3} KB` : `${b} B`;
const gbps = (bytes: number, ms: number) => (bytes / (ms / 1000) / 1e9).toFixed(2);

console.log(
  `ring all-reduce (sum of Float32Array), local worker processes; ${navigator.hardwareConcurrency} CPUs; Deno ${Deno.version.deno}`,
);
const copy = new Map(sizes.map((b) => [b, memcpy(b)]));
const results = new Map<number, { bytes: number; ms: number }[]>();
for (const p of [2, 4]) results.set(p, await ring(p));
const tcp = await tcpStream(quick ? 1e8 : 4e8);
console.log(
  "\n| size | memcpy GB/s | 2 workers: latency | algbw GB/s | busbw GB/s | 4 workers: latency | algbw GB/s | busbw GB/s |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const [i, bytes] of sizes.entries()) {
  const cells = [fmtBytes(bytes), gbps(bytes, copy.get(bytes)!)];
  for (const p of [2, 4]) {
    const { ms } = results.get(p)![i];
    const alg = bytes / (ms / 1000) / 1e9;
    cells.push(
      ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`,
      alg.toFixed(2),
      (alg * 2 * (p - 1) / p).toFixed(2),
    );
  }
  console.log(`| ${cells.join(" | ")} |`);
}
console.log(
  `\nOne process streaming ${quick ? 100 : 400} MB to another over loopback TCP: ${
    tcp.toFixed(2)
  } GB/s ` +
    `(the transport's limit here; a ring link carries 2(p-1)/p of the data each way).`,
);
