import { equal, match } from "#assert";

const root = new URL("..", import.meta.url).pathname;

async function task(name: string, env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", name],
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
  match(first, /"backend":"wasm"/);
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

async function firstTrial(dir: string): Promise<string> {
  const names = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory && /_\d{5}$/.test(e.name)) names.push(e.name);
  }
  return names.sort()[0];
}
