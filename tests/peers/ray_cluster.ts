/**
 * Starts a real two-node Ray cluster on this machine for tests and benchmarks, from the
 * project's Python venv (`ray[default]`, pinned in `tests/peers/requirements.txt`):
 *
 * - the head on 127.0.0.2 and a worker node on 127.0.0.3 (never 127.0.0.1/localhost as a node
 *   address: Ray rewrites those to the machine's routable address), each `ray start --block` a
 *   child of the test, with explicit free ports for everything that would otherwise bind a
 *   fixed port on 0.0.0.0 (dashboard agent, metrics, runtime env agent, ...);
 * - the dashboard (the Jobs REST API) on `http://127.0.0.1:<port>`;
 * - `--object-store-memory=200000000`, `--disable-usage-stats`, `RAY_USAGE_STATS_ENABLED=0`,
 *   a temp dir of its own;
 * - custom resources `node1` (head) and `node2` (worker), 2 logical GPUs on the worker;
 * - token authentication (`RAY_AUTH_MODE=token`) with a random token ({@linkcode RayCluster.token}).
 *
 * It takes ~2.2 GB of memory and 10 s to a few minutes (on a loaded machine) to start: start it
 * once per test file and ALWAYS {@linkcode RayCluster.close} it (that kills every process whose
 * command line names its temp dir, so nothing outlives the test even when `ray start` died).
 *
 * @module
 */

/** A running test cluster. */
export interface RayCluster {
  /** The Jobs REST API address, `http://127.0.0.1:<port>`. */
  readonly address: string;
  /** The token every request needs (`Authorization: Bearer <token>`). */
  readonly token: string;
  /** The head's GCS port (`ray.init(address="127.0.0.2:<port>")`). */
  readonly gcsPort: number;
  /** The cluster's own temp dir (sessions, logs). */
  readonly dir: string;
  /** CPUs each node declares. */
  readonly cpusPerNode: number;
  /** Node addresses: head, worker. */
  readonly nodes: readonly ["127.0.0.2", "127.0.0.3"];
  /** Stops both nodes and every process they started, removes the temp dir. */
  close(): Promise<void>;
}

const REPO = new URL("../../", import.meta.url).pathname;

/** The Python of the test peers: `$TUNEBOX_PYTHON`, else `<repo>/.venv/bin/python`. */
export function peerPython(): string {
  return Deno.env.get("TUNEBOX_PYTHON") ?? `${REPO}.venv/bin/python`;
}

/**
 * Why this machine cannot run the test cluster, or undefined when it can.
 *
 * @example
 * ```ts ignore
 * const why = await rayMissing();
 * Deno.test({ name: "ray", ignore: why !== undefined, fn() {} });
 * ```
 */
export async function rayMissing(): Promise<string | undefined> {
  const ray = `${dirnameOf(peerPython())}/ray`;
  try {
    await Deno.stat(ray);
  } catch {
    return `the Ray test cluster needs \`ray\` at ${ray}: install the peers ` +
      `(pip install -r tests/peers/requirements.txt) or set TUNEBOX_PYTHON`;
  }
  return undefined;
}

function dirnameOf(p: string): string {
  return p.slice(0, p.lastIndexOf("/")) || "/";
}

function freePort(hostname: string): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Ports `ray start` would otherwise pick as fixed defaults (and clash between the two nodes). */
function nodePorts(ip: string): string[] {
  const p = () => freePort(ip);
  return [
    `--node-manager-port=${p()}`,
    `--object-manager-port=${p()}`,
    `--dashboard-agent-listen-port=${p()}`,
    `--dashboard-agent-grpc-port=${p()}`,
    `--runtime-env-agent-port=${p()}`,
    `--metrics-export-port=${p()}`,
  ];
}

/**
 * Starts the cluster and waits until both nodes are in it and the Jobs API answers.
 *
 * @param options `env`: extra environment for both nodes (e.g. a PATH without `deno`).
 * @returns the running cluster; close it in a `finally`.
 * @example
 * ```ts ignore
 * const cluster = await startRayCluster();
 * try {
 *   // rayExecutor(train, { address: cluster.address, token: cluster.token })
 * } finally {
 *   await cluster.close();
 * }
 * ```
 */
export async function startRayCluster(
  options: { env?: Record<string, string> } = {},
): Promise<RayCluster> {
  const why = await rayMissing();
  if (why) throw new Error(why);
  const ray = `${dirnameOf(peerPython())}/ray`;
  const dir = await Deno.makeTempDir({ prefix: "tunebox_ray_" });
  const token = Array.from(crypto.getRandomValues(new Uint8Array(16)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const gcsPort = freePort("127.0.0.2");
  const dashPort = freePort("127.0.0.1");
  const cpusPerNode = 4;
  const env: Record<string, string> = {
    PATH: `${dirnameOf(peerPython())}:${Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin"}`,
    HOME: Deno.env.get("HOME") ?? "/root",
    LANG: "C.UTF-8",
    RAY_USAGE_STATS_ENABLED: "0",
    RAY_AUTH_MODE: "token",
    RAY_AUTH_TOKEN: token,
    // On a loaded machine the dashboard's modules take more than Ray's default 30 s to start.
    RAY_DASHBOARD_SUBPROCESS_MODULE_WAIT_READY_TIMEOUT: "600",
    RAY_gcs_rpc_server_reconnect_timeout_s: "120",
    ...options.env,
  };
  const common = [
    "--block",
    "--object-store-memory=200000000",
    "--disable-usage-stats",
    `--num-cpus=${cpusPerNode}`,
    "--log-style=record",
    "--log-color=false",
  ];
  const children: Deno.ChildProcess[] = [];
  const logs: Promise<void>[] = [];
  const spawn = (name: string, args: string[]) => {
    const c = new Deno.Command(ray, {
      args,
      env,
      clearEnv: true,
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    children.push(c);
    logs.push(
      (async () => {
        const f = await Deno.open(`${dir}/${name}.log`, { create: true, append: true });
        await Promise.all([
          c.stdout.pipeTo(f.writable, { preventClose: true }).catch(() => {}),
          c.stderr.pipeTo(f.writable, { preventClose: true }).catch(() => {}),
        ]);
        f.close();
      })().catch(() => {}),
    );
    return c;
  };

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await Promise.race([
      Promise.all(children.map((c) => c.status)),
      new Promise((r) => setTimeout(r, 15_000)),
    ]);
    // Whatever outlived `ray start --block` (raylet, gcs, dashboard, job supervisors, workers)
    // names the temp dir on its command line or in its environment.
    await killNaming(dir);
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await Promise.all(logs);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    const head = spawn("head", [
      "start",
      "--head",
      "--node-ip-address=127.0.0.2",
      `--port=${gcsPort}`,
      "--dashboard-host=127.0.0.1",
      `--dashboard-port=${dashPort}`,
      `--ray-client-server-port=${freePort("127.0.0.2")}`,
      `--temp-dir=${dir}/t`,
      "--num-gpus=0",
      `--resources=${JSON.stringify({ node1: 100 })}`,
      ...nodePorts("127.0.0.2"),
      ...common,
    ]);
    const address = `http://127.0.0.1:${dashPort}`;
    await waitFor(
      async () => {
        const r = await fetch(`${address}/api/version`, {
          headers: { authorization: `Bearer ${token}` },
        }).catch(() => undefined);
        await r?.body?.cancel();
        return r?.ok ?? false;
      },
      head,
      "the Ray head's dashboard",
      dir,
    );
    const worker = spawn("worker", [
      "start",
      `--address=127.0.0.2:${gcsPort}`,
      "--node-ip-address=127.0.0.3",
      `--temp-dir=${dir}/t`,
      "--num-gpus=2",
      `--resources=${JSON.stringify({ node2: 100 })}`,
      ...nodePorts("127.0.0.3"),
      ...common,
    ]);
    await waitFor(
      async () => {
        const r = await fetch(`${address}/nodes?view=summary`, {
          headers: { authorization: `Bearer ${token}` },
        }).catch(() => undefined);
        if (!r?.ok) {
          await r?.body?.cancel();
          return false;
        }
        const text = await r.text();
        return text.includes("127.0.0.3") && text.includes("127.0.0.2") &&
          (text.match(/"state":\s*"ALIVE"/g) ?? []).length >= 2;
      },
      worker,
      "the Ray worker node",
      dir,
    );
    return {
      address,
      token,
      gcsPort,
      dir,
      cpusPerNode,
      nodes: ["127.0.0.2", "127.0.0.3"],
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

async function waitFor(
  ready: () => Promise<boolean>,
  child: Deno.ChildProcess,
  what: string,
  dir: string,
): Promise<void> {
  let exited = false;
  child.status.then(() => (exited = true));
  const until = Date.now() + 300_000;
  while (Date.now() < until) {
    if (await ready()) return;
    if (exited) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  let log = "";
  try {
    log = (await Deno.readTextFile(`${dir}/${what.includes("worker") ? "worker" : "head"}.log`))
      .split("\n").slice(-15).join("\n");
  } catch { /* none */ }
  throw new Error(`${what} did not come up${exited ? " (ray start exited)" : ""}:\n${log}`);
}

/** SIGKILLs every process whose command line names `dir`. */
async function killNaming(dir: string): Promise<void> {
  const needle = new TextEncoder().encode(dir);
  for (let round = 0; round < 3; round++) {
    let found = 0;
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
      let cmd: Uint8Array;
      try {
        cmd = await Deno.readFile(`/proc/${e.name}/cmdline`);
      } catch {
        continue;
      }
      if (indexOf(cmd, needle) < 0) continue;
      found++;
      try {
        Deno.kill(Number(e.name), "SIGKILL");
      } catch { /* gone */ }
    }
    if (!found) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
