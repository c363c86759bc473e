// The ring collectives, with every worker of the ring in this process (each on its own loopback
// address, as the executor places them). The subprocess end-to-end cases are in
// tests/executors/workers_test.ts.
import { deepStrictEqual as assertEquals, ok as assert } from "#assert";
import {
  CollectiveError,
  type Collectives,
  connectRing,
  type GroupInfo,
  soloCollectives,
} from "../../core/collectives.ts";

let subnet = 0;

async function assertRejects<E extends Error>(
  f: () => Promise<unknown>,
  type: new (...a: never[]) => E,
  includes = "",
): Promise<E> {
  try {
    await f();
  } catch (e) {
    assert(e instanceof type, `expected ${type.name}, got ${e}`);
    assert((e as Error).message.includes(includes), (e as Error).message);
    return e as E;
  }
  throw new Error("expected a rejection");
}

/** Forms a ring of `p` workers on 127.77.<k>.<rank+1>, with free ports. */
async function ring(p: number, chunkFloats?: number): Promise<Collectives[]> {
  const k = 1 + (subnet++ % 250);
  const addrs = Array.from({ length: p }, (_, r) => {
    const hostname = `127.77.${k}.${r + 1}`;
    const l = Deno.listen({ hostname, port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return { hostname, port };
  });
  const token = crypto.randomUUID();
  const infos: GroupInfo[] = addrs.map((listen, rank) => ({
    rank,
    localRank: rank,
    worldSize: p,
    listen,
    next: addrs[(rank + 1) % p],
    token,
    timeoutMs: 60_000,
  }));
  return await Promise.all(
    infos.map((i) => connectRing(i, chunkFloats ? { chunkFloats } : {})),
  );
}

function random(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 2 ** 32) * 2 - 1;
  }
  return a;
}

function close(rs: Collectives[]): void {
  for (const r of rs) r.close();
}

for (const p of [2, 3, 4]) {
  Deno.test(`ring allreduce of ${p} workers equals a direct sum for awkward sizes`, async () => {
    const rs = await ring(p, 1000);
    try {
      for (const n of [0, 1, 2, p - 1, p + 1, 7, 999, 1000, 1001, 4097, 100_003]) {
        const inputs = rs.map((_, r) => random(n, 1 + r * 7919 + n));
        const expected = new Float64Array(n);
        for (const x of inputs) for (let i = 0; i < n; i++) expected[i] += x[i];
        const outs = await Promise.all(rs.map((c, r) => c.allreduce(inputs[r].slice(), "sum")));
        for (let i = 0; i < n; i++) {
          assert(
            Math.abs(outs[0][i] - expected[i]) <= 1e-5 * p,
            `n=${n} i=${i}: ${outs[0][i]} vs ${expected[i]}`,
          );
        }
        // Every worker holds the same bits: replicas stay identical.
        for (const o of outs.slice(1)) assertEquals(o, outs[0]);
      }
    } finally {
      close(rs);
    }
  });
}

Deno.test("ring allreduce of 10M floats across 4 workers, with mean and a list of arrays", async () => {
  const rs = await ring(4);
  try {
    const n = 10_000_000;
    const inputs = rs.map((_, r) => random(n, 11 + r));
    const expected = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      expected[i] = (inputs[0][i] + inputs[1][i] + inputs[2][i] + inputs[3][i]) / 4;
    }
    const outs = await Promise.all(rs.map((c, r) => c.allreduce(inputs[r], "mean")));
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(outs[0][i] - expected[i]));
    assert(worst < 1e-6, `worst error ${worst}`);
    for (const o of outs) assert(o === outs[0] || o.every((v, i) => v === outs[0][i]));
    // A list of arrays is reduced as if concatenated, each written back in place.
    const lists = rs.map((
      _,
      r,
    ) => [new Float32Array([r]), new Float32Array(0), new Float32Array([1, r])]);
    await Promise.all(rs.map((c, r) => c.allreduce(lists[r])));
    assertEquals([...lists[2][0], ...lists[2][2]], [6, 4, 6]);
  } finally {
    close(rs);
  }
});

Deno.test("ring broadcast copies the root's array to every worker; barrier waits for all", async () => {
  const rs = await ring(3, 10);
  try {
    for (const root of [0, 1, 2]) {
      const data = rs.map((_, r) => (r === root ? random(105, root + 1) : new Float32Array(105)));
      await Promise.all(rs.map((c, r) => c.broadcast(data[r], root)));
      for (const d of data) assertEquals(d, data[root]);
    }
    let arrived = 0;
    const late = (async () => {
      await new Promise((r) => setTimeout(r, 50));
      arrived++;
      return rs[2].barrier();
    })();
    await Promise.all([
      rs[0].barrier().then(() => assertEquals(arrived, 1)),
      rs[1].barrier(),
      late,
    ]);
  } finally {
    close(rs);
  }
});

Deno.test("ring collectives that differ between workers fail with both calls named", async () => {
  const rs = await ring(2);
  try {
    const results = await Promise.allSettled([
      rs[0].allreduce(new Float32Array(10)),
      rs[1].allreduce(new Float32Array(12)),
    ]);
    const msg = results.map((r) => r.status === "rejected" ? String(r.reason.message) : "").join(
      "|",
    );
    assert(msg.includes("called different collectives"), msg);
    assert(msg.includes("of 10 floats") && msg.includes("of 12 floats"), msg);
  } finally {
    close(rs);
  }
});

Deno.test("a worker that leaves the ring fails its neighbours' pending allreduce at once", async () => {
  const rs = await ring(3);
  try {
    const pending = [rs[0].allreduce(random(1000, 1)), rs[1].allreduce(random(1000, 2))];
    rs[2].close();
    for (const p of pending) {
      const e = await assertRejects(() => p, CollectiveError);
      assert(/left the ring/.test(e.message), e.message);
    }
    // The ring is broken for good: later calls fail the same way, at once.
    await assertRejects(() => rs[0].barrier(), CollectiveError, "left the ring");
  } finally {
    close(rs);
  }
});

Deno.test("a ring connection without the trial's token is refused; bad arguments are named", async () => {
  const free = (hostname: string) => {
    const l = Deno.listen({ hostname, port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return { hostname, port };
  };
  const a = free("127.78.0.1"), b = free("127.78.0.2");
  const info = { localRank: 0, worldSize: 2, token: "right", timeoutMs: 5000 };
  const r0 = connectRing({ ...info, rank: 0, listen: a, next: b });
  // An intruder reaches rank 0 first, with the wrong token: it is closed on.
  let intruder: Deno.Conn | undefined;
  for (let i = 0; !intruder; i++) {
    intruder = await Deno.connect(a).catch(async () => {
      await new Promise((r) => setTimeout(r, 20));
      return undefined;
    });
  }
  const hello = new Uint8Array(72);
  new DataView(hello.buffer).setUint32(0, 0x54425231);
  new DataView(hello.buffer).setUint32(4, 1);
  await intruder.write(hello);
  assertEquals(await intruder.read(new Uint8Array(1)).catch(() => null), null);
  intruder.close();
  // The real rank 1 still gets in.
  const rs = await Promise.all([r0, connectRing({ ...info, rank: 1, listen: b, next: a })]);
  const out = await Promise.all(rs.map((c, r) => c.allreduce(new Float32Array([r + 1]))));
  assertEquals([out[0][0], out[1][0]], [3, 3]);
  close(rs);

  const solo = soloCollectives();
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => solo.allreduce([1, 2] as any),
    TypeError,
    "expected a Float32Array or an array of them, got an array holding Number",
  );
  await assertRejects(() => solo.broadcast(new Float32Array(1), 1), RangeError, "root 1");
});
