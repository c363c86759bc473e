/**
 * Starts a real two-node Slurm cluster on this machine for tests and benchmarks: `munged`,
 * `slurmctld` and two `slurmd` (nodes `n1` on 127.0.0.2 and `n2` on 127.0.0.3, each with its own
 * port), all in the foreground as children of the test, with config, state, spool, logs and the
 * munge key in a temp folder. Nothing is written to `/etc`; the cluster's clients find it through
 * `SLURM_CONF` in {@linkcode SlurmCluster.env}.
 *
 * How it stays on loopback without systemd or cgroups:
 * - every daemon runs in its own UTS namespace (`unshare -u`) whose host name is its loopback
 *   address; `CommunicationParameters=NoCtldInAddrAny` binds slurmctld to its address, while
 *   each slurmd listens on its own port (not `NoInAddrAny`: an `srun` inside a batch job would
 *   then listen on its node's address alone, and its node's slurmd, seeing it come from
 *   127.0.0.1, could not connect its I/O back);
 * - `ProctrackType=proctrack/linuxproc` and `TaskPlugin=task/none`: no cgroups needed;
 * - memory limits are enforced by polling (`JobAcctGatherParams=OverMemoryKill`, 1 s), so a
 *   step over `--mem` is killed with Slurm's own "exceeded memory limit" verdict;
 * - `SlurmdParameters=config_overrides`: each node declares 4 CPUs and 4000 MB whatever the
 *   machine has, and `EnforcePartLimits=ALL` makes impossible requests fail at submit time;
 * - two fake GPUs per node (GRES `gpu`, `gres.conf` naming links to `/dev/null` as devices:
 *   Slurm wants character devices, and with task/none nothing opens them), so GPU requests are
 *   scheduled and `CUDA_VISIBLE_DEVICES` set as on a GPU cluster.
 *
 * Needs root (the daemons run as root, `unshare -u` needs CAP_SYS_ADMIN) and the Debian packages
 * `slurmctld slurmd slurm-client munge` (`.ci/run` installs them). {@linkcode slurmMissing} says
 * why a machine cannot run it.
 *
 * @module
 */

/** A running test cluster. */
export interface SlurmCluster {
  /** The temp folder: `slurm.conf`, `state/`, `log/`, `munge/`, node spool folders. */
  readonly dir: string;
  /** `{ SLURM_CONF }`: the environment Slurm's clients (`srun`, `sbatch`, ...) need. */
  readonly env: Readonly<Record<string, string>>;
  /** Node names, `["n1", "n2"]`. */
  readonly nodes: readonly string[];
  /** CPUs each node declares. */
  readonly cpusPerNode: number;
  /** Memory (MB) each node declares. */
  readonly memoryMbPerNode: number;
  /** Fake GPUs each node declares (GRES `gpu`; links to /dev/null stand for the devices). */
  readonly gpusPerNode: number;
  /** Runs a Slurm client command against this cluster and returns its output. */
  run(cmd: string, args: readonly string[]): Promise<{ code: number; out: string; err: string }>;
  /**
   * A folder the driver and `n1` see and `n2` does not (`n2` runs in its own mount namespace with
   * an empty tmpfs over it): storage that is not shared. Undefined where this machine cannot
   * mount (no `CAP_SYS_ADMIN`).
   */
  readonly unsharedDir?: string;
  /**
   * True when `localhost` on `n2` is not the driver's machine: `n2` reads its own hosts file,
   * where `localhost` is 127.0.0.9 (nothing listens there), as on a real cluster where
   * `localhost` is each node itself. A driver at `localhost` is then unreachable from `n2`.
   */
  readonly localhostElsewhereOnN2: boolean;
  /** Allocates `nodes` nodes without a shell (`salloc --no-shell`) and returns the job id. */
  allocate(args?: readonly string[]): Promise<string>;
  /** Cancels every job, stops the daemons, removes the folder. */
  close(): Promise<void>;
}

const BINARIES = ["munged", "slurmctld", "slurmd", "srun", "sbatch", "squeue", "unshare"];

/**
 * Why this machine cannot run the test cluster, or undefined when it can.
 *
 * @example
 * ```ts ignore
 * const why = await slurmMissing();
 * Deno.test({ name: "slurm", ignore: why !== undefined, fn() {} });
 * ```
 */
export async function slurmMissing(): Promise<string | undefined> {
  const missing: string[] = [];
  for (const b of BINARIES) {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${b} || test -x /usr/sbin/${b}`],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) missing.push(b);
  }
  if (missing.length) {
    return `the Slurm test cluster needs ${missing.join(", ")} ` +
      `(apt-get install slurmctld slurmd slurm-client munge)`;
  }
  if (Deno.uid() !== 0) return "the Slurm test cluster runs its daemons as root";
  return undefined;
}

function freePort(hostname: string): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function sbin(name: string): string {
  for (const d of ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]) {
    try {
      Deno.statSync(`${d}/${name}`);
      return `${d}/${name}`;
    } catch { /* next */ }
  }
  return name;
}

/**
 * Starts the cluster and waits until both nodes are idle (well under a second once installed).
 *
 * @example
 * ```ts ignore
 * const cluster = await startSlurmCluster();
 * try {
 *   const { out } = await cluster.run("srun", ["-N2", "hostname"]);
 * } finally {
 *   await cluster.close();
 * }
 * ```
 */
export async function startSlurmCluster(): Promise<SlurmCluster> {
  const dir = await Deno.makeTempDir({ prefix: "tunebox-slurm-" });
  await Deno.chmod(dir, 0o755);
  const children: Deno.ChildProcess[] = [];
  const conf = `${dir}/slurm.conf`;
  const env = { SLURM_CONF: conf };
  const cpus = 4, mem = 4000, gpus = 2;
  const run = async (cmd: string, args: readonly string[]) => {
    const o = await new Deno.Command(cmd, {
      args: [...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
  };
  const spawn = (host: string, argv: string[], log: string, hide?: string) => {
    // A node that hides a folder: its own mount namespace, an empty tmpfs over the folder, and a
    // marker in the shared log folder when that worked.
    const mount = hide
      ? `mount -t tmpfs tmpfs ${hide} 2>/dev/null && : > ${dir}/log/hidden-on-${host}; ` +
        `mount --bind ${dir}/hosts-${host} /etc/hosts 2>/dev/null && ` +
        `: > ${dir}/log/hosts-on-${host}; `
      : "";
    const child = new Deno.Command("unshare", {
      args: [
        ...(hide ? ["-u", "-m"] : ["-u"]),
        "sh",
        "-c",
        `${mount}hostname ${host} && exec "$@" >>${log} 2>&1`,
        "sh",
        ...argv,
      ],
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    children.push(child);
    return child;
  };
  const close = async () => {
    await run("scancel", ["--full", "--quiet", "--user=root"]).catch(() => {});
    for (const c of children.slice().reverse()) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
    }
    const all = Promise.all(children.map((c) => c.status));
    const t = setTimeout(() => {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }
    }, 3000);
    await all;
    clearTimeout(t);
    await killStepds(conf);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    for (const d of ["state", "log", "munge", "n1", "n2", "unshared"]) {
      await Deno.mkdir(`${dir}/${d}`);
    }
    // n2's hosts file (bind-mounted in its own mount namespace; /etc is not written).
    const hosts = await Deno.readTextFile("/etc/hosts").catch(() => "");
    await Deno.writeTextFile(
      `${dir}/hosts-127.0.0.3`,
      "127.0.0.9 localhost\n" +
        hosts.split("\n").filter((l) => !/\slocalhost(\s|$)/.test(l)).join("\n") + "\n",
    );
    await Deno.chmod(`${dir}/munge`, 0o755);
    const key = crypto.getRandomValues(new Uint8Array(1024));
    await Deno.writeFile(`${dir}/munge/munge.key`, key, { mode: 0o400 });
    const ctlPort = freePort("127.0.0.2");
    const p1 = freePort("127.0.0.2"), p2 = freePort("127.0.0.3");
    const munged = sbin("munged");
    const sock = `${dir}/munge/munge.sock`;
    const munge = new Deno.Command(munged, {
      args: [
        "-F",
        "-f",
        `--socket=${sock}`,
        `--key-file=${dir}/munge/munge.key`,
        `--log-file=${dir}/log/munged.log`,
        `--pid-file=${dir}/munge/munged.pid`,
        `--seed-file=${dir}/munge/munged.seed`,
        "--num-threads=4",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    children.push(munge);
    munge.stderr.pipeTo(new WritableStream()).catch(() => {});
    await Deno.writeTextFile(
      conf,
      [
        "ClusterName=tunebox",
        `SlurmctldHost=127(127.0.0.2)`,
        `SlurmctldPort=${ctlPort}`,
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        `AuthInfo=socket=${sock}`,
        "CommunicationParameters=NoCtldInAddrAny",
        `StateSaveLocation=${dir}/state`,
        `SlurmdSpoolDir=${dir}/%n`,
        `SlurmctldPidFile=${dir}/slurmctld.pid`,
        `SlurmdPidFile=${dir}/slurmd-%n.pid`,
        `SlurmctldLogFile=${dir}/log/slurmctld.log`,
        `SlurmdLogFile=${dir}/log/slurmd-%n.log`,
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SwitchType=switch/none",
        "MpiDefault=none",
        "MailProg=/bin/true",
        "ReturnToService=2",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=200",
        "EnforcePartLimits=ALL",
        "SlurmdParameters=config_overrides",
        "JobAcctGatherType=jobacct_gather/linux",
        "JobAcctGatherParams=OverMemoryKill",
        "JobAcctGatherFrequency=1",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "DebugFlags=NO_CONF_HASH",
        "MessageTimeout=10",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=60",
        "InactiveLimit=0",
        "KillWait=2",
        "MinJobAge=300",
        "GresTypes=gpu",
        "Waittime=0",
        `NodeName=n1 NodeHostname=n1 NodeAddr=127.0.0.2 Port=${p1} CPUs=${cpus} ` +
        `RealMemory=${mem} Gres=gpu:${gpus} Feature=one State=UNKNOWN`,
        `NodeName=n2 NodeHostname=n2 NodeAddr=127.0.0.3 Port=${p2} CPUs=${cpus} ` +
        `RealMemory=${mem} Gres=gpu:${gpus} Feature=two State=UNKNOWN`,
        "PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP",
        "",
      ].join("\n"),
    );
    // Fake GPUs: Slurm wants a character device per GPU, so each is a link to /dev/null (with
    // task/none no device cgroup uses them); Slurm hands them out as GRES and sets
    // CUDA_VISIBLE_DEVICES for each step or task.
    await Deno.mkdir(`${dir}/dev`);
    for (const n of ["n1", "n2"]) {
      for (let i = 0; i < gpus; i++) await Deno.symlink("/dev/null", `${dir}/dev/${n}-nvidia${i}`);
    }
    await Deno.writeTextFile(
      `${dir}/gres.conf`,
      ["n1", "n2"].map((n) => `NodeName=${n} Name=gpu File=${dir}/dev/${n}-nvidia[0-${gpus - 1}]\n`)
        .join(""),
    );
    // munged creates its socket asynchronously.
    await waitFor(
      async () => {
        try {
          await Deno.stat(sock);
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      () => `munged did not start (see ${dir}/log/munged.log)`,
    );
    spawn("127.0.0.2", [sbin("slurmctld"), "-D", "-i"], `${dir}/log/slurmctld.out`);
    spawn("127.0.0.2", [sbin("slurmd"), "-D", "-N", "n1"], `${dir}/log/slurmd-n1.out`);
    spawn(
      "127.0.0.3",
      [sbin("slurmd"), "-D", "-N", "n2"],
      `${dir}/log/slurmd-n2.out`,
      `${dir}/unshared`,
    );
    await waitFor(
      async () => {
        const { code, out } = await run("sinfo", ["-h", "-N", "-o", "%N %t"]);
        return code === 0 && /n1 idle/.test(out) && /n2 idle/.test(out);
      },
      30_000,
      () => `the Slurm test cluster did not come up (logs in ${dir}/log)`,
    );
  } catch (e) {
    await close();
    throw e;
  }
  const marked = (name: string) => Deno.stat(`${dir}/log/${name}`).then(() => true, () => false);
  const hidden = await marked("hidden-on-127.0.0.3");
  const localhostElsewhereOnN2 = await marked("hosts-on-127.0.0.3");
  return {
    dir,
    env,
    ...(hidden ? { unsharedDir: `${dir}/unshared` } : {}),
    localhostElsewhereOnN2,
    nodes: ["n1", "n2"],
    cpusPerNode: cpus,
    memoryMbPerNode: mem,
    gpusPerNode: gpus,
    run,
    async allocate(args = ["-N2"]) {
      const { code, out, err } = await run("salloc", ["--no-shell", ...args]);
      const m = /Granted job allocation (\d+)/.exec(err + out);
      if (code !== 0 || !m) throw new Error(`salloc failed: ${err.trim()}`);
      return m[1];
    },
    close,
  };
}

async function waitFor(
  ok: () => Promise<boolean>,
  timeoutMs: number,
  why: () => string,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await ok()) return;
    if (Date.now() > until) throw new Error(why());
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGKILLs the `slurmstepd` processes our slurmd started (their environment names our conf). */
async function killStepds(conf: string): Promise<void> {
  const needle = new TextEncoder().encode(`SLURM_CONF=${conf}\0`);
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      if (!cmd.startsWith("slurmstepd")) continue;
      const envBytes = await Deno.readFile(`/proc/${e.name}/environ`);
      if (indexOf(envBytes, needle) >= 0) Deno.kill(Number(e.name), "SIGKILL");
    } catch { /* gone */ }
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
