// Private to the subprocess executor (subprocess.ts): what it asks of the host machine: ring
// addresses for a trial's workers, GPU splits, process groups and the util-linux tools a trial
// starts through, Deno's own folders, and origin data left under DENO_DIR.

import { join } from "../../core/_path.ts";
import { TuneError } from "../../core/errors.ts";

export function hostPort(a: { hostname: string; port: number }): string {
  return `${a.hostname}:${a.port}`;
}

let ringLoopback: boolean | undefined;

/**
 * Addresses for the workers of one trial. Where the whole of 127.0.0.0/8 is loopback (Linux),
 * each worker gets an address of its own in 127.128.0.0/9 (the same /24 for one trial) and a
 * port free on it, so a worker may be granted its neighbour's address and nothing else. Else
 * (macOS) every worker listens on 127.0.0.1 at a port found free.
 */
export function ringAddresses(workers: number): { hostname: string; port: number }[] {
  if (workers > 254) {
    throw new TuneError(`resources.workers is ${workers}; a trial runs at most 254 local workers`);
  }
  const base = `127.${128 + Math.floor(Math.random() * 128)}.${Math.floor(Math.random() * 256)}`;
  const out: { hostname: string; port: number }[] = [];
  for (let r = 0; r < workers; r++) {
    let hostname = ringLoopback === false ? "127.0.0.1" : `${base}.${r + 1}`;
    let l: Deno.Listener;
    try {
      l = Deno.listen({ hostname, port: 0 });
      ringLoopback ??= true;
    } catch (e) {
      if (hostname === "127.0.0.1") throw e;
      ringLoopback = false;
      hostname = "127.0.0.1";
      l = Deno.listen({ hostname, port: 0 });
    }
    out.push({ hostname, port: (l.addr as Deno.NetAddr).port });
    l.close();
  }
  return out;
}

/**
 * Each worker's `CUDA_VISIBLE_DEVICES` when the trial holds whole devices for each worker
 * (`gpu: 1` per worker: worker r gets the r-th device); undefined when the workers share what the
 * trial holds (fractional GPUs) or it holds none.
 */
export function splitDevices(
  visible: string | undefined,
  gpuPerWorker: number,
  workers: number,
): string[] | undefined {
  if (!visible || !(gpuPerWorker >= 1) || !Number.isInteger(gpuPerWorker)) return undefined;
  const list = visible.split(",");
  if (list.length !== gpuPerWorker * workers) return undefined;
  return Array.from(
    { length: workers },
    (_, r) => list.slice(r * gpuPerWorker, (r + 1) * gpuPerWorker).join(","),
  );
}

export function killGroup(
  pid: number,
  signal: Deno.Signal,
  options: { readonly groupOnly?: boolean } = {},
): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    if (options.groupOnly) return;
    // The group is gone, or not made yet (the child has not run setsid): the process itself.
    try {
      Deno.kill(pid, signal);
    } catch { /* gone */ }
  }
}

/** Removes what Deno stored for an origin (`localStorage`, Cache API) under DENO_DIR. */
export async function removeOriginData(denoDir: string, origin: string): Promise<void> {
  // Most trials store nothing: two folder listings first, instead of a digest and two removals
  // that fail (0.26 ms of the driver's CPU per trial).
  const data = join(denoDir, "location_data");
  if (!hasEntries(data, "web_cache") && !hasEntries(join(data, "web_cache"))) return;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(origin));
  const hash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  for (
    const dir of [
      join(denoDir, "location_data", hash),
      join(denoDir, "location_data", "web_cache", hash),
    ]
  ) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Whether the folder `dir` holds anything but `except`; false when it cannot be read. */
function hasEntries(dir: string, except?: string): boolean {
  try {
    for (const e of Deno.readDirSync(dir)) if (e.name !== except) return true;
  } catch { /* no such folder */ }
  return false;
}

/** The util-linux tools a trial is started through (each execs the next: one process). */
export interface ProcessTools {
  /** `setsid`: the trial leads a process group (and session) of its own. */
  readonly setsid: string[];
  /** `setpriv --pdeathsig SIGKILL --`. */
  readonly setpriv: string[];
  /** `prlimit`, for the memory cap. */
  readonly prlimit?: string;
}

let toolsCache: Promise<ProcessTools> | undefined;

/**
 * The util-linux tools that work here: `setsid` (a process group of the trial's own, made in the
 * child rather than by a fork of the driver), `setpriv --pdeathsig SIGKILL` (the kernel kills the
 * trial when the driver dies, even a driver killed with SIGKILL and a trial that ignores its
 * stdin watchdog) and `prlimit` (the OS memory cap). Each execs, so the trial stays the direct
 * child of the driver, with the pid the driver knows.
 */
export function processTools(): Promise<ProcessTools> {
  return toolsCache ??= (async () => {
    const works = async (cmd: string, args: string[]) => {
      try {
        return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output())
          .success;
      } catch {
        return false; // missing, or the driver may not run it
      }
    };
    let setsid: string[] = [];
    for (const p of ["/usr/bin/setsid", "/bin/setsid"]) {
      if (await leadsOwnGroup(p)) {
        setsid = [p];
        break;
      }
    }
    let setpriv: string[] = [];
    for (const p of ["/usr/bin/setpriv", "/bin/setpriv"]) {
      if (await works(p, ["--pdeathsig", "SIGKILL", "--", "true"])) {
        setpriv = [p, "--pdeathsig", "SIGKILL", "--"];
        break;
      }
    }
    for (const p of ["/usr/bin/prlimit", "/bin/prlimit"]) {
      if (await works(p, ["--data=1073741824", "--", "true"])) {
        return { setsid, setpriv, prlimit: p };
      }
    }
    return { setsid, setpriv };
  })();
}

/**
 * Whether `setsid` at `path` makes the process it runs lead a new session and process group
 * without forking (util-linux does, for a process that is not a group leader): the program
 * then has the pid of the child the driver spawned.
 */
async function leadsOwnGroup(path: string): Promise<boolean> {
  try {
    const child = new Deno.Command(path, {
      args: ["/bin/sh", "-c", "cat /proc/$$/stat"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const out = await child.output();
    if (!out.success) return false;
    const stat = new TextDecoder().decode(out.stdout);
    // pid (comm) state ppid pgrp session ...
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
    const pid = Number(stat.split(" ")[0]);
    return pid === child.pid && f[2] === pid && f[3] === pid;
  } catch {
    return false;
  }
}

let infoCache: Promise<{ denoDir: string; npmCache?: string }> | undefined;

export function denoInfo(): Promise<{ denoDir: string; npmCache?: string }> {
  return infoCache ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      denoDir: string;
      npmCache?: string;
    };
    return { denoDir: info.denoDir, ...(info.npmCache ? { npmCache: info.npmCache } : {}) };
  })();
}
