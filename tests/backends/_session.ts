// A small, real session for in-process tests: it records reports and commits checkpoints the
// way the driver does (a staging folder renamed to checkpoint_<iteration> inside the trial dir).
import type { JsonValue } from "../../core/plugin.ts";
import type { ReportOptions, TuneSession } from "../../plugins/backends/tfjs.ts";

export class RecordingSession implements TuneSession {
  readonly reports: Record<string, JsonValue>[] = [];
  readonly checkpoints: string[] = [];
  readonly trialDir: string;
  readonly signal: AbortSignal;
  #abort = new AbortController();
  #stopAfter: number | undefined;
  iteration = 0;
  checkpoint: string | undefined;

  constructor(trialDir: string, options: { stopAfter?: number; checkpoint?: string } = {}) {
    this.trialDir = trialDir;
    this.signal = this.#abort.signal;
    this.#stopAfter = options.stopAfter;
    this.checkpoint = options.checkpoint;
  }

  async report(metrics: Record<string, JsonValue>, options?: ReportOptions): Promise<void> {
    this.iteration++;
    this.reports.push(metrics);
    if (options?.checkpoint) {
      const staging = `${this.trialDir}/.staging_${this.iteration}`;
      await Deno.mkdir(staging, { recursive: true });
      await options.checkpoint(staging);
      const committed = `${this.trialDir}/checkpoint_${String(this.iteration).padStart(6, "0")}`;
      await Deno.rename(staging, committed);
      this.checkpoints.push(committed);
      this.checkpoint = committed;
    }
    if (this.#stopAfter !== undefined && this.iteration >= this.#stopAfter) this.#abort.abort();
  }
}
