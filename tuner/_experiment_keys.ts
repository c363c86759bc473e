// Private to the experiment file loader (experiment_file.ts): the keys each mapping may hold.

import { FILE_KEYS } from "./option_table.ts";

/** The top-level keys of an experiment file, and what each holds. */
export const TOP_KEYS = FILE_KEYS;

/** The keys an `executor:` mapping may hold, by executor name. */
export const EXECUTOR_KEYS: Record<string, string[]> = {
  subprocess: ["name", "grace_ms", "v8_flags", "collective_timeout_ms"],
  local: ["name", "grace_ms", "v8_flags", "collective_timeout_ms"],
  slurm: [
    "name",
    "mode",
    "slurm",
    "driver_host",
    "driver_port",
    "heartbeat_ms",
    "poll_ms",
    "max_jobs",
    "deno_dir",
    "grace_ms",
    "v8_flags",
  ],
  ray: [
    "name",
    "address",
    "deno",
    "deno_version",
    "deno_pip_options",
    "shared_storage",
    "checkpoint_max_bytes",
    "probe",
    "pending_timeout_ms",
    "check_placement",
    "collective_timeout_ms",
    "trials_per_job",
    "driver_host",
    "driver_port",
    "heartbeat_ms",
    "poll_ms",
    "max_jobs",
    "deno_dir",
    "grace_ms",
    "v8_flags",
  ],
};
export const SLURM_KEYS = [
  "partition",
  "account",
  "qos",
  "time",
  "constraint",
  "nodelist",
  "extra_args",
];

export const SUB_KEYS: Record<string, string[]> = {
  resources: ["workers", "cpu", "gpu", "memory_mb", "custom"],
  checkpoint: ["num_to_keep", "score_attribute", "score_order"],
  sandbox: ["read", "write", "net", "env", "sys", "ffi", "unstable"],
  reporter: ["parameter_columns", "metric_columns", "max_rows", "interval_ms"],
};
