// The native TensorFlow backend built from PyPI's wheel: `deno task setup` (run first by
// `deno task test`) builds it once per machine; these tests use that build and fail — never skip —
// when it is missing.
import { deepStrictEqual, equal, match, ok } from "#assert";
import type { SandboxPolicy } from "../../core/plugin.ts";
import { findBinding, nodeModulesRoot } from "../../plugins/backends/tfjs/packages.ts";
import { loadTfjs, type Tf, tfjsBackend } from "../../plugins/backends/tfjs/mod.ts";
import { installNativeBackend, NativeSetupError } from "../../plugins/backends/tfjs/setup.ts";
import { main } from "../../cli.ts";

const PROBE = new URL("../../plugins/backends/tfjs/_probe.ts", import.meta.url).pathname;
const BREAK_UTIL = new URL("./_break_util.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const NODE_MODULES = nodeModulesRoot()!;

/** Fails loudly when the native backend was not built, saying how to build it. */
async function requireBuilt(): Promise<void> {
  const binding = await findBinding(`${NODE_MODULES}/@tensorflow/tfjs-node`);
  ok(
    binding,
    "The native TensorFlow backend is not built in this checkout: `deno task test` builds it " +
      "first (deno task setup); run `deno task setup:tensorflow` and read its messages.",
  );
}

function flags(policy: SandboxPolicy): string[] {
  const out: string[] = [];
  for (const k of ["read", "env", "sys", "ffi"] as const) {
    const list = policy[k];
    if (list && list.length > 0) out.push(`--allow-${k}=${list.join(",")}`);
  }
  return out;
}

interface ProbeResult {
  backend: string;
  active: string;
  sum: number;
  warnings: string[];
}

async function probe(
  prefer: string[] | "default",
  perms: string[],
  env: Record<string, string> = {},
  entry?: string,
): Promise<ProbeResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--cached-only",
      `--config=${CONFIG}`,
      ...perms,
      entry ?? PROBE,
      prefer === "default" ? prefer : JSON.stringify(prefer),
    ],
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  ok(out.success, `probe failed (code ${out.code}):\n${stderr}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

Deno.test("a sandboxed trial with tfjsBackend({ native: true }) picks tensorflow by default and computes", async () => {
  await requireBuilt();
  const backend = tfjsBackend({ native: true });
  const policy = backend.permissions();
  // FFI is scoped to the binding's folder, env to the CUDA and TF_* names: nothing unscoped.
  equal(policy.ffi?.length, 1);
  match(policy.ffi![0], /\/node_modules\/\.deno\/@tensorflow\+tfjs-node@4\.22\.0\/.*\/lib$/);
  deepStrictEqual(policy.env, ["CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "TF_*"]);
  const env = backend.env([]);
  deepStrictEqual(env, {
    CUDA_VISIBLE_DEVICES: "",
    TF_CPP_MIN_LOG_LEVEL: "2",
    TF_ENABLE_ONEDNN_OPTS: "0",
  });
  const r = await probe("default", flags(policy), env);
  deepStrictEqual(r, { backend: "tensorflow", active: "tensorflow", sum: 512, warnings: [] });
});

Deno.test("a sandboxed trial without the native permissions stays on wasm, quietly", async () => {
  await requireBuilt();
  const backend = tfjsBackend();
  const r = await probe("default", flags(backend.permissions()), backend.env([]));
  deepStrictEqual(r, { backend: "wasm", active: "wasm", sum: 512, warnings: [] });
});

Deno.test("a native backend asked for by name without FFI says what the sandbox lacks", async () => {
  await requireBuilt();
  const policy = tfjsBackend({ native: true }).permissions();
  const r = await probe(["tensorflow", "wasm"], flags({ ...policy, ffi: [] }));
  equal(r.backend, "wasm");
  equal(r.warnings.length, 1);
  match(
    r.warnings[0],
    /^tfjs-node failed to load \(.*ffi.*\); a sandboxed trial needs tfjsBackend\(\{ native: true \}\)\.permissions\(\) — using wasm$/,
  );
});

Deno.test("loadTfjs falls back with a warning when the native backend's first operation fails", async () => {
  await requireBuilt();
  // _break_util.ts freezes node:util without isNullOrUndefined: exactly the failure Deno's
  // node:util causes in tfjs-node without the shim (the binding loads, the first op throws).
  const policy = tfjsBackend({ native: true }).permissions();
  const r = await probe(["tensorflow", "wasm"], flags(policy), {}, BREAK_UTIL);
  equal(r.backend, "wasm");
  equal(r.active, "wasm");
  equal(r.warnings.length, 1);
  match(
    r.warnings[0],
    /^tensorflow: its first operation failed \(.*isNullOrUndefined\) is not a function\), so it was not used — using wasm$/,
  );
});

Deno.test("the native backend computes what the cpu backend computes", async () => {
  await requireBuilt();
  const { tf, backend } = await loadTfjs({ prefer: ["tensorflow"] });
  equal(backend, "tensorflow");
  const compute = (t: Tf) =>
    t.tidy(() => {
      const x = t.randomUniform([4, 12, 12, 3], -1, 1, "float32", 7) as ReturnType<Tf["tensor4d"]>;
      const k = t.randomUniform([3, 3, 3, 5], -1, 1, "float32", 8) as ReturnType<Tf["tensor4d"]>;
      const c = t.relu(t.conv2d(x, k, 1, "same"));
      const p = t.maxPool(c, 2, 2, "valid");
      const flat = t.reshape(p, [4, -1]);
      const w = t.randomUniform([flat.shape[1]!, 10], -0.1, 0.1, "float32", 9);
      return Array.from(t.softmax(t.matMul(flat, w)).dataSync());
    });
  const native = compute(tf);
  equal((await loadTfjs({ prefer: ["cpu"] })).backend, "cpu");
  const cpu = compute(tf);
  equal(native.length, 40);
  const worst = Math.max(...native.map((v, i) => Math.abs(v - cpu[i])));
  ok(worst < 1e-5, `largest difference ${worst}`);
});

Deno.test("installNativeBackend run again finds everything in place and only verifies", async () => {
  await requireBuilt();
  const lines: string[] = [];
  const r = await installNativeBackend({ progress: (l) => lines.push(l) });
  equal(lines.length, 7);
  deepStrictEqual(
    r.steps.map((s) => [s.name, s.skipped]),
    [
      ["prerequisites", false],
      ["npm package", false],
      ["download", true],
      ["extract", true],
      ["stage", true],
      ["build", true],
      ["verify", false],
    ],
  );
  equal(r.verified, "tensorflow");
  match(lines[2], /^\[3\/7\] download: cached in .*\/tensorflow\/cpu-2\.21\.0 \(\d+\.\d s\)$/);
  ok(r.diskBytes > 100e6, `${r.diskBytes} bytes`);
});

Deno.test("installNativeBackend names each missing prerequisite with its fix", async () => {
  try {
    await installNativeBackend({ python: "/nonexistent/python3", progress: () => {} });
  } catch (caught) {
    ok(caught instanceof NativeSetupError);
    const e = caught as NativeSetupError;
    deepStrictEqual(e.problems, [
      `no Python with pip ("/nonexistent/python3 -c 'import pip'" failed) (on Debian/Ubuntu: ` +
      "apt-get install python3 python3-pip)",
    ]);
    equal(
      e.message,
      "Cannot build the native TensorFlow backend: " + e.problems[0],
    );
    return;
  }
  throw new Error("installNativeBackend accepted a missing Python");
});

Deno.test("tunebox backend install: usage errors exit 2 and name what came in", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (m: string) => void errors.push(m);
  try {
    equal(await main(["backend", "install", "torch"]), 2);
    equal(await main(["backend", "install", "tensorflow", "--fast"]), 2);
  } finally {
    console.error = original;
  }
  match(
    errors[0],
    /^tunebox backend: expected "install tensorflow" or "install tensorflow-gpu", got "install torch"\nusage: tunebox backend install tensorflow\|tensorflow-gpu/,
  );
  match(errors[1], /^tunebox backend: .*--fast/);
});

Deno.test("tunebox backend install tensorflow on a built checkout verifies and exits 0", async () => {
  await requireBuilt();
  const logs: string[] = [];
  const original = console.log;
  console.log = (m: string) => void logs.push(m);
  try {
    equal(await main(["backend", "install", "tensorflow"]), 0);
  } finally {
    console.log = original;
  }
  equal(logs.length, 8);
  match(
    logs[7],
    /^tfjs-node ready: loadTfjs\(\) now picks "tensorflow" \(\d+ MB in .*cpu-2\.21\.0\)$/,
  );
});
