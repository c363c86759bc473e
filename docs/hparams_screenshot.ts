#!/usr/bin/env -S deno run --allow-all
/**
 * Makes the README's screenshots of TensorBoard's HPARAMS tab from a real experiment:
 * `docs/hparams.png` (the table view) and `docs/hparams_parallel.png` (parallel coordinates).
 *
 *     deno run -A docs/hparams_screenshot.ts
 *
 * 1. Runs 12 trials of an in-process trainable (a learning-curve model of `lr`, `batch_size` and
 *    `dropout`) with ASHA stopping the weak ones, logged by `tensorboardLogger()`.
 * 2. Starts `<venv>/bin/tensorboard --logdir <experiment> --host 127.0.0.1 --port <free>`
 *    (the venv of `TUNEBOX_PYTHON`, else `.venv`; `TENSORBOARD` overrides the command).
 * 3. Opens `http://127.0.0.1:<port>/#hparams` in headless Chromium (Debian's `chromium` package,
 *    driven by playwright-core, fresh profile), waits until the table lists every trial and the
 *    parallel-coordinates plot draws every trial's line, and saves both views at 1280x800.
 *
 * TensorBoard is stopped and the experiment removed when it ends, failed or not. `OUT` sets the
 * output folder (default: this script's folder).
 *
 * @module
 */

import { choice, loguniform, Tuner, uniform } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import { tensorboardLogger } from "../plugins/loggers/tensorboard/mod.ts";
import { launchChromium } from "../tests/reporters/_browser.ts";

const TRIALS = 12;
const EPOCHS = 12;
const REPO = new URL("../", import.meta.url).pathname;
const OUT = Deno.env.get("OUT") ?? new URL(".", import.meta.url).pathname.replace(/\/$/, "");

function tensorboardCommand(): string {
  const explicit = Deno.env.get("TENSORBOARD");
  if (explicit) return explicit;
  const python = Deno.env.get("TUNEBOX_PYTHON") ?? `${REPO}.venv/bin/python`;
  return `${python.slice(0, python.lastIndexOf("/") + 1)}tensorboard`;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function poll<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
}

/** The experiment: 12 trials, ASHA stops the weak ones at rungs 1, 2, 4 and 8. */
async function runExperiment(storage: string): Promise<string> {
  const results = await new Tuner({
    trainable: async (config, session) => {
      // A validation-loss curve: the best lr is about 5e-3, dropout and big batches cost a bit.
      const floor = 0.05 + 0.25 * (Math.log10(config.lr) + 2.3) ** 2 + 0.3 * config.dropout +
        (config.batch_size === 128 ? 0.04 : 0);
      for (let epoch = session.iteration; epoch < EPOCHS; epoch++) {
        const valLoss = floor + 1.5 * Math.exp(-(epoch + 1) / (2 + 60 / config.batch_size));
        await session.report({ val_loss: valLoss, val_acc: Math.exp(-valLoss) });
      }
    },
    space: {
      lr: loguniform(1e-4, 1e-1),
      batch_size: choice([32, 64, 128]),
      dropout: uniform(0, 0.5),
    },
    metric: "val_loss",
    mode: "min",
    numSamples: TRIALS,
    maxConcurrent: 2,
    seed: 6,
    scheduler: ashaScheduler({ maxT: EPOCHS, gracePeriod: 1, reductionFactor: 2 }),
    callbacks: [tensorboardLogger({ metrics: ["val_loss", "val_acc"] })],
    storage,
    name: "hparams-demo",
    reporter: false,
  }).fit();
  const epochs = results.trials.map((t) => results.history(t.id).length);
  const stopped = epochs.filter((n) => n < EPOCHS).length;
  console.log(
    `experiment: ${results.trials.length} trials, ${stopped} stopped early by ASHA ` +
      `(epochs run: ${epochs.join(", ")}), best val_loss ${results.best().score.toFixed(4)}`,
  );
  if (results.trials.length !== TRIALS || stopped === 0) {
    throw new Error("the experiment did not produce the trials the screenshot needs");
  }
  return results.path;
}

async function main(): Promise<void> {
  const storage = await Deno.makeTempDir({ prefix: "tunebox_hparams_shot_" });
  let tensorboard: Deno.ChildProcess | undefined;
  let output: Promise<string> | undefined;
  try {
    const logdir = await runExperiment(storage);

    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const command = tensorboardCommand();
    try {
      await Deno.stat(command);
    } catch {
      throw new Error(
        `TensorBoard not found at ${command}: create the venv with ` +
          `"python3 -m venv .venv && .venv/bin/pip install tensorboard", or set TENSORBOARD`,
      );
    }
    tensorboard = new Deno.Command(command, {
      args: ["--logdir", logdir, "--host", "127.0.0.1", "--port", String(port)],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true, // its own process group: the Rust data server goes down with it
    }).spawn();
    const tb = tensorboard;
    output = Promise.all([new Response(tb.stdout).text(), new Response(tb.stderr).text()])
      .then(([o, e]) => o + e);
    let exited = false;
    tb.status.then(() => (exited = true));
    await poll(`TensorBoard at ${url} to load ${TRIALS} runs`, 120_000, async () => {
      if (exited) throw new Error(`tensorboard exited:\n${await output}`);
      const runs = await (await fetch(`${url}/data/runs`)).json() as string[];
      return runs.filter((r) => r !== ".").length >= TRIALS ? true : undefined;
    });

    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.goto(`${url}/#hparams`);
      // The table: one row per trial, named by its trial id.
      const ids = page.locator("tf-hparams-table-view vaadin-grid-cell-content", {
        hasText: /^\s*[0-9a-f]{5}_\d{5}\s*$/,
      });
      await poll(`the HPARAMS table to list ${TRIALS} trials`, 60_000, async () => {
        return (await ids.count()) === TRIALS ? true : undefined;
      });
      await page.screenshot({ path: `${OUT}/hparams.png`, animations: "disabled" });
      console.log(`wrote ${OUT}/hparams.png`);

      await page.getByText("Parallel Coordinates View").click();
      // lr was sampled log-uniformly: show its axis on a log scale.
      await page.locator("tf-hparams-parallel-coords-view #logScaleButton_lr").click();
      const lines = page.locator("tf-hparams-parallel-coords-plot g.foreground path");
      await poll(`the parallel coordinates to draw ${TRIALS} lines`, 60_000, async () => {
        return (await lines.count()) === TRIALS ? true : undefined;
      });
      await page.waitForLoadState("networkidle");
      await page.screenshot({ path: `${OUT}/hparams_parallel.png`, animations: "disabled" });
      console.log(`wrote ${OUT}/hparams_parallel.png`);
    } finally {
      await browser.close();
    }
  } finally {
    if (tensorboard) {
      try {
        Deno.kill(-tensorboard.pid, "SIGTERM");
      } catch { /* already gone */ }
      await tensorboard.status;
      try {
        Deno.kill(-tensorboard.pid, "SIGKILL"); // anything of its group still alive
      } catch { /* none left */ }
      await output;
    }
    await Deno.remove(storage, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
