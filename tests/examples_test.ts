import { equal, match } from "#assert";

const root = new URL("..", import.meta.url).pathname;

async function task(
  name: string,
  env: Record<string, string>,
  args: string[] = [],
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", name, ...args],
    cwd: root,
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  equal(out.code, 0, text);
  return text;
}

Deno.test("example 01: the quickstart tunes an in-process objective", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:quickstart", { NUM_SAMPLES: "4", STORAGE: storage });
  match(text, /best loss \d+\.\d+ with/);
});

Deno.test("example 02 (deno task demo): MNIST with ASHA in sandboxed trials, tiny budget", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("demo", {
    NUM_SAMPLES: "2",
    EPOCHS: "2",
    TRAIN_SIZE: "300",
    STORAGE: storage,
    NAME: "demo",
  });
  match(text, /Best: val_loss \d+\.\d+, val_acc \d\.\d+/);
  const first = (await Deno.readTextFile(
    `${storage}/demo/${(await firstTrial(`${storage}/demo`))}/result.jsonl`,
  )).split("\n")[0];
  match(first, /"backend":"tensorflow"/); // deno task setup built the native backend
  match(text, /TensorFlow.js backend: tensorflow \(2 trials\)/);
});

Deno.test("example 03: MNIST with PBT exploits and logs lineages, tiny budget", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:pbt", {
    NUM_SAMPLES: "4",
    EPOCHS: "4",
    TRAIN_SIZE: "300",
    STORAGE: storage,
    NAME: "pbt",
  });
  match(text, /Best: val_loss \d+\.\d+/);
  const events = await Deno.readTextFile(`${storage}/pbt/trials.jsonl`);
  match(events, /"reason":"exploit /);
});

Deno.test("example 08: MNIST accuracy against model size, the Pareto front printed and drawn", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:multi", {
    NUM_SAMPLES: "3",
    EPOCHS: "1",
    TRAIN_SIZE: "300",
    STORAGE: storage,
    NAME: "multi",
  });
  match(text, /Pareto front \(val_acc, params\): \d trial\(s\)/);
  const front = [...text.matchAll(/ {2}(\w+): val_acc (\d\.\d+) with (\d+) parameters/g)];
  equal(front.length > 0, true, text);
  // Along the front, more parameters buy more accuracy.
  for (let i = 1; i < front.length; i++) {
    equal(Number(front[i][3]) > Number(front[i - 1][3]), true, text);
    equal(Number(front[i][2]) > Number(front[i - 1][2]), true, text);
  }
  const experiment = JSON.parse(await Deno.readTextFile(`${storage}/multi/experiment.json`));
  equal(
    JSON.stringify([experiment.metrics, experiment.modes]),
    '[["val_acc","params"],["max","min"]]',
  );
  const report = await Deno.readTextFile(`${storage}/multi/report.html`);
  match(report, /"objectives":\[\{"metric":"val_acc","mode":"max"\}/);
});

Deno.test("example 10: MNIST with PB2 exploits and logs lineages, tiny budget", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:pb2", {
    NUM_SAMPLES: "4",
    EPOCHS: "4",
    TRAIN_SIZE: "300",
    STORAGE: storage,
    NAME: "pb2",
  });
  match(text, /Best: val_loss \d+\.\d+/);
  const events = await Deno.readTextFile(`${storage}/pb2/trials.jsonl`);
  match(events, /"reason":"exploit /);
});

Deno.test("example 09: MNIST with 2 data-parallel workers per trial and ASHA, tiny budget", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:data-parallel", {
    NUM_SAMPLES: "2",
    EPOCHS: "2",
    TRAIN_SIZE: "400",
    STORAGE: storage,
    NAME: "dp",
  });
  match(text, /Best: val_loss \d+\.\d+, val_acc \d\.\d+ with 2 workers per trial/);
  const trial = await firstTrial(`${storage}/dp`);
  // Both workers ran: rank 1 had its own folder (its log files are made only when it prints,
  // and it prints nothing).
  await Deno.stat(`${storage}/dp/${trial}/files/rank_1`);
});

async function firstTrial(dir: string): Promise<string> {
  const names = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory && /_\d{5}$/.test(e.name)) names.push(e.name);
  }
  return names.sort()[0];
}

async function trialDirs(dir: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory && /_\d{5}$/.test(e.name)) names.push(e.name);
  }
  return names.sort();
}

async function hasEvents(dir: string): Promise<boolean> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.startsWith("events.out.tfevents.")) return true;
  }
  return false;
}

Deno.test("example 04: TPE with ASHA writes a TensorBoard run per trial, tiny budget", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:tpe", {
    NUM_SAMPLES: "3",
    EPOCHS: "2",
    TRAIN_SIZE: "300",
    STORAGE: storage,
    NAME: "tpe",
  });
  match(text, /Best: val_loss \d+\.\d+, val_acc \d\.\d+/);
  match(text, new RegExp(`tensorboard --logdir ${storage}/tpe`));
  const experiment = JSON.parse(await Deno.readTextFile(`${storage}/tpe/experiment.json`));
  equal(experiment.searcher.name, "tpe");
  const trials = await trialDirs(`${storage}/tpe`);
  equal(trials.length, 3);
  for (const t of trials) equal(await hasEvents(`${storage}/tpe/${t}`), true, `${t} has events`);
  equal(await hasEvents(`${storage}/tpe`), true, "the HParams experiment summary exists");
});

Deno.test("example 05: the YAML experiment runs through the CLI with --set overrides", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:yaml", {}, [
    "--set",
    "num_samples=2",
    "--set",
    "space.epochs=2",
    "--set",
    "scheduler.max_t=2",
    "--set",
    "space.train_size=300",
    "--storage",
    storage,
  ]);
  match(text, new RegExp(`Results: ${storage}/mnist-yaml`));
  const experiment = JSON.parse(await Deno.readTextFile(`${storage}/mnist-yaml/experiment.json`));
  equal(experiment.searcher.name, "tpe");
  equal(experiment.scheduler.name, "asha");
  const trials = await trialDirs(`${storage}/mnist-yaml`);
  equal(trials.length, 2);
  for (const t of trials) {
    const results = await Deno.readTextFile(`${storage}/mnist-yaml/${t}/result.jsonl`);
    match(results, /"val_acc":/);
    equal(await hasEvents(`${storage}/mnist-yaml/${t}`), true, `${t} has events`);
  }
});

Deno.test("example 06: the best checkpoint's test accuracy, after tuning and from a folder", async () => {
  const storage = await Deno.makeTempDir();
  const env = { NUM_SAMPLES: "2", EPOCHS: "1", TRAIN_SIZE: "300", STORAGE: storage, NAME: "best" };
  const accuracy = (text: string): number => {
    const m = /Test accuracy: (\d\.\d+) on 2000 held-out digits/.exec(text);
    if (!m) throw new Error(`no test accuracy in:\n${text}`);
    return Number(m[1]);
  };
  const tuned = accuracy(await task("example:best", env));
  equal(tuned >= 0 && tuned <= 1, true, `accuracy ${tuned}`);
  // The same experiment loaded from its folder: the same model, the same digits.
  equal(accuracy(await task("example:best", env, [`${storage}/best`])), tuned);
});

Deno.test("example 07: a custom scheduler stops trials on a plateau", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:scheduler", { NUM_SAMPLES: "4", STORAGE: storage });
  match(text, /[1-4] of 4 trials stopped on a plateau/);
  match(text, /best loss \d+\.\d+ with/);
});

Deno.test("example 11: resource-changing trials get the CPUs of the trials that ended", async () => {
  const storage = await Deno.makeTempDir();
  const text = await task("example:resources", { EPOCHS: "6", STORAGE: storage });
  match(text, /CPUs per run: 1 -> [234]/);
  match(text, /best loss \d+\.\d+ \(width \d+\)/);
});
