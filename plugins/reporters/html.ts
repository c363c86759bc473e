/**
 * A self-contained HTML report of an experiment folder: one file that works offline (Apache
 * ECharts is inlined), with the sortable trial table, the learning curves of every trial, parallel
 * coordinates of the hyperparameters and the metric, the metric against each hyperparameter,
 * parameter importance (random-forest permutation importance), the best-so-far curve, and the
 * lineage of configurations when PBT exploited.
 *
 * ```sh
 * tunebox report tunebox_results/my-exp              # writes tunebox_results/my-exp/report.html
 * tunebox report tunebox_results/my-exp --out r.html
 * ```
 *
 * @example
 * ```ts ignore
 * import { renderReport } from "./html.ts";
 * await Deno.writeTextFile("report.html", await renderReport("tunebox_results/my-exp"));
 * ```
 *
 * @module
 */

import { parseArgs } from "#flags";
import { join, resolve } from "node:path";
import { TuneError } from "../../core/errors.ts";
import { relativeLink, ReportLoader } from "./_html_data.ts";
import { pageHtml } from "./_html_page.ts";

/** Options of {@linkcode renderReport}. */
export interface RenderReportOptions {
  /**
   * Where the HTML file will be saved: links to trial folders are made relative to its folder.
   * @default "<dir>/report.html"
   */
  readonly outFile?: string;
}

/**
 * Checks that `dir` is an experiment folder, with a message that says what it is otherwise (a
 * missing path, a file, or a storage folder holding experiments, which it lists).
 *
 * @throws {TuneError} when it is not.
 */
export async function checkExperimentDir(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new TuneError(
        `"${dir}" does not exist; pass an experiment folder (<storage>/<name>, the folder that holds experiment.json)`,
        { cause: e },
      );
    }
    throw e;
  }
  if (!info.isDirectory) {
    throw new TuneError(
      `"${dir}" is a file, not an experiment folder; pass the folder that holds experiment.json`,
    );
  }
  try {
    await Deno.stat(join(dir, "experiment.json"));
    return;
  } catch { /* described below */ }
  const inside: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isDirectory) continue;
    try {
      await Deno.stat(join(dir, e.name, "experiment.json"));
      inside.push(join(dir, e.name));
    } catch { /* not an experiment */ }
  }
  inside.sort();
  throw new TuneError(
    inside.length
      ? `"${dir}" is a storage folder, not an experiment folder; it holds ${inside.length} experiment(s): ${
        inside.slice(0, 5).map((p) => `"${p}"`).join(", ")
      }${inside.length > 5 ? ", ..." : ""}`
      : `"${dir}" is not a tunebox experiment folder: it has no experiment.json`,
  );
}

/**
 * Renders the HTML report of an experiment folder (finished, interrupted, still running, or
 * killed half-way: torn last lines are skipped and listed as warnings in the report).
 *
 * @param dir the experiment folder (`<storage>/<name>`).
 * @param options where the file will be saved (for relative trial links).
 * @returns one self-contained HTML document.
 * @throws {TuneError} when `dir` is not an experiment folder.
 * @example
 * ```ts ignore
 * import { renderReport } from "./html.ts";
 * const html = await renderReport("tunebox_results/my-exp", { outFile: "report.html" });
 * await Deno.writeTextFile("report.html", html);
 * ```
 */
export async function renderReport(
  dir: string,
  options: RenderReportOptions = {},
): Promise<string> {
  await checkExperimentDir(dir);
  const outFile = resolve(options.outFile ?? join(dir, "report.html"));
  const loader = new ReportLoader(dir, { trialLink: (_id, path) => relativeLink(outFile, path) });
  return pageHtml(await loader.load());
}

/**
 * The HTML report of a `ResultGrid` (what `ResultGrid#toHtml()` returns): the report of
 * the grid's experiment folder.
 *
 * @param grid a `ResultGrid` (from `Tuner.fit()` or `ResultGrid.load()`): its `path` is read.
 * @param options where the file will be saved (for relative trial links).
 * @returns one self-contained HTML document.
 * @throws {TuneError} when the grid's folder is no longer an experiment folder.
 * @example
 * ```ts ignore
 * import { ResultGrid } from "../../core/results.ts";
 * import { resultGridToHtml } from "./html.ts";
 * const grid = await ResultGrid.load("tunebox_results/my-exp");
 * await Deno.writeTextFile("report.html", await resultGridToHtml(grid, { outFile: "report.html" }));
 * ```
 */
export function resultGridToHtml(
  grid: { readonly path: string },
  options: RenderReportOptions = {},
): Promise<string> {
  return renderReport(grid.path, options);
}

/** Where a command writes; tests pass their own. */
export interface CommandOutput {
  /** Normal output. @default console.log */
  readonly stdout?: (line: string) => void;
  /** Errors. @default console.error */
  readonly stderr?: (line: string) => void;
}

const REPORT_USAGE = `Usage: tunebox report DIR [--out FILE.html]

Writes one self-contained HTML report of the experiment folder DIR (default: DIR/report.html).`;

/**
 * `tunebox report DIR [--out FILE.html]`: writes the report and prints where, how big and how
 * long it took.
 *
 * @param args the arguments after `report`.
 * @param output where to print.
 * @returns the exit code: 0 written, 1 failed (not an experiment, cannot write), 2 bad usage.
 * @example
 * ```ts ignore
 * import { reportCommand } from "./html.ts";
 * Deno.exit(await reportCommand(["tunebox_results/my-exp", "--out", "report.html"]));
 * ```
 */
export async function reportCommand(
  args: readonly string[],
  output: CommandOutput = {},
): Promise<number> {
  const out = output.stdout ?? ((s: string) => console.log(s));
  const err = output.stderr ?? ((s: string) => console.error(s));
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { out: { type: "string", short: "o" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    err(`tunebox report: ${(e as Error).message}\n\n${REPORT_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    out(REPORT_USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    err(
      `tunebox report: expected one experiment folder, got ${parsed.positionals.length}\n\n${REPORT_USAGE}`,
    );
    return 2;
  }
  const dir = parsed.positionals[0];
  const file = parsed.values.out ?? join(dir, "report.html");
  const start = performance.now();
  try {
    const html = await renderReport(dir, { outFile: file });
    await Deno.writeTextFile(file, html);
    const ms = performance.now() - start;
    out(
      `Wrote ${file} (${(new TextEncoder().encode(html).length / 1024).toFixed(0)} KiB) in ${
        ms.toFixed(0)
      } ms`,
    );
    return 0;
  } catch (e) {
    if (e instanceof TuneError) {
      err(`tunebox report: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      err(`tunebox report: cannot write "${file}": ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}
