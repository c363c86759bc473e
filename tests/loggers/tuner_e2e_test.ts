// The loggers through the whole product: a YAML experiment run by the CLI, sandboxed trials,
// files read back with TensorBoard's own Python reader.
import { deepEqual, equal, ok as assert } from "#assert";

const REPO = new URL("../../", import.meta.url).pathname;

function python(): string {
  return Deno.env.get("TUNEBOX_PYTHON") ?? `${REPO}.venv/bin/python`;
}

Deno.test("a YAML experiment with the tensorboard logger leaves one readable run per trial, with HParams", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/exp.yaml`,
    `name: tb
trainable: ${REPO}tests/fixtures/behaviors.ts
metric: loss
mode: min
space:
  behavior: { type: grid, values: [ok, throw] }
  x: { type: uniform, min: 0, max: 2 }
loggers:
  - { name: tensorboard }
reporter: false
storage: ${dir}/results
`,
  );
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO}cli.ts`, "run", `${dir}/exp.yaml`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(run.code, 0, new TextDecoder().decode(run.stderr));
  const out = await new Deno.Command(python(), {
    args: [`${REPO}tests/peers/tb_read.py`, "runs", `${dir}/results/tb`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const runs = JSON.parse(new TextDecoder().decode(out.stdout)).runs as Record<
    string,
    { scalars: Record<string, [number, number, number][]>; hparams: Record<string, unknown> }
  >;
  const trialRuns = Object.keys(runs).filter((r) => /_\d{5}$/.test(r)).sort();
  equal(trialRuns.length, 2);
  const ok = runs[trialRuns[0]];
  deepEqual(ok.scalars.loss.map((p) => p[1]), [1, 2, 3]);
  const results = (await Deno.readTextFile(`${dir}/results/tb/${trialRuns[0]}/result.jsonl`)).trim()
    .split("\n").map((l) => JSON.parse(l));
  ok.scalars.loss.forEach((p, i) => assert(Math.abs(p[2] - results[i].loss) < 1e-5));
  for (const r of trialRuns) {
    assert(Object.keys(runs[r].hparams).length > 0, `${r} has HParams session data`);
  }
  assert(
    Object.values(runs).some((r) => JSON.stringify(r.hparams).includes("experiment")),
    "an experiment summary exists",
  );
});
