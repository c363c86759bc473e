import { deepEqual, equal, ok as assert, rejects } from "#assert";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import { ConfigError } from "../../mod.ts";

const BASE = `name: exp
trainable: ./train.ts
metric: loss
mode: min
space:
  lr: { type: loguniform, min: 1.0e-4, max: 1.0e-1 }
  batch: { type: choice, options: [32, 64] }
`;

async function errorOf(text: string, set?: string[]): Promise<ConfigError> {
  let caught: unknown;
  await parseExperiment(text, "/exp/experiment.yaml", set ? { set } : {}).catch((
    e,
  ) => (caught = e));
  assert(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  return caught as ConfigError;
}

Deno.test("a YAML experiment becomes Tuner options with paths relative to the file", async () => {
  const o = await parseExperiment(
    BASE +
      "num_samples: 5\ntime_budget_s: 2\nsandbox: { read: [./data] }\ncheckpoint: { num_to_keep: 2 }\nsearcher: { name: random }\n",
    "/exp/experiment.yaml",
  );
  equal(o.trainable, "file:///exp/train.ts");
  equal(o.numSamples, 5);
  equal(o.timeBudgetMs, 2000);
  deepEqual(o.sandbox, { read: ["/exp/data"] });
  deepEqual(o.checkpoint, { numToKeep: 2 });
  equal(o.storage, "/exp/tunebox_results");
  equal(o.searcher?.name, "random");
});

Deno.test("an unknown key names file, line, column and a close key", async () => {
  const e = await errorOf(BASE + "num_sample: 3\n");
  equal(
    e.message,
    '/exp/experiment.yaml:8:1: Unknown key "num_sample" (did you mean "num_samples"?)',
  );
  deepEqual([e.line, e.column], [8, 1]);
});

Deno.test("an unknown nested key is placed at its line", async () => {
  const e = await errorOf(BASE + "checkpoint:\n  num_to_kep: 3\n");
  equal(
    e.message,
    '/exp/experiment.yaml:9:3: Unknown key "checkpoint.num_to_kep" (did you mean "num_to_keep"?); expected num_to_keep, score_attribute, score_order',
  );
});

Deno.test("a wrong type names what came in and what is expected", async () => {
  const e = await errorOf(BASE + "num_samples: many\n");
  equal(
    e.message,
    '/exp/experiment.yaml:8:14: "num_samples" must be a positive integer or -1, got "many"',
  );
  const m = await errorOf(BASE.replace("mode: min", "mode: minimize"));
  equal(m.message, '/exp/experiment.yaml:4:7: "mode" must be min or max, got "minimize"');
});

Deno.test("an empty range in the space points at the parameter", async () => {
  const e = await errorOf(BASE.replace("min: 1.0e-4, max: 1.0e-1", "min: 0.1, max: 0.1"));
  equal(e.line, 6);
  assert(e.message.includes('Parameter "lr": loguniform(0.1, 0.1): the range is empty'), e.message);
});

Deno.test("an unknown scheduler name lists the known ones", async () => {
  const e = await errorOf(BASE + "searcher: { name: randm }\n");
  assert(
    /:8:\d+: Unknown searcher "randm" \(did you mean "random"\?\); known: .*random/.test(e.message),
    e.message,
  );
});

Deno.test("a plugin module is loaded and checked against its role", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.ts`, "export default () => ({ name: 'bad' });\n");
  await Deno.writeTextFile(
    `${dir}/good.ts`,
    "export default (o: { n: number }) => ({ name: 'good' + o.n, onReport: () => ({ kind: 'continue' }) });\n",
  );
  const good = await parseExperiment(
    BASE + "scheduler: { module: ./good.ts, options: { n: 3 } }\n",
    `${dir}/e.yaml`,
  );
  equal(good.scheduler?.name, "good3");
  await rejects(
    parseExperiment(BASE + "scheduler: { module: ./bad.ts }\n", `${dir}/e.yaml`),
    /e\.yaml:8:\d+: scheduler "\.\/bad\.ts": scheduler "bad" has no onReport\(\) method/,
  );
});

Deno.test("--set overrides keys, and YAML syntax errors carry their position", async () => {
  const o = await parseExperiment(BASE, "/exp/e.yaml", {
    set: ["num_samples=7", "resources.cpu=0.5"],
  });
  equal(o.numSamples, 7);
  deepEqual(o.resources, { cpu: 0.5 });
  const e = await errorOf("metric: [loss\nmode: min\n");
  assert(/^\/exp\/experiment\.yaml:\d+:\d+: YAML syntax error/.test(e.message), e.message);
});

Deno.test("backend: tfjs (or a mapping with native) becomes the Tuner's backend; a wrong one points at its line", async () => {
  const plain = await parseExperiment(BASE + "backend: tfjs\n", "/exp/experiment.yaml");
  equal(plain.backend?.name, "tfjs");
  equal(plain.backend?.permissions().ffi, undefined);
  const native = await parseExperiment(
    BASE + "backend:\n  name: tfjs\n  native: true\n",
    "/exp/experiment.yaml",
  );
  equal(native.backend?.name, "tfjs");
  // The native build is allowed: its loader's system calls (and FFI once it is built).
  assert(native.backend?.permissions().sys?.length, JSON.stringify(native.backend?.permissions()));
  const e = await errorOf(BASE + "backend: torch\n");
  equal(
    e.message,
    '/exp/experiment.yaml:8:10: Unknown backend "torch"; the backends are: tfjs (TensorFlow.js; { name: tfjs, native: true } allows its native build)',
  );
  const k = await errorOf(BASE + "backend:\n  name: tfjs\n  nativ: true\n");
  equal(
    k.message,
    '/exp/experiment.yaml:10:3: Unknown key "backend.nativ" (did you mean "native"?); expected name, native, node_modules',
  );
  const t = await errorOf(BASE + "backend: { name: tfjs, native: yes please }\n");
  equal(
    t.message,
    '/exp/experiment.yaml:8:32: "backend.native" must be true or false, got "yes please"',
  );
  const l = await errorOf(BASE + "backend: [tfjs]\n");
  equal(l.line, 8);
});
