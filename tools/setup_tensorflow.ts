#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-ffi
/**
 * `deno task setup:tensorflow [--gpu] [--force] [--no-strip] [--keep-wheels] [--python PY]`:
 * builds the native TensorFlow backend from PyPI's TensorFlow wheel (see
 * plugins/backends/tfjs/setup.ts). One progress line per step; exit 1 with every missing
 * prerequisite named.
 */
import { parseArgs } from "node:util";
import { installNativeBackend, NativeSetupError } from "../plugins/backends/tfjs/setup.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    gpu: { type: "boolean" },
    force: { type: "boolean" },
    "no-strip": { type: "boolean" },
    "keep-wheels": { type: "boolean" },
    python: { type: "string" },
    "cache-dir": { type: "string" },
  },
});
try {
  const r = await installNativeBackend({
    gpu: values.gpu ?? false,
    force: values.force ?? false,
    strip: !values["no-strip"],
    keepWheels: values["keep-wheels"] ?? false,
    ...(values.python ? { python: values.python } : {}),
    ...(values["cache-dir"] ? { cacheDir: values["cache-dir"] } : {}),
  });
  const total = r.steps.reduce((s, x) => s + x.seconds, 0);
  console.log(
    `${r.package} ready (${r.manifest.variant} TensorFlow ${r.manifest.tensorflow}, ` +
      `${(r.diskBytes / 1e6).toFixed(0)} MB in the cache) in ${total.toFixed(1)} s`,
  );
} catch (e) {
  if (e instanceof NativeSetupError) {
    console.error(e.message);
    Deno.exit(1);
  }
  throw e;
}
