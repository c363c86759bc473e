/**
 * The names of the folders inside a trial's record folder, in one place: the driver (runner),
 * the trial's side (session, trial_main) and the store all use these constants, and no
 * component spells another's folder names.
 *
 * ```text
 * <experiment>/<trial_id>/           written by the driver only
 * <experiment>/<trial_id>/files/     WORK_DIR: the one folder the trial may write
 * <experiment>/<trial_id>/files/.staging/   STAGING_DIR: checkpoints being written, not committed
 * ```
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STAGING_DIR, WORK_DIR } from "./layout.ts";
 *
 * assert.equal(`${WORK_DIR}/${STAGING_DIR}`, "files/.staging");
 * ```
 *
 * @module
 */

/** The trial's own folder inside its record folder: where it writes files and checkpoints. */
export const WORK_DIR = "files";

/**
 * Where checkpoints are written before the driver commits them (inside the trial's own folder,
 * or the record folder for an exploit's copy); anything left there was never committed.
 */
export const STAGING_DIR = ".staging";
