import { deepEqual, equal, ok as assert, throws } from "#assert";
import {
  choice,
  type ConfigOf,
  grid,
  lograndint,
  loguniform,
  parameters,
  qlograndint,
  qloguniform,
  qrandint,
  quniform,
  randint,
  randn,
  Rng,
  sampleFrom,
  uniform,
} from "../../mod.ts";
import { gridPoint, gridSize, sampleConfig, spaceFromJson, spaceToJson } from "../../core/space.ts";

function samples(space: Record<string, unknown>, n = 2000, seed = 1) {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => sampleConfig(space, rng));
}

Deno.test("randint excludes its upper bound and qrandint includes it, as in Ray Tune", () => {
  const xs = samples({
    a: randint(0, 3),
    b: qrandint(0, 6, 3),
    c: lograndint(1, 4),
    d: qlograndint(2, 8, 2),
  });
  deepEqual([...new Set(xs.map((x) => x.a))].sort(), [0, 1, 2]);
  deepEqual([...new Set(xs.map((x) => x.b))].sort(), [0, 3, 6]);
  deepEqual([...new Set(xs.map((x) => x.c))].sort(), [1, 2, 3]);
  deepEqual([...new Set(xs.map((x) => x.d))].sort((p, q) => Number(p) - Number(q)), [2, 4, 6, 8]);
});

Deno.test("loguniform takes real-space bounds and is uniform in log space", () => {
  const xs = samples({ lr: loguniform(1e-4, 1e-1) }).map((x) => x.lr as number);
  assert(xs.every((x) => x >= 1e-4 && x <= 1e-1));
  const belowMiddle = xs.filter((x) => x < 10 ** -2.5).length / xs.length;
  assert(Math.abs(belowMiddle - 0.5) < 0.05, `half the mass below 10^-2.5, got ${belowMiddle}`);
});

Deno.test("quantized floats are multiples of q inside the range, without float noise", () => {
  const xs = samples({ a: quniform(0.1, 0.9, 0.1), b: qloguniform(0.01, 1, 0.01) });
  for (const x of xs) {
    const a = x.a as number, b = x.b as number;
    assert(
      a >= 0.1 && a <= 0.9 && Math.abs(a * 10 - Math.round(a * 10)) < 1e-12 &&
        String(a).length <= 3,
      String(a),
    );
    assert(b >= 0.01 && b <= 1 && String(b).length <= 4, String(b));
  }
});

Deno.test("randn samples a normal distribution", () => {
  const xs = samples({ z: randn(5, 2) }).map((x) => x.z as number);
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
  assert(Math.abs(mean - 5) < 0.2 && Math.abs(sd - 2) < 0.2, `${mean} ${sd}`);
});

Deno.test("a choice over sub-spaces samples only the chosen branch's parameters", () => {
  const space = {
    opt: choice([{ name: "sgd", lr: loguniform(1e-3, 1), momentum: uniform(0, 0.99) }, {
      name: "adam",
      lr: loguniform(1e-5, 1e-2),
    }]),
  };
  for (const x of samples(space, 200)) {
    const opt = x.opt as Record<string, unknown>;
    if (opt.name === "sgd") assert("momentum" in opt && (opt.lr as number) >= 1e-3);
    else deepEqual(Object.keys(opt).sort(), ["lr", "name"]);
  }
  deepEqual(parameters(space).map((p) => [p.key, p.condition?.index ?? null]), [
    ["opt", null],
    ["opt/0/lr", 0],
    ["opt/0/momentum", 0],
    ["opt/1/lr", 1],
  ]);
});

Deno.test("grid dimensions multiply and the first path cycles fastest", () => {
  const space = { b: grid(["x", "y", "z"]), a: grid([1, 2]) };
  equal(gridSize(space), 6);
  deepEqual([...gridPoint(space, 1)], [["a", 2], ["b", "x"]]);
  deepEqual([...gridPoint(space, 2)], [["a", 1], ["b", "y"]]);
});

Deno.test("sampleFrom sees the rest of the config", () => {
  for (
    const x of samples({
      layers: randint(1, 4),
      width: sampleFrom((c) => 240 / (c.layers as number)),
    }, 50)
  ) {
    equal(x.width, 240 / (x.layers as number));
  }
});

Deno.test("the same seed gives the same configs", () => {
  const space = { a: uniform(0, 1), b: choice([1, 2, 3]), c: { d: randn() } };
  deepEqual(samples(space, 20, 7), samples(space, 20, 7));
  assert(JSON.stringify(samples(space, 20, 7)) !== JSON.stringify(samples(space, 20, 8)));
});

Deno.test("bad domains fail at construction, naming the rule and the value", () => {
  throws(() => uniform(1, 1), /uniform\(1, 1\): the range is empty; "min" must be < "max"/);
  throws(
    () => loguniform(0, 1),
    /loguniform\(0, 1\): a log scale needs "min" > 0 \(bounds are in real space/,
  );
  throws(() => choice([]), /choice: "options" is empty/);
  throws(() => grid([]), /grid: "values" is empty/);
  throws(() => quniform(0, 1, 0), /quniform: "q" must be > 0, got 0/);
  throws(() => quniform(0.1, 0.2, 0.5), /no multiple of q=0.5 lies in the range/);
  throws(() => randint(1.5, 3), /randint: "min" must be an integer, got 1.5/);
  throws(() => randn(0, -1), /randn: "sd" must be > 0, got -1/);
  throws(() => uniform(NaN, 1), /uniform: "min" must be a finite number, got NaN/);
  throws(() => choice([() => 1]), /choice option 0: function is not a JSON value/);
});

Deno.test("YAML specs round-trip and their errors name the parameter and key", () => {
  const json = {
    lr: { type: "loguniform", min: 1e-4, max: 0.1 },
    units: { type: "randint", lower: 32, upper: 257 },
    act: { type: "choice", options: ["relu", "tanh"] },
    layers: { type: "grid_search", values: [1, 2] },
    noise: { type: "randn", mean: 0, std: 1 },
    fixed: 3,
  };
  const space = spaceFromJson(json);
  deepEqual(spaceToJson(spaceFromJson(spaceToJson(space))), spaceToJson(space));
  throws(
    () => spaceFromJson({ lr: { type: "loguniformm", min: 1, max: 2 } }),
    /Parameter "lr": unknown type "loguniformm".*did you mean "loguniform"/,
  );
  throws(
    () => spaceFromJson({ lr: { type: "uniform", min: 1, maks: 2 } }),
    /Parameter "lr": unknown key "maks" for type uniform.*did you mean "max"/,
  );
  throws(
    () => spaceFromJson({ lr: { type: "uniform", min: 1 } }),
    /Parameter "lr": type uniform needs "max"/,
  );
  throws(
    () => spaceFromJson({ a: { b: { type: "choice", options: [] } } }),
    /Parameter "a.b": choice: "options" is empty/,
  );
});

Deno.test("ConfigOf types the trainable's config", () => {
  const space = {
    lr: loguniform(1e-4, 1e-1),
    act: choice(["relu", "tanh"] as const),
    n: 3,
    sub: { u: uniform(0, 1) },
  };
  const c: ConfigOf<typeof space> = { lr: 0.1, act: "relu", n: 3, sub: { u: 0.5 } };
  // @ts-expect-error: "sigmoid" is not one of the choices
  const bad: ConfigOf<typeof space> = { lr: 0.1, act: "sigmoid", n: 3, sub: { u: 0.5 } };
  equal(c.act, "relu");
  assert(bad);
});
