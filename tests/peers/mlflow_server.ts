/**
 * Starts a real `mlflow server` from the project's Python venv for tests and benchmarks:
 * 127.0.0.1 only, a sqlite backend store and a local artifact destination in a temp folder,
 * one worker, no job runner. Start it once per test file; it takes several seconds.
 *
 * With `auth`, the server runs MLflow's basic-auth app (`--app-name basic-auth`, which needs
 * `pip install "mlflow[auth]"`): a `basic_auth.ini` in the temp folder names the admin user and
 * password and keeps the user store in `basic_auth.db` next to it.
 *
 * Python is `$TUNEBOX_PYTHON`, else `<repo>/.venv/bin/python` (CI creates it with
 * `pip install tensorboard "mlflow[auth]"`). A missing interpreter or mlflow is an error, never a
 * skip.
 *
 * @module
 */

/** A running MLflow tracking server. */
export interface MlflowServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The temp folder holding `mlflow.db`, `artifacts/` and `server.log`. */
  readonly dir: string;
  /** The mlflow version the server reports. */
  readonly version: string;
  /** The admin credentials when the server was started with `auth`. */
  readonly auth?: MlflowServerAuth;
  /** `{ authorization: "Basic ..." }` for the admin when `auth` is on, else `{}`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Kills the server (SIGKILL to its process group, like a crash) and keeps its folder. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store (after `stop`). */
  restart(): Promise<void>;
  /** Stops the server and removes its folder. */
  close(): Promise<void>;
}

/** The admin user of an auth-enabled server. */
export interface MlflowServerAuth {
  /** The admin's user name. */
  readonly username: string;
  /** The admin's password; MLflow wants at least 12 characters. */
  readonly password: string;
}

/** Options of {@linkcode startMlflowServer}. */
export interface MlflowServerOptions {
  /** How long to wait for `/health`. @default 120000 */
  readonly startTimeoutMs?: number;
  /**
   * Run MLflow's basic-auth app with this admin user: every REST call then needs HTTP Basic
   * credentials. @default no authentication
   */
  readonly auth?: MlflowServerAuth;
}

const REPO = new URL("../../", import.meta.url).pathname;

/** The Python interpreter the test peers use. */
export function pythonPath(): string {
  return Deno.env.get("TUNEBOX_PYTHON") ?? `${REPO}.venv/bin/python`;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts `mlflow server` on a free port and waits until `/health` answers.
 *
 * @example
 * ```ts ignore
 * const server = await startMlflowServer();
 * try {
 *   // ... use server.url
 * } finally {
 *   await server.close();
 * }
 * ```
 */
export async function startMlflowServer(options: MlflowServerOptions = {}): Promise<MlflowServer> {
  const python = pythonPath();
  try {
    await Deno.stat(python);
  } catch {
    throw new Error(
      `Python for the MLflow test peer not found at "${python}". Create the venv with ` +
        `\`python3 -m venv .venv && .venv/bin/pip install mlflow\` or set TUNEBOX_PYTHON.`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "tunebox_mlflow_" });
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const auth = options.auth;
  const headers: Record<string, string> = auth
    ? { authorization: `Basic ${btoa(`${auth.username}:${auth.password}`)}` }
    : {};
  const authArgs: string[] = [];
  const authEnv: Record<string, string> = {};
  if (auth) {
    // MLflow's documented config keys (mlflow/server/auth/basic_auth.ini); the admin user is
    // created in basic_auth.db the first time the app starts.
    await Deno.writeTextFile(
      `${dir}/basic_auth.ini`,
      [
        "[mlflow]",
        "default_permission = READ",
        `database_uri = sqlite:///${dir}/basic_auth.db`,
        `admin_username = ${auth.username}`,
        `admin_password = ${auth.password}`,
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        // No auth_cache_ttl_seconds: MLflow's default, and with the cache on, mlflow 3.17 answers
        // a Bearer token with HTTP 500 (it hashes the missing password) instead of 401.
        "",
      ].join("\n"),
    );
    authArgs.push("--app-name", "basic-auth");
    authEnv.MLFLOW_AUTH_CONFIG_PATH = `${dir}/basic_auth.ini`;
    authEnv.MLFLOW_FLASK_SERVER_SECRET_KEY = crypto.randomUUID(); // CSRF key the app requires
  }
  let child: Deno.ChildProcess | undefined;
  let logFile: Deno.FsFile | undefined;
  let pumps: Promise<unknown>[] = [];

  const launch = async (): Promise<string> => {
    logFile = await Deno.open(`${dir}/server.log`, { append: true, create: true });
    child = new Deno.Command(python, {
      args: [
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--workers",
        "1",
        "--backend-store-uri",
        `sqlite:///${dir}/mlflow.db`,
        "--artifacts-destination",
        `${dir}/artifacts`,
        ...authArgs,
      ],
      cwd: dir,
      env: {
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION: "false", // no job-runner processes
        PYTHONUNBUFFERED: "1",
        ...authEnv,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true, // own process group: stop() kills the whole tree
    }).spawn();
    const w = logFile.writable.getWriter();
    const copy = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) await w.write(chunk).catch(() => {});
    };
    const c = child;
    pumps = [
      Promise.all([copy(c.stdout), copy(c.stderr)]).finally(() => w.close().catch(() => {})),
    ];
    const exited = c.status.then((s) => s);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ready = await Promise.race([
        fetch(`${url}/health`).then(async (r) => (await r.text(), r.ok)).catch(() => false),
        exited.then(() => "exited" as const),
      ]);
      if (ready === true) {
        const r = await fetch(`${url}/version`, { headers });
        return (await r.text()).trim();
      }
      if (ready === "exited") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const status = await Promise.race([exited, Promise.resolve(undefined)]);
    await kill();
    const log = await Deno.readTextFile(`${dir}/server.log`).catch(() => "");
    const hint = auth && /Flask-WTF|flask_wtf/.test(log)
      ? ` The auth app needs Flask-WTF: \`${python} -m pip install "mlflow[auth]"\`.`
      : "";
    throw new Error(
      `mlflow server did not become healthy on ${url} within ${timeoutMs} ms` +
        `${status ? ` (exited with code ${status.code})` : ""}.${hint} Its log:\n` +
        log.slice(-3000),
    );
  };

  const kill = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    child = undefined;
    try {
      Deno.kill(-c.pid, "SIGKILL"); // the whole group: the uvicorn worker too; sqlite survives it
    } catch { /* already gone */ }
    await c.status;
    await Promise.all(pumps);
  };

  const version = await launch();
  return {
    url,
    port,
    dir,
    version,
    ...(auth ? { auth } : {}),
    headers,
    stop: kill,
    restart: async () => {
      await kill();
      await launch();
    },
    close: async () => {
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
