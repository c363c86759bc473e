// Private to the Slurm executor (slurm.ts): what it asks of the host it runs on — a command on
// the PATH, setpriv, the Slurm clients and an allocation — and a trial's stderr.

import { join } from "../../core/_path.ts";
import { TuneError } from "../../core/errors.ts";
import { notInstalled } from "./_slurm_commands.ts";
import { fileTail } from "./_shared.ts";

/** The absolute path of `cmd` on `path` (a `PATH` value), or undefined. */
export async function onPath(cmd: string, path: string | undefined): Promise<string | undefined> {
  for (const dir of (path ?? "").split(":")) {
    if (!dir.startsWith("/")) continue;
    try {
      const st = await Deno.stat(join(dir, cmd));
      if (st.isFile) return join(dir, cmd);
    } catch { /* next */ }
  }
  return undefined;
}

/** `setpriv --pdeathsig SIGKILL --` where it works, else nothing. */
export async function pdeathsig(): Promise<string[]> {
  try {
    const o = await new Deno.Command("setpriv", {
      args: ["--pdeathsig", "SIGKILL", "--", "true"],
      stdout: "null",
      stderr: "null",
    }).output();
    return o.success ? ["setpriv", "--pdeathsig", "SIGKILL", "--"] : [];
  } catch {
    return [];
  }
}

/** Checks the Slurm clients exist and, in step mode, that there is an allocation. */
export async function requireSlurm(mode: string, env: Record<string, string>): Promise<void> {
  // Step mode also needs scontrol and scancel: a stopped step is ended through the controller.
  const step = ["srun", "scontrol", "scancel", "squeue"];
  for (const cmd of mode === "step" ? step : ["sbatch", "squeue", "scancel", "scontrol"]) {
    try {
      await new Deno.Command(cmd, {
        args: ["--version"],
        env,
        clearEnv: true,
        stdout: "null",
        stderr: "null",
      })
        .output();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw notInstalled(cmd);
      throw e;
    }
  }
  if (mode === "step" && !env.SLURM_JOB_ID) {
    throw new TuneError(
      `The Slurm executor's step mode runs trials as job steps of the allocation the driver ` +
        `runs in, but there is no allocation here (SLURM_JOB_ID is not set): start the driver ` +
        `inside \`salloc\` or an \`sbatch\` script, or use mode "sbatch" to submit one batch job ` +
        `per trial from a login node`,
    );
  }
}

export async function stderrOf(dir: string, piped: string): Promise<string> {
  return piped || await fileTail(join(dir, "stderr.log"));
}
