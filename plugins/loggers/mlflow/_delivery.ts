/**
 * The delivery engine: one background worker that sends queued data in batches, retries with
 * backoff, and spools what is left to `mlflow.json`.
 *
 * @module
 */

import type {
  CheckpointEvent,
  ExperimentEnd,
  ExperimentStart,
  TrialEnd,
  TrialReport,
  TrialStart,
} from "../../../core/plugin.ts";
import type { JsonValue, Mode, TrialSnapshot } from "../../../core/trial.ts";
import { errorMessage } from "../../../core/errors.ts";
import { checkUri, type Resolved } from "./_options.ts";
import {
  base64,
  basename,
  EnvReader,
  flatten,
  join,
  listFiles,
  truncate,
  utf8Length,
} from "./_util.ts";
import {
  API,
  ARTIFACTS_API,
  HttpError,
  MAX_BODY_BYTES,
  MAX_ENTITIES,
  MAX_KEY,
  MAX_METRICS,
  MAX_PARAMS,
  MAX_TAG_VALUE,
  MAX_TAGS,
  NetworkError,
  RETRIABLE,
  retriable,
  type RunState,
  type RunStatus,
  type SavedRun,
  type SavedState,
  SKIPPED_METRICS,
  SPOOL_INTERVAL_MS,
  STATE_FILE,
} from "./_wire.ts";
import type { MlflowDelivery } from "./mod.ts";

interface Step {
  readonly run?: RunState;
  readonly go: () => Promise<void>;
}

export class Delivery {
  readonly o: Resolved;
  private base = "";
  private auth?: string;
  private experimentName = "";
  private experimentId?: string;
  private dir = "";
  private metric = "";
  private mode: Mode = "min";
  private user?: string;
  private info: ExperimentStart | undefined;
  private parent?: RunState;
  private trials = new Map<string, RunState>();
  private dirty = new Set<RunState>();
  private keys = new Map<string, string>();
  private warned = new Set<string>();
  private working = false;
  private work: Promise<void> = Promise.resolve();
  private idle: (() => void)[] = [];
  private wakers = new Set<() => void>();
  private stop = new AbortController();
  private closed = true;
  private fatal?: string;
  private failures = 0;
  private lastError = "";
  private lastSpool = 0;
  private spoolMs = 0;
  private spooled = false;
  private artifactsOff = false;
  private delivered = 0;

  constructor(o: Resolved) {
    this.o = o;
  }

  /** Runs a hook body; a bug or bad input becomes a warning, never an exception. */
  guard(hook: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.warnOnce(`hook:${hook}`, `${hook} failed and was skipped: ${errorMessage(e)}`);
    }
  }

  warnOnce(kind: string, message: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.say(message);
  }

  private say(message: string): void {
    try {
      this.o.warn(`[mlflow] ${message}`);
    } catch { /* a broken warn function must not break the logger */ }
  }

  // -- hooks ----------------------------------------------------------------------------------

  async start(e: ExperimentStart): Promise<void> {
    try {
      await this.startInner(e);
    } catch (err) {
      this.warnOnce("hook:onExperimentStart", `onExperimentStart failed: ${errorMessage(err)}`);
    }
  }

  private async startInner(e: ExperimentStart): Promise<void> {
    if (!this.closed) await this.end({ trials: [], interrupted: true });
    this.reset();
    this.info = e;
    this.dir = e.dir;
    this.metric = e.metric;
    this.mode = e.mode;
    const env = new EnvReader();
    let uri = this.o.trackingUri ?? env.get("MLFLOW_TRACKING_URI");
    if (uri === undefined) {
      uri = "http://127.0.0.1:5000";
      if (env.denied.length) {
        this.warnOnce(
          "env",
          `could not read MLFLOW_TRACKING_URI (no --allow-env permission for it); using ` +
            `${uri}. Pass the trackingUri option to choose the server.`,
        );
      }
    }
    try {
      checkUri(uri, "MLFLOW_TRACKING_URI");
    } catch (err) {
      this.fatal = errorMessage(err);
      this.say(`logging is off: ${this.fatal}`);
    }
    this.base = uri.replace(/\/+$/, "");
    this.experimentName = this.o.experiment ?? env.get("MLFLOW_EXPERIMENT_NAME") ?? e.name;
    const username = this.o.username ?? env.get("MLFLOW_TRACKING_USERNAME");
    const password = this.o.password ?? env.get("MLFLOW_TRACKING_PASSWORD");
    const token = this.o.token ?? env.get("MLFLOW_TRACKING_TOKEN");
    if (username !== undefined && password !== undefined) {
      this.auth = `Basic ${base64(`${username}:${password}`)}`;
    } else if (token !== undefined) {
      this.auth = `Bearer ${token}`;
    }
    this.user = env.get("USER") ?? env.get("USERNAME");
    this.closed = false;

    if (e.resumed) await this.load();
    const parent = this.parent ?? this.newRun(e.name, true);
    this.parent = parent;
    if (parent.ended || parent.runId) this.setStatus(parent, "RUNNING");
    this.addParams(parent, {
      metric: e.metric,
      mode: e.mode,
      searcher: e.searcher,
      scheduler: e.scheduler,
    });
    this.addTags(parent, {
      ...this.commonTags(),
      "tunebox.metric": e.metric,
      "tunebox.mode": e.mode,
      "tunebox.dir": e.dir,
    });
    this.mark(parent);
    this.kick();
  }

  trialStart(e: TrialStart): void {
    if (this.closed) return;
    const t = e.trial;
    let run = this.trials.get(t.id);
    if (!run) {
      run = this.trialRun(t);
    } else {
      if (run.ended || run.status) this.setStatus(run, "RUNNING");
      const changed = this.addParams(run, t.config);
      if (changed.length) {
        this.warnOnce(
          "config-changed",
          `the config of trial ${t.id} changed (${changed.join(", ")}); MLflow params cannot ` +
            `change, so the new config is kept in the run's "tunebox.config" tag`,
        );
        this.addTags(run, { "tunebox.config": JSON.stringify(t.config) });
      }
    }
    this.mark(run);
    this.kick();
  }

  report(e: TrialReport): void {
    if (this.closed) return;
    const run = this.trials.get(e.trial.id) ?? this.trialRun(e.trial);
    const r = e.result;
    const step = Number.isSafeInteger(r.training_iteration)
      ? r.training_iteration
      : e.trial.iteration;
    const timestamp = Date.now();
    const score = this.o.checkpoint === "best" ? r[this.metric] : undefined;
    if (typeof score === "number" && !Number.isNaN(score)) run.scores.set(step, score);
    for (const k in r) {
      if (SKIPPED_METRICS.has(k)) continue;
      this.addMetric(run, k, r[k], timestamp, step);
    }
    this.mark(run);
    this.kick();
  }

  checkpoint(e: CheckpointEvent): void {
    if (this.closed || this.o.checkpoint === "none") return;
    const run = this.trials.get(e.trial.id) ?? this.trialRun(e.trial);
    run.checkpoints.set(e.iteration, e.path);
  }

  trialEnd(e: TrialEnd): void {
    if (this.closed || e.outcome === "paused") return;
    const run = this.trials.get(e.trial.id) ?? this.trialRun(e.trial);
    const status: RunStatus = e.outcome === "completed"
      ? "FINISHED"
      : e.outcome === "stopped"
      ? "KILLED"
      : "FAILED";
    if (e.reason) {
      const tag = e.outcome === "error" ? "tunebox.error" : "tunebox.stop_reason";
      this.addTags(run, { [tag]: e.reason });
    }
    this.setStatus(run, status);
    const ckpt = this.chooseCheckpoint(run, e.trial);
    if (ckpt) {
      const dest = basename(ckpt);
      run.artifacts.push({ dir: ckpt, dest });
      this.addTags(run, { "tunebox.checkpoint": dest });
    }
    this.mark(run);
    this.kick();
  }

  async end(e: ExperimentEnd): Promise<void> {
    try {
      await this.endInner(e);
    } catch (err) {
      this.warnOnce("hook:onExperimentEnd", `onExperimentEnd failed: ${errorMessage(err)}`);
    }
  }

  private async endInner(e: ExperimentEnd): Promise<void> {
    if (this.closed) return;
    try {
      for (const t of e.trials) {
        const run = this.trials.get(t.id);
        if (!run || run.ended) continue;
        this.setStatus(
          run,
          t.status === "terminated" ? "FINISHED" : t.status === "error" ? "FAILED" : "KILLED",
        );
        this.mark(run);
      }
      if (this.parent) {
        this.setStatus(this.parent, e.interrupted ? "KILLED" : "FINISHED");
        this.mark(this.parent);
      }
      this.wake(); // a worker waiting out a backoff tries again now
      await this.drain(this.o.drainTimeoutMs);
    } finally {
      this.closed = true;
      this.stop.abort();
      this.wake();
      await this.work;
      const left = this.pendingCount();
      await this.save(true);
      if (left) {
        const why = this.fatal ?? (this.lastError || "the server did not answer in time");
        this.say(
          `could not deliver ${left} item(s) to ${this.base} within ` +
            `${this.o.drainTimeoutMs} ms (${why}). They are kept in ` +
            `${join(this.dir, STATE_FILE)} and are sent when the experiment is resumed.`,
        );
      }
    }
  }

  async flush(timeoutMs: number): Promise<MlflowDelivery> {
    if (!this.closed) {
      this.wake();
      await this.drain(timeoutMs);
    }
    return this.delivery();
  }

  private delivery(): MlflowDelivery {
    return {
      delivered: this.delivered,
      pending: this.pendingCount(),
      ...(this.dir ? { stateFile: join(this.dir, STATE_FILE) } : {}),
      ...(this.fatal ? { problem: this.fatal } : {}),
    };
  }

  // -- state ----------------------------------------------------------------------------------

  private reset(): void {
    this.parent = undefined;
    this.trials = new Map();
    this.dirty = new Set();
    this.experimentId = undefined;
    this.fatal = undefined;
    this.failures = 0;
    this.lastError = "";
    this.spooled = false;
    this.artifactsOff = false;
    this.auth = undefined;
    this.stop = new AbortController();
  }

  private newRun(name: string, parent: boolean, trialId?: string): RunState {
    return {
      name,
      uuid: crypto.randomUUID().replaceAll("-", ""),
      parent,
      trialId,
      startTime: Date.now(),
      createTried: false,
      params: new Map(),
      sentParams: new Map(),
      tags: new Map(),
      metrics: [],
      ended: false,
      artifacts: [],
      chunkLimit: Infinity,
      checkpoints: new Map(),
      scores: new Map(),
    };
  }

  private trialRun(t: TrialSnapshot): RunState {
    const run = this.newRun(t.id, false, t.id);
    this.trials.set(t.id, run);
    this.addParams(run, t.config);
    this.addTags(run, {
      ...this.commonTags(),
      "tunebox.trial_id": t.id,
      "trial_name": t.id,
    });
    return run;
  }

  private commonTags(): Record<string, string> {
    const i = this.info!;
    return {
      "mlflow.source.name": "tunebox",
      "mlflow.source.type": "LOCAL",
      ...(this.user ? { "mlflow.user": this.user } : {}),
      "tunebox.experiment": i.name,
      "tunebox.scheduler": i.scheduler,
      "tunebox.searcher": i.searcher,
      ...this.o.tags,
    };
  }

  private mark(run: RunState): void {
    this.dirty.add(run);
  }

  private setStatus(run: RunState, status: RunStatus): void {
    run.status = status === "RUNNING" ? { status } : { status, endTime: Date.now() };
    run.ended = status !== "RUNNING";
  }

  /** Adds the flattened config as params; returns the keys whose value changed. */
  private addParams(run: RunState, config: { readonly [k: string]: JsonValue }): string[] {
    const flat = new Map<string, string>();
    flatten(config, "", flat);
    const changed: string[] = [];
    for (const [raw, value] of flat) {
      const key = this.key(raw);
      let v = value;
      if (v.length > this.o.maxParamValueLength) {
        const t = truncate(v, this.o.maxParamValueLength);
        if (t !== v) {
          this.warnOnce(
            "param-truncated",
            `param "${key}" of run "${run.name}" has ${[...v].length} characters; MLflow keeps ` +
              `at most ${this.o.maxParamValueLength} (maxParamValueLength), so it was truncated`,
          );
          v = t;
        }
      }
      const old = run.sentParams.get(key) ?? run.params.get(key);
      if (old === undefined) run.params.set(key, v);
      else if (old !== v) changed.push(key);
    }
    return changed;
  }

  private addTags(run: RunState, tags: Record<string, string>): void {
    for (const [raw, value] of Object.entries(tags)) {
      let v = value;
      if (v.length > MAX_TAG_VALUE) {
        const t = truncate(v, MAX_TAG_VALUE);
        if (t !== v) {
          this.warnOnce(
            "tag-truncated",
            `tag "${raw}" of run "${run.name}" has ${[...v].length} characters; it was ` +
              `truncated to ${MAX_TAG_VALUE}`,
          );
          v = t;
        }
      }
      run.tags.set(this.key(raw), v);
    }
  }

  private addMetric(run: RunState, raw: string, value: JsonValue, timestamp: number, step: number) {
    if (typeof value === "number") {
      const v = Number.isFinite(value)
        ? value
        : Number.isNaN(value)
        ? "NaN"
        : value > 0
        ? "Infinity"
        : "-Infinity";
      run.metrics.push({ key: this.key(raw), value: v, timestamp, step });
    } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const k in value) {
        this.addMetric(
          run,
          `${raw}/${k}`,
          (value as Record<string, JsonValue>)[k],
          timestamp,
          step,
        );
      }
    }
  }

  /** A key MLflow accepts: allowed characters only, a normalised relative path, ≤ 250 chars. */
  private key(raw: string): string {
    const hit = this.keys.get(raw);
    if (hit !== undefined) return hit;
    let k = raw.replace(/[^\p{L}\p{N}_/.\- ]/gu, "_")
      .split("/").filter((s) => s !== "").map((s) => (s === "." || s === ".." ? "_" : s))
      .join("/").replace(/^\.\./, "__");
    if (k.length > MAX_KEY) k = truncate(k, MAX_KEY).replace(/\/+$/, "");
    if (k === "") k = "_";
    if (k !== raw) {
      this.warnOnce(
        "key-renamed",
        `key "${raw}" was sent as "${k}": MLflow keys are at most ${MAX_KEY} characters of ` +
          `letters, digits, "_", "-", ".", " " and "/" forming a relative path`,
      );
    }
    if (this.keys.size < 100_000) this.keys.set(raw, k);
    return k;
  }

  private chooseCheckpoint(run: RunState, t: TrialSnapshot): string | undefined {
    if (this.o.checkpoint === "none") return undefined;
    let last: string | undefined = t.checkpoint;
    if (!last && run.checkpoints.size) {
      last = [...run.checkpoints.entries()].sort((a, b) => a[0] - b[0]).at(-1)![1];
    }
    if (this.o.checkpoint === "last") return last;
    let best: string | undefined, bestScore = NaN;
    for (const [iteration, path] of run.checkpoints) {
      const s = run.scores.get(iteration);
      if (s === undefined) continue;
      if (best === undefined || (this.mode === "min" ? s < bestScore : s > bestScore)) {
        best = path;
        bestScore = s;
      }
    }
    return best ?? last;
  }

  private pendingCount(): number {
    let n = 0;
    for (const run of [this.parent, ...this.trials.values()]) {
      if (!run) continue;
      n += run.params.size + run.tags.size + run.metrics.length + (run.runId ? 0 : 1) +
        (run.status ? 1 : 0);
      for (const a of run.artifacts) n += a.files?.length ?? 1;
    }
    return n;
  }

  // -- the worker -----------------------------------------------------------------------------

  private kick(): void {
    if (this.working || this.closed || this.fatal) return;
    this.working = true;
    // Start after the hook returns: the report path only queues, and a burst becomes one batch.
    this.work = Promise.resolve().then(() => this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (!this.closed) {
        const step = this.nextStep();
        if (!step) break;
        try {
          await step.go();
          if (this.failures) {
            this.failures = 0;
            this.say(`the tracking server at ${this.base} answers again; delivering what was kept`);
            this.warned.delete("unreachable");
            this.warned.delete("server-error");
          }
        } catch (e) {
          if (this.stop.signal.aborted) break;
          this.failed(e, step.run);
          if (!retriable(e)) continue;
          this.failures++;
          // Spool at most every 5 s, and less often when the spool is big (20x its write time).
          const every = Math.max(SPOOL_INTERVAL_MS, 20 * this.spoolMs);
          if (Date.now() - this.lastSpool >= every) await this.save(true);
          await this.sleep(this.backoff(e));
        }
      }
      if (this.spooled && this.pendingCount() === 0) await this.save();
    } catch (e) {
      this.warnOnce("worker", `the delivery worker stopped: ${errorMessage(e)}`);
    } finally {
      this.working = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private failed(e: unknown, run: RunState | undefined): void {
    const msg = errorMessage(e);
    this.lastError = msg;
    if (e instanceof NetworkError) {
      this.warnOnce(
        "unreachable",
        `cannot reach the tracking server at ${this.base} (${msg}); the experiment goes on, ` +
          `data is kept (spooled to ${join(this.dir, STATE_FILE)}) and sent when it answers. ` +
          `Check trackingUri / MLFLOW_TRACKING_URI if the address is wrong.`,
      );
    } else if (e instanceof HttpError && RETRIABLE.has(e.status)) {
      this.warnOnce(
        e.status === 429 ? "rate-limited" : "server-error",
        `${msg}; retrying with backoff, data is kept`,
      );
    } else if (e instanceof HttpError && (e.status === 401 || e.status === 403)) {
      this.fatal =
        `${msg.replace(/\.+$/, "")}. The tracking server rejected the credentials: set ` +
        `MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN ` +
        `(or the username/password/token options)`;
      this.warnOnce("auth", `authentication failed: ${this.fatal}`);
    } else if (run) {
      run.broken = msg;
      this.warnOnce("rejected", `gave up on run "${run.name}": ${msg}`);
    } else {
      this.fatal = msg;
      this.warnOnce("rejected", `gave up: ${msg}`);
    }
  }

  private backoff(e: unknown): number {
    const exp = Math.min(
      this.o.maxRetryDelayMs,
      this.o.retryDelayMs * 2 ** Math.min(this.failures - 1, 30),
    );
    const jittered = exp * (0.5 + Math.random() * 0.5);
    const after = e instanceof HttpError ? e.retryAfterMs : undefined;
    return Math.min(Math.max(jittered, after ?? 0), 600_000);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }

  private async drain(timeoutMs: number): Promise<void> {
    this.kick();
    if (!this.working) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.idle.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  private nextStep(): Step | undefined {
    if (this.fatal) return undefined;
    if (this.experimentId === undefined) return { go: () => this.resolveExperiment() };
    for (const run of this.dirty) {
      if (run.broken) {
        this.dirty.delete(run);
        continue;
      }
      let go: (() => Promise<void>) | undefined;
      if (!run.runId) {
        const p = this.parent;
        if (!run.parent && p && !p.runId && !p.broken) continue; // parent first
        go = () => this.createRun(run);
      } else if (run.params.size || run.tags.size || run.metrics.length) {
        go = () => this.logBatch(run);
      } else if (run.status) {
        go = () => this.updateRun(run);
      } else if (run.artifacts.length && !this.artifactsOff) {
        go = () => this.upload(run);
      }
      this.dirty.delete(run);
      if (!go) continue;
      this.dirty.add(run); // to the back: runs take turns
      return { run, go };
    }
    return undefined;
  }

  private async call(
    method: "GET" | "POST" | "PUT",
    path: string,
    body?: unknown,
    bytes?: Uint8Array,
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = {};
    if (this.auth) headers.authorization = this.auth;
    let payload: string | Uint8Array | undefined;
    if (bytes) {
      payload = bytes;
      headers["content-type"] = "application/octet-stream";
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["content-type"] = "application/json";
    }
    const what = `${method} ${path.split("?")[0]}`;
    const ctl = new AbortController();
    const abort = () => ctl.abort();
    this.stop.signal.addEventListener("abort", abort);
    const timer = setTimeout(abort, this.o.requestTimeoutMs);
    let res: Response, text: string;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: payload as BodyInit | undefined,
        signal: ctl.signal,
      });
      text = await res.text();
    } catch (e) {
      throw new NetworkError(`${what} failed: ${errorMessage(e)}`, { cause: e });
    } finally {
      clearTimeout(timer);
      this.stop.signal.removeEventListener("abort", abort);
    }
    if (!res.ok) throw new HttpError(what, res.status, text, res.headers.get("retry-after"));
    if (!text) return {};
    try {
      const j = JSON.parse(text);
      return typeof j === "object" && j !== null ? j : {};
    } catch {
      return {};
    }
  }

  private async resolveExperiment(): Promise<void> {
    const name = this.experimentName;
    try {
      const r = await this.call(
        "GET",
        `${API}/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`,
      );
      const exp = r.experiment as Record<string, unknown> | undefined;
      if (exp?.lifecycle_stage === "deleted") {
        this.fatal = `the MLflow experiment "${name}" is deleted; restore it in MLflow or choose ` +
          `another name (option "experiment" / MLFLOW_EXPERIMENT_NAME)`;
        this.warnOnce("experiment-deleted", this.fatal);
        return;
      }
      this.experimentId = String(exp?.experiment_id);
    } catch (e) {
      if (!(e instanceof HttpError && e.code === "RESOURCE_DOES_NOT_EXIST")) throw e;
      try {
        const r = await this.call("POST", `${API}/experiments/create`, { name });
        this.experimentId = String(r.experiment_id);
        this.delivered++;
      } catch (e2) {
        // Another process created it first: the next step looks it up again.
        if (!(e2 instanceof HttpError && e2.code === "RESOURCE_ALREADY_EXISTS")) throw e2;
      }
    }
    if (this.experimentId !== undefined) await this.save();
  }

  private async createRun(run: RunState): Promise<void> {
    if (run.createTried) {
      // An earlier create may have reached the server with its answer lost: look before
      // creating a second run.
      const r = await this.call("POST", `${API}/runs/search`, {
        experiment_ids: [this.experimentId],
        filter: `tags.\`tunebox.run_uuid\` = '${run.uuid}'`,
        run_view_type: "ACTIVE_ONLY",
        max_results: 1,
      });
      const found = (r.runs as { info: Record<string, unknown> }[] | undefined)?.[0]?.info;
      if (found) {
        run.runId = String(found.run_id);
        run.artifactUri = found.artifact_uri as string | undefined;
        await this.save();
        return;
      }
    }
    const tags = [{ key: "tunebox.run_uuid", value: run.uuid }];
    const parentId = run.parent ? undefined : this.parent?.runId;
    if (parentId) tags.push({ key: "mlflow.parentRunId", value: parentId });
    const taken = [...run.tags].slice(0, MAX_TAGS - tags.length);
    for (const [key, value] of taken) tags.push({ key, value });
    run.createTried = true;
    const r = await this.call("POST", `${API}/runs/create`, {
      experiment_id: this.experimentId,
      run_name: run.name,
      start_time: run.startTime,
      tags,
    });
    const info = (r.run as { info: Record<string, unknown> }).info;
    run.runId = String(info.run_id);
    run.artifactUri = info.artifact_uri as string | undefined;
    for (const [k, v] of taken) if (run.tags.get(k) === v) run.tags.delete(k);
    this.delivered += 1 + taken.length;
    await this.save();
  }

  private async logBatch(run: RunState): Promise<void> {
    const limit = run.chunkLimit;
    let bytes = 200, count = 0;
    const params: { key: string; value: string }[] = [];
    for (const [key, value] of run.params) {
      const b = utf8Length(key) + utf8Length(value) * 2 + 30;
      if (params.length >= MAX_PARAMS || count >= limit || (count && bytes + b > MAX_BODY_BYTES)) {
        break;
      }
      params.push({ key, value });
      bytes += b;
      count++;
    }
    const tags: { key: string; value: string }[] = [];
    for (const [key, value] of run.tags) {
      const b = utf8Length(key) + utf8Length(value) * 2 + 30;
      if (tags.length >= MAX_TAGS || count >= limit || (count && bytes + b > MAX_BODY_BYTES)) break;
      tags.push({ key, value });
      bytes += b;
      count++;
    }
    let n = 0;
    for (const m of run.metrics) {
      const b = m.key.length * 3 + 90;
      if (
        n >= MAX_METRICS || count >= Math.min(limit, MAX_ENTITIES) || bytes + b > MAX_BODY_BYTES
      ) {
        break;
      }
      bytes += b;
      count++;
      n++;
    }
    const metrics = run.metrics.slice(0, n);
    try {
      await this.call("POST", `${API}/runs/log-batch`, {
        run_id: run.runId,
        params,
        tags,
        metrics,
      });
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      if (e.code === "RESOURCE_DOES_NOT_EXIST") return this.lostRun(run, e);
      if (e.status !== 400 || /must be in the 'active' state/.test(e.message)) throw e;
      if (count > 1) {
        run.chunkLimit = Math.ceil(count / 2); // find the one item the server refuses
        return;
      }
      const [kind, key] = params.length
        ? ["param", params[0].key]
        : tags.length
        ? ["tag", tags[0].key]
        : ["metric", metrics[0].key];
      if (kind === "param") run.params.delete(key);
      else if (kind === "tag") run.tags.delete(key);
      else run.metrics.splice(0, 1);
      run.chunkLimit = Infinity;
      this.warnOnce(
        `rejected-${kind}`,
        `MLflow refused ${kind} "${key}" of run "${run.name}" ` +
          `and it was dropped: ${e.message}`,
      );
      return;
    }
    for (const p of params) {
      if (run.params.get(p.key) === p.value) run.params.delete(p.key);
      run.sentParams.set(p.key, p.value);
    }
    for (const t of tags) if (run.tags.get(t.key) === t.value) run.tags.delete(t.key);
    run.metrics.splice(0, n);
    this.delivered += count;
  }

  private async updateRun(run: RunState): Promise<void> {
    const s = run.status!;
    try {
      await this.call("POST", `${API}/runs/update`, {
        run_id: run.runId,
        status: s.status,
        ...(s.endTime !== undefined ? { end_time: s.endTime } : {}),
      });
    } catch (e) {
      if (e instanceof HttpError && e.code === "RESOURCE_DOES_NOT_EXIST") {
        return this.lostRun(run, e);
      }
      throw e;
    }
    if (run.status === s) run.status = undefined;
    this.delivered++;
  }

  /** The server does not know the run (deleted, or another server): create it again. */
  private async lostRun(run: RunState, e: HttpError): Promise<void> {
    this.warnOnce(
      "run-missing",
      `run "${run.name}" (${run.runId}) is gone from the server (${e.message}); creating it again`,
    );
    run.runId = undefined;
    run.artifactUri = undefined;
    run.createTried = false;
    for (const [k, v] of run.sentParams) if (!run.params.has(k)) run.params.set(k, v);
    run.sentParams.clear();
    await this.save();
  }

  private async upload(run: RunState): Promise<void> {
    const job = run.artifacts[0];
    if (!run.artifactUri) {
      const r = await this.call("GET", `${API}/runs/get?run_id=${run.runId}`);
      run.artifactUri = String((r.run as { info: Record<string, unknown> }).info.artifact_uri);
    }
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(run.artifactUri);
    if (!m) {
      this.warnOnce(
        "artifacts-unsupported",
        `run "${run.name}" stores artifacts at ${run.artifactUri}, which the tracking server ` +
          `does not proxy; checkpoints are not uploaded (start the server with ` +
          `--serve-artifacts and no --default-artifact-root)`,
      );
      run.artifacts = [];
      return;
    }
    if (!job.files) {
      try {
        job.files = await listFiles(job.dir);
      } catch (e) {
        this.warnOnce("artifact-missing", `cannot read checkpoint ${job.dir}: ${errorMessage(e)}`);
        run.artifacts.shift();
        return;
      }
    }
    const rel = job.files[0];
    if (rel === undefined) {
      run.artifacts.shift();
      return;
    }
    let data: Uint8Array;
    try {
      data = await Deno.readFile(join(job.dir, rel));
    } catch (e) {
      this.warnOnce("artifact-missing", `cannot read ${join(job.dir, rel)}: ${errorMessage(e)}`);
      job.files.shift();
      return;
    }
    const path = [...m[1].split("/"), job.dest, ...rel.split("/")].filter((s) => s)
      .map(encodeURIComponent).join("/");
    try {
      await this.call("PUT", `${ARTIFACTS_API}/${path}`, undefined, data);
    } catch (e) {
      if (e instanceof HttpError && e.status === 503 && /serve-artifacts|disabled/i.test(e.body)) {
        this.artifactsOff = true;
        this.warnOnce(
          "artifacts-disabled",
          `the tracking server does not proxy artifacts (--no-serve-artifacts); checkpoints are ` +
            `not uploaded`,
        );
        return;
      }
      throw e;
    }
    job.files.shift();
    this.delivered++;
  }

  // -- the state file -------------------------------------------------------------------------

  /**
   * Writes run ids, and the undelivered data when `spool` is set or the file already holds
   * some (so it never goes stale); run-id updates alone stay small.
   */
  private async save(spool = false): Promise<void> {
    if (!this.dir) return;
    const pending = spool || this.spooled ? this.pendingCount() : 0;
    const t0 = Date.now();
    const one = (run: RunState) => saveRun(run, pending > 0);
    const state: SavedState = {
      version: 1,
      trackingUri: this.base,
      experiment: this.experimentName,
      ...(this.experimentId !== undefined ? { experimentId: this.experimentId } : {}),
      ...(this.parent ? { parent: one(this.parent) } : {}),
      trials: [...this.trials.values()].map(one),
    };
    const file = join(this.dir, STATE_FILE);
    try {
      const tmp = `${file}.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify(state));
      await Deno.rename(tmp, file);
      this.spooled = pending > 0;
      if (spool) [this.lastSpool, this.spoolMs] = [Date.now(), Date.now() - t0];
    } catch (e) {
      this.warnOnce(
        "state-file",
        `cannot write ${file} (run ids for resume, undelivered data): ` +
          `${errorMessage(e)}`,
      );
    }
  }

  private async load(): Promise<void> {
    const file = join(this.dir, STATE_FILE);
    let state: SavedState;
    try {
      state = JSON.parse(await Deno.readTextFile(file));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        this.warnOnce(
          "state-file",
          `cannot read ${file}; new MLflow runs are created: ` +
            `${errorMessage(e)}`,
        );
      }
      return;
    }
    if (state?.version !== 1 || !Array.isArray(state.trials)) {
      this.warnOnce("state-file", `${file} has an unknown format; new MLflow runs are created`);
      return;
    }
    const same = state.trackingUri === this.base && state.experiment === this.experimentName;
    if (!same) {
      this.warnOnce(
        "state-file",
        `${file} was written for ${state.trackingUri} experiment "${state.experiment}"; new ` +
          `runs are created on ${this.base} experiment "${this.experimentName}" and only the ` +
          `data that was never delivered is sent there`,
      );
    } else {
      this.experimentId = state.experimentId;
    }
    const restore = (s: SavedRun, parent: boolean): RunState => {
      const run = this.newRun(s.name, parent, s.trialId);
      Object.assign(run, { uuid: s.uuid, startTime: s.startTime, ended: s.ended });
      if (same && s.runId) {
        run.runId = s.runId;
        run.artifactUri = s.artifactUri;
        run.sentParams = new Map(s.sentParams);
      } else {
        run.params = new Map(s.sentParams);
      }
      run.createTried = same; // it may exist without its id having been saved
      const p = s.pending;
      if (p) {
        for (const [k, v] of p.params) run.params.set(k, v);
        for (const [k, v] of p.tags) run.tags.set(k, v);
        run.metrics = p.metrics.map(([key, value, timestamp, step]) => ({
          key,
          value,
          timestamp,
          step,
        }));
        run.status = p.status;
        run.artifacts = p.artifacts.map((a) => ({ ...a }));
      }
      this.mark(run);
      return run;
    };
    if (state.parent) this.parent = restore(state.parent, true);
    for (const t of state.trials) {
      if (t.trialId) this.trials.set(t.trialId, restore(t, false));
    }
  }
}

function saveRun(run: RunState, withPending: boolean): SavedRun {
  const pending = withPending && (run.params.size || run.tags.size || run.metrics.length ||
    run.status || run.artifacts.length);
  return {
    name: run.name,
    uuid: run.uuid,
    ...(run.trialId ? { trialId: run.trialId } : {}),
    ...(run.runId ? { runId: run.runId } : {}),
    ...(run.artifactUri ? { artifactUri: run.artifactUri } : {}),
    startTime: run.startTime,
    ended: run.ended,
    sentParams: [...run.sentParams],
    ...(pending
      ? {
        pending: {
          params: [...run.params],
          tags: [...run.tags],
          metrics: run.metrics.map((m) => [m.key, m.value, m.timestamp, m.step]),
          ...(run.status ? { status: run.status } : {}),
          artifacts: run.artifacts.map((a) => ({ ...a })),
        },
      }
      : {}),
  };
}
