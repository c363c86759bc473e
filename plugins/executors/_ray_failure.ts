// Private to the Ray executor (ray.ts): how a trial whose process ended without an outcome
// failed, in words a user can act on.

import type { TrialExit } from "../../core/plugin.ts";
import { parseDenial } from "../../core/sandbox.ts";
import { rayErrorLine, type RayJobInfo } from "./_ray_client.ts";
import { unreachableDriverExit } from "./_shared.ts";

/** Where the trial ran, for {@linkcode failure}'s words. */
export interface FailedAt {
  /** The Ray job that ran it (or, pooled, its launcher's job). */
  readonly jobId: string;
  /** Its node ("" when unknown). */
  readonly node: string;
  /** Whether the trial reached the driver. */
  readonly connected: boolean;
  /** What ended it, when the caller knows better than Ray's record (a pooled trial's exit). */
  readonly verdict?: string;
}

/**
 * How a trial whose process ended without an outcome failed: from Ray's record of its job (or,
 * pooled, the exit of its process in a launcher's job) and its output's last lines (`ctx`: the
 * executor's context, for its storage). Fatal (the
 * experiment stops) when no trial can run: the driver unreachable, Deno missing on a node, a
 * broken `runtime_env`, an experiment folder the node does not see.
 */
export function failure(
  ctx: { readonly settings: { readonly shared: boolean }; readonly experimentDir: string },
  end: RayJobInfo | undefined,
  tail: string,
  at: FailedAt,
): TrialExit {
  const { jobId, node } = at;
  const lines = tail.trim().split("\n").filter((l) => !/^\d{4}-\d\d-\d\d .*(INFO|DEBUG)/.test(l))
    .slice(-8).join("\n");
  const unreachable = unreachableDriverExit(tail, "Ray node");
  if (unreachable) return unreachable;
  if (/tunebox: deno is not on the PATH|is not an executable on Ray node/.test(tail)) {
    return { kind: "error", message: tail.trim().split("\n").pop()!, fatal: true };
  }
  if (
    end?.error_type === "RUNTIME_ENV_SETUP_FAILED" || /runtime.env/i.test(end?.error_type ?? "")
  ) {
    return {
      kind: "error",
      message: `Ray could not set up the job's runtime_env: ${rayErrorLine(end?.message ?? "")}`,
      fatal: true,
    };
  }
  if (ctx.settings.shared && !at.connected && /Module not found|No such file|can't cd/.test(tail)) {
    return {
      kind: "error",
      message:
        `the experiment folder ${ctx.experimentDir} is not visible on Ray node ${
          node || "?"
        }: storage must be shared by every node (or set sharedStorage: false); last lines:\n` +
        lines,
      fatal: true,
    };
  }
  const denial = parseDenial(lines);
  const verdict = at.verdict ??
    (!end
      ? `Ray lost job ${jobId}`
      : `Ray job ${jobId} ended ${end.status}${
        end.driver_exit_code != null ? ` (exit code ${end.driver_exit_code})` : ""
      }${node ? ` on node ${node}` : ""}`);
  return {
    kind: "error",
    message: verdict + (lines ? `; last lines of the trial's output:\n${lines}` : ""),
    ...(denial ? { violation: denial } : {}),
  };
}
