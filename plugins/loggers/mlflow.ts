/**
 * Logs an experiment to an MLflow tracking server over its REST API: one parent run per
 * experiment and one nested child run per trial, with the trial's config as params, every
 * numeric metric of every report at `step = training_iteration`, tags, final statuses and
 * (optionally) the trial's best or last checkpoint as artifacts.
 *
 * Nothing is sent on the report path: hooks put data in a queue that one background worker
 * delivers in batches. A slow, failing or unreachable server never stalls the experiment:
 * requests are retried with backoff (honouring `Retry-After`), data is kept in memory and
 * spooled to `mlflow.json` in the experiment folder, and a resumed experiment delivers what
 * was left. Resending is safe: metric points keep their timestamps, so MLflow's SQL store
 * drops exact duplicates.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { mlflowLogger } from "./mlflow.ts";
 * // e.g. after `mlflow server --host 127.0.0.1 --port 5000`
 * const logger = mlflowLogger({ trackingUri: "http://127.0.0.1:5000", experiment: "mnist" });
 * assert.equal(logger.name, "mlflow");
 * ```
 *
 * The code lives in `mlflow/` (options, wire types, the delivery engine); this module is its
 * public entry point.
 *
 * @module
 */

export * from "./mlflow/mod.ts";
