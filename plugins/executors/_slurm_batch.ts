// Private to the Slurm executor (slurm.ts): the batch jobs of sbatch mode, watched together.

import { join } from "../../core/_path.ts";
import { isTerminal, scancel, squeue } from "./_slurm_commands.ts";

/** The file in the experiment folder listing the batch jobs submitted, one id a line. */
const JOBS_FILE = ".slurm_jobs";

/** Slurm's last word on a batch job that left the queue. */
export interface BatchEnd {
  /** Its final state ("" when `squeue` no longer lists it). */
  readonly state: string;
  /** The node(s) it ran on, as last seen. */
  readonly nodes: string;
}

/**
 * The live batch jobs of one executor (sbatch mode): one `squeue` poll every `pollMs` for all
 * of them, while any is live, telling each its end; and their ids in the experiment folder, so
 * a later driver cancels what a killed one left behind. Owns the poll timer and that file.
 */
export class BatchJobs {
  /** Live job id -> who waits for its end, and the nodes it was last seen on. */
  readonly #live = new Map<string, { onEnd: (end: BatchEnd) => void; nodes: string }>();
  #poller: ReturnType<typeof setInterval> | undefined;
  /** The experiment folder (set by `prepare()`); "" before. */
  dir = "";
  /**
   * `cancelLeftovers()` ran: the jobs file lists this executor's jobs from then on. Before, it
   * lists an earlier driver's, which `close()` must not forget.
   */
  #ownsFile = false;

  /** Watches with the commands' environment, every `pollMs`. */
  constructor(
    readonly env: Readonly<Record<string, string>>,
    readonly pollMs: number,
    readonly log: (message: string) => void,
  ) {}

  /** Records a submitted job in the experiment folder and tells `onEnd` when it leaves the queue. */
  async watch(id: string, onEnd: (end: BatchEnd) => void): Promise<void> {
    await Deno.writeTextFile(join(this.dir, JOBS_FILE), `${id}\n`, { append: true });
    this.#live.set(id, { onEnd, nodes: "" });
    this.#poller ??= setInterval(() => this.#poll(), this.pollMs);
  }

  async #poll(): Promise<void> {
    if (!this.#live.size) return;
    const ids = [...this.#live.keys()];
    const states = await squeue(ids, this.env).catch(() => undefined);
    if (!states) return;
    for (const id of ids) {
      const w = this.#live.get(id);
      if (!w) continue;
      const s = states.get(id);
      if (s?.nodes) w.nodes = s.nodes;
      if (!s || isTerminal(s.state)) {
        this.#live.delete(id);
        w.onEnd({ state: s?.state ?? "", nodes: w.nodes });
      }
    }
    if (!this.#live.size) this.#stopPolling();
  }

  #stopPolling(): void {
    if (this.#poller) clearInterval(this.#poller);
    this.#poller = undefined;
  }

  /** Cancels batch jobs a killed driver left behind (their ids are in the experiment folder). */
  async cancelLeftovers(): Promise<void> {
    let ids: string[] = [];
    try {
      ids = (await Deno.readTextFile(join(this.dir, JOBS_FILE))).split("\n")
        .filter((x) => /^\d+$/.test(x));
    } catch { /* none */ }
    if (!ids.length) {
      this.#ownsFile = true;
      return;
    }
    const states = await squeue(ids, this.env).catch(() => new Map());
    for (const id of ids) {
      if (!states.has(id)) continue;
      this.log(`cancelling Slurm job ${id}, left running by an earlier driver of this experiment`);
      await scancel(id, this.env);
    }
    await Deno.remove(join(this.dir, JOBS_FILE)).catch(() => {});
    this.#ownsFile = true;
  }

  /**
   * Stops polling and removes the list (the driver ends normally). Before `cancelLeftovers()`
   * ran (a `prepare()` that failed first) the list is left as it is: the jobs it names were never
   * cancelled, and the next driver cancels them. (No job is submitted before then.)
   */
  async close(): Promise<void> {
    this.#stopPolling();
    if (this.dir && this.#ownsFile) await Deno.remove(join(this.dir, JOBS_FILE)).catch(() => {});
  }
}
