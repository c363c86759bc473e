// examples/notebook.ipynb executed headless by real Jupyter (nbclient from PyPI, in the test venv)
// on Deno's own kernel, registered by `deno jupyter --install` into a temporary Jupyter data dir;
// then its outputs are read: the live HTML table updated in place through display_id, the
// progress bar's final state, the results' rich display, the inline charts (drawn in Chromium),
// and no error or ANSI output anywhere.
import { equal, match, ok } from "#assert";
import { join } from "node:path";
import { pythonPath } from "./peers/mlflow_server.ts";
import { launchChromium, watchConsole } from "./reporters/_browser.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const NOTEBOOK = join(ROOT, "examples", "notebook.ipynb");

// Executes a notebook with nbclient and counts the IOPub messages of each cell, so that the test
// sees the in-place updates that the saved notebook folds into one output.
const RUNNER = `
import json, sys
import nbformat
from nbclient import NotebookClient
src, out, cwd = sys.argv[1:4]
nb = nbformat.read(src, as_version=4)
client = NotebookClient(nb, timeout=600, kernel_name="deno", allow_errors=True,
                        resources={"metadata": {"path": cwd}})
counts = {}
original = client.process_message
def counting(msg, cell, cell_index):
    key = str(cell_index)
    counts.setdefault(key, {})
    t = msg["msg_type"]
    counts[key][t] = counts[key].get(t, 0) + 1
    return original(msg, cell, cell_index)
client.process_message = counting
# Deno's kernel publishes a cell's outputs from more than one task, and under load its last ones
# (an execute_result) can come after the cell's idle status, where nbclient stops listening.
# Keep taking this cell's messages for a moment after idle, as a frontend that stays open would.
from queue import Empty
from nbclient.util import ensure_async
poll = client._async_poll_output_msg
late = {"n": 0}
async def poll_then_late(parent_msg_id, cell, cell_index):
    await poll(parent_msg_id, cell, cell_index)
    while True:
        try:
            msg = await ensure_async(client.kc.iopub_channel.get_msg(timeout=0.5))
        except Empty:
            return
        if msg["parent_header"].get("msg_id") == parent_msg_id and msg["msg_type"] != "status":
            late["n"] += 1
            client.process_message(msg, cell, cell_index)
client._async_poll_output_msg = poll_then_late
client.execute()
print(f"late messages: {late['n']}", file=sys.stderr)
nbformat.write(nb, out)
with open(out + ".messages.json", "w") as f:
    json.dump(counts, f)
`;

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}
interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
}

const joinText = (v: string | string[] | undefined): string =>
  Array.isArray(v) ? v.join("") : v ?? "";

Deno.test({
  name:
    "examples/notebook.ipynb runs in Jupyter on the Deno kernel: a live HTML table updated in place, a finished progress bar, rich results, inline charts, no errors",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const python = pythonPath();
    let probe: Deno.CommandOutput;
    try {
      probe = await new Deno.Command(python, {
        args: ["-c", "import nbclient, nbformat"],
        stderr: "piped",
      }).output();
    } catch (e) {
      throw new Error(
        `Python for the Jupyter test peer not found at "${python}" (${e}): create the venv ` +
          `with \`python3 -m venv .venv && .venv/bin/pip install nbclient\` or set TUNEBOX_PYTHON`,
      );
    }
    if (!probe.success) {
      throw new Error(
        `Jupyter's nbclient is missing from "${python}": install it with ` +
          `\`${python} -m pip install nbclient\` (.ci/run does), or set TUNEBOX_PYTHON`,
      );
    }
    const home = await Deno.makeTempDir({ prefix: "tunebox_notebook_test_" });
    try {
      // The Deno kernel, registered into a Jupyter data dir of this test only.
      const dataHome = join(home, "data");
      const env = {
        ...Deno.env.toObject(),
        XDG_DATA_HOME: dataHome,
        JUPYTER_DATA_DIR: join(dataHome, "jupyter"),
        JUPYTER_CONFIG_DIR: join(home, "config"),
        JUPYTER_RUNTIME_DIR: join(home, "runtime"),
        JUPYTER_PLATFORM_DIRS: "1",
        STORAGE: join(home, "results"),
        NUM_SAMPLES: "3",
        EPOCHS: "2",
        TRAIN_SIZE: "300",
      };
      const install = await new Deno.Command(Deno.execPath(), {
        args: ["jupyter", "--install", "--force"],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      equal(install.code, 0, new TextDecoder().decode(install.stderr));
      const spec = JSON.parse(
        await Deno.readTextFile(join(dataHome, "jupyter", "kernels", "deno", "kernel.json")),
      );
      equal(spec.argv[1], "jupyter");

      const out = join(home, "executed.ipynb");
      const run = await new Deno.Command(python, {
        args: ["-c", RUNNER, NOTEBOOK, out, join(ROOT, "examples")],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      equal(run.code, 0, new TextDecoder().decode(run.stderr));
      const nb: { cells: Cell[] } = JSON.parse(await Deno.readTextFile(out));
      const messages: Record<string, Record<string, number>> = JSON.parse(
        await Deno.readTextFile(`${out}.messages.json`),
      );
      const code = nb.cells.map((c, i) => ({ ...c, index: i })).filter((c) =>
        c.cell_type === "code"
      );

      // No cell failed; nothing of Tunebox's printed ANSI codes (Deno colours the plain-text
      // form of ordinary values, which frontends render).
      for (const c of code) {
        for (const o of c.outputs ?? []) {
          ok(o.output_type !== "error", `cell ${c.index}: ${o.ename}: ${o.evalue}`);
          const ours = o.output_type === "stream" || o.output_type === "display_data" ||
            o.data?.["text/html"] !== undefined;
          const text = joinText(o.text) + joinText(o.data?.["text/plain"]) +
            joinText(o.data?.["text/html"]);
          ok(
            !ours || !text.includes("\x1b["),
            `cell ${c.index} printed ANSI codes: ${text.slice(0, 200)}`,
          );
        }
      }
      const cellWith = (s: string) => {
        const c = code.find((c) => joinText(c.source).includes(s));
        if (!c) throw new Error(`no code cell contains ${s}`);
        return c;
      };

      // The quickstart: one display output (no scroll flood), updated in place while it ran,
      // ending with every trial in the table and a full progress bar.
      const quick = cellWith("numSamples: 12");
      const displays = (quick.outputs ?? []).filter((o) => o.output_type === "display_data");
      equal(displays.length, 1, JSON.stringify(quick.outputs).slice(0, 500));
      ok((messages[quick.index]?.update_display_data ?? 0) >= 1, JSON.stringify(messages));
      equal(messages[quick.index]?.display_data, 1);
      const live = joinText(displays[0].data?.["text/html"]);
      equal(live.match(/<tr data-trial="/g)?.length, 12, live);
      match(live, /data-done="12" data-total="12" data-final="true"/);
      match(live, /width:100\.0%/);
      match(live, /12\/12 trials, finished/);
      match(live, /best loss = [\d.]+ \(/);
      match(live, /12 terminated/);

      // `results;` displays the summary table.
      const summary = cellWith("results;").outputs?.find((o) => o.output_type === "execute_result");
      const html = joinText(summary?.data?.["text/html"]);
      match(html, /class="tunebox-nb tunebox-results"/);
      match(html, /Best trial <b>\w+_\d+<\/b>: loss = <b>[\d.]+<\/b>/);
      equal(html.match(/<tr data-trial="/g)?.length, 12);
      match(joinText(summary?.data?.["text/plain"]), /: 12 trials \(12 terminated\), best /);
      match(
        joinText(cellWith("results.best().config").outputs?.[0]?.data?.["text/plain"]),
        // Deno colours the numbers of a plain value's text form.
        // deno-lint-ignore no-control-regex
        /lr: (\x1b\[\d+m)?[\d.e-]+/,
      );

      // MNIST: the live table of sandboxed trials and the summary.
      const mnist = cellWith("mnistSetup(");
      const mnistLive = joinText(
        mnist.outputs?.find((o) => o.output_type === "display_data")?.data?.["text/html"],
      );
      match(mnistLive, /data-done="3" data-total="3" data-final="true"/);
      const mnistSummary = joinText(
        mnist.outputs?.find((o) => o.output_type === "execute_result")?.data?.["text/html"],
      );
      equal(mnistSummary.match(/<tr data-trial="/g)?.length, 3);
      match(mnistSummary, /metric <code>val_loss<\/code>/);

      // The last cell: the report's charts inline, offline, drawn by a real browser.
      const last = code.at(-1)!;
      const plot = joinText(
        last.outputs?.find((o) => o.output_type === "execute_result")?.data?.["text/html"],
      );
      match(plot, /^<iframe class="tunebox-plot" sandbox="allow-scripts"/);
      ok(!/src="https?:/.test(plot), "the plot loads nothing from the network");
      const page = join(home, "plot.html");
      await Deno.writeTextFile(page, `<!doctype html><body>${plot}</body>`);
      const browser = await launchChromium();
      try {
        const tab = await browser.context.newPage();
        const problems = watchConsole(tab);
        await tab.goto(`file://${page}`);
        const frame = await (await tab.waitForSelector("iframe.tunebox-plot")).contentFrame();
        if (!frame) throw new Error("the plot's iframe has no frame");
        await frame.waitForFunction(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).__tunebox?.renders > 0 || (globalThis as any).__tunebox?.errors.length
        );
        const counts = await frame.evaluate(() => {
          // deno-lint-ignore no-explicit-any
          const t = (globalThis as any).__tunebox;
          return {
            errors: t.errors.length,
            curves: t.charts.curves.getOption().series.length,
            best: t.charts.best.getOption().series[0].data.length,
          };
        });
        equal(counts.errors, 0);
        equal(counts.curves, 3);
        equal(counts.best, 3);
        equal(problems.length, 0, problems.join("\n"));
      } finally {
        await browser.close();
      }
    } finally {
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
