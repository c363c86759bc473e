// Private to the Ray executor (ray.ts): the table of the Ray jobs one executor submitted and has
// not deleted yet, the poller that tells each job's owner Ray's record of it, and `.ray_jobs`,
// the experiment folder's list of them that lets the next driver stop what a killed one left.

import { join } from "../../core/_path.ts";
import { TuneError } from "../../core/errors.ts";
import { isFinal, type RayJobInfo, type RayJobsClient } from "./_ray_client.ts";

/** The file in the experiment folder listing the jobs submitted and not yet deleted. */
export const JOBS_FILE = ".ray_jobs";
/** Every job of Tunebox's is named `tunebox-...` (`.ray_jobs` holds nothing else). */
export const JOB_PREFIX = "tunebox-";

/** What a job's owner is told on each poll: Ray's record of it, or undefined when Ray lost it. */
export type JobWatcher = (info: RayJobInfo | undefined) => void;

/**
 * The Ray jobs of one executor, from submission to deletion. A live job has a watcher (its
 * trial, or its pooled launcher) told Ray's record of it on every poll until it ends. A job given
 * up (stopped while PENDING, or left by an earlier driver) is a zombie: Ray may still run it, so
 * it is stopped again if it does, and its record deleted once it ends. The poller runs while any
 * job is live or a zombie.
 */
export class RayJobTable {
  readonly #ray: RayJobsClient;
  readonly #pollMs: number;
  readonly #log: (message: string) => void;
  /** Live jobs by submission id: each job's watcher. */
  readonly #live = new Map<string, JobWatcher>();
  /** Jobs stopped while PENDING (or left by a killed driver): deleted once they end. */
  readonly #zombies = new Set<string>();
  /** Zombies Ray ran all the same, stopped a second time (once each). */
  readonly #lateStopped = new Set<string>();
  /** Jobs whose trial ended, until their logs are fetched and their record deleted. */
  readonly #finishing = new Set<Promise<unknown>>();
  #poller: ReturnType<typeof setInterval> | undefined;
  /** A poll is in flight (a slow dashboard makes the next tick skip, not pile up). */
  #polling = false;
  /**
   * `stopLeftovers()` ran: `.ray_jobs` lists this executor's jobs from then on. Before, it lists
   * an earlier driver's, which `keepLeftovers()` must not forget.
   */
  #ownsFile = false;

  constructor(ray: RayJobsClient, pollMs: number, log: (message: string) => void) {
    this.#ray = ray;
    this.#pollMs = pollMs;
    this.#log = log;
  }

  /** Appends a job about to be submitted to the experiment's `.ray_jobs`. */
  async record(experimentDir: string, id: string): Promise<void> {
    await Deno.writeTextFile(join(experimentDir, JOBS_FILE), `${id}\n`, { append: true });
  }

  /** Tells `watcher` Ray's record of job `id` on every poll, until it calls `unwatch()`. */
  watch(id: string, watcher: JobWatcher): void {
    this.#live.set(id, watcher);
    this.poll();
  }

  /** Stops telling job `id`'s watcher; false when it had none. */
  unwatch(id: string): boolean {
    return this.#live.delete(id);
  }

  /** Gives a job up (its watcher already gone): stops it, and deletes it once it ends. */
  abandon(id: string): void {
    this.#zombies.add(id);
    this.#ray.stop(id).catch(() => {});
    this.poll();
  }

  /** Deletes a job's record once Ray says it ended (it has not yet). */
  deleteOnceEnded(id: string): void {
    this.#zombies.add(id);
    this.poll();
  }

  /** Work that ends a job after its trial (its log, its record): `drain()` waits for it. */
  finishing(work: Promise<unknown>): void {
    this.#finishing.add(work);
    work.finally(() => this.#finishing.delete(work));
  }

  /** Starts the poller, unless it runs. */
  poll(): void {
    this.#poller ??= setInterval(async () => {
      if (this.#polling) return;
      if (!this.#live.size && !this.#zombies.size) {
        clearInterval(this.#poller);
        this.#poller = undefined;
        return;
      }
      this.#polling = true;
      try {
        const ray = this.#ray;
        const jobs = new Map((await ray.list()).map((j) => [j.submission_id, j]));
        for (const [id, tell] of this.#live) {
          // A job just submitted may be missing from the list for a moment: ask for it.
          tell(
            jobs.get(id) ?? await ray.get(id).catch(() => ({ status: "PENDING" }) as RayJobInfo),
          );
        }
        for (const id of [...this.#zombies]) {
          const j = jobs.get(id);
          if (!j) this.#zombies.delete(id);
          else if (isFinal(j.status)) {
            this.#zombies.delete(id);
            await ray.delete(id).catch(() => {});
          } else if (j.status === "RUNNING" && !this.#lateStopped.has(id)) {
            // Ray ran a job it had been told to stop while PENDING: stop it again (its trial's
            // token is refused in any case).
            this.#lateStopped.add(id);
            this.#log(
              `Ray started job ${id} after it was stopped while PENDING; stopping it again`,
            );
            await ray.stop(id).catch(() => {});
          }
        }
      } catch {
        /* the dashboard is busy: next round */
      } finally {
        this.#polling = false;
      }
    }, this.#pollMs);
  }

  /** Stops the jobs a killed driver left behind (their ids are in `.ray_jobs`). */
  async stopLeftovers(experimentDir: string): Promise<void> {
    const ray = this.#ray;
    let ids: string[] = [];
    try {
      ids = (await Deno.readTextFile(join(experimentDir, JOBS_FILE))).split("\n").filter((x) =>
        x.startsWith(JOB_PREFIX)
      );
    } catch { /* none */ }
    for (const id of ids) {
      // Gone (404) is gone; a dashboard that cannot answer is not: then prepare() fails and
      // `.ray_jobs` stays for the next driver (see keepLeftovers()), instead of forgetting a job
      // that may still run.
      const leftover = (e: unknown) =>
        new TuneError(
          `Cannot tell whether Ray job ${id}, left by an earlier driver of this experiment, ` +
            `still runs (${(e as Error).message}); ${JOBS_FILE} is kept, so the next run stops it`,
          { cause: e },
        );
      const info = await ray.get(id).catch((e) => Promise.reject(leftover(e)));
      if (!info) continue;
      if (!isFinal(info.status)) {
        this.#log(
          `stopping Ray job ${id}, left ${info.status} by an earlier driver of this experiment`,
        );
        await ray.stop(id).catch((e) => Promise.reject(leftover(e)));
        this.#zombies.add(id);
      } else {
        await ray.delete(id).catch(() => {});
      }
    }
    if (this.#zombies.size) this.poll();
    await Deno.remove(join(experimentDir, JOBS_FILE)).catch(() => {});
    this.#ownsFile = true;
  }

  /**
   * Waits (up to 30 s) for every job to end and be deleted, then stops the poller; returns the
   * jobs that have not ended, stopped (see `keepLeftovers()`).
   */
  async drain(): Promise<string[]> {
    // Trials that said done still have jobs ending (Ray's supervisor exits after them), and
    // jobs stopped while PENDING usually get placed as soon as the last trials free their
    // resources: keep polling (and refusing their tokens) and delete each once it ends.
    const until = Date.now() + 30_000;
    while (
      (this.#live.size || this.#zombies.size || this.#finishing.size) && Date.now() < until
    ) {
      this.poll();
      await new Promise((r) => setTimeout(r, this.#pollMs));
    }
    await Promise.all([...this.#finishing]);
    // Ray under load can take minutes to mark a finished job as ended: stop what is left (its id
    // stays in .ray_jobs, so the next driver of this experiment deletes it).
    const left = [...new Set([...this.#zombies, ...this.#live.keys()])];
    for (const id of left) await this.#ray.stop(id).catch(() => {});
    this.#zombies.clear();
    this.#live.clear();
    if (this.#poller) clearInterval(this.#poller);
    this.#poller = undefined;
    return left;
  }

  /**
   * Leaves `.ray_jobs` listing the jobs `drain()` left, or removes it when none. Before
   * `stopLeftovers()` ran (a `prepare()` that failed first, e.g. on an unreachable dashboard) the
   * file is left as it is: the jobs it lists were never stopped, and the next driver stops them.
   */
  async keepLeftovers(experimentDir: string, left: readonly string[]): Promise<void> {
    // No job of this table was submitted before then (start() needs a prepare() that ended well).
    if (!this.#ownsFile) return;
    if (left.length) {
      this.#log(
        `${left.length} Ray job(s) of this experiment have not ended yet (${left[0]}, ...); ` +
          `they were stopped, and their trials cannot reach the closed driver`,
      );
      await Deno.writeTextFile(
        join(experimentDir, JOBS_FILE),
        left.map((x) => `${x}\n`).join(""),
      ).catch(() => {});
    } else await Deno.remove(join(experimentDir, JOBS_FILE)).catch(() => {});
  }
}
