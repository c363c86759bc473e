#!/usr/bin/env bash
# Prepares .gpu_carry/ (git-ignored) so that tools/gpu_smoke.sh runs on an offline GPU machine
# that has no Deno, within a 64 MiB carry: the deno binary (xz), and a Deno cache holding only the
# npm packages the smoke needs (TensorFlow.js with its wasm and WebGPU backends), pruned to the
# files Deno loads, as one .tar.xz. Then prints the command line to run there.
#
#   tools/gpu_smoke_pack.sh            # uses the deno on PATH
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu_carry
TFJS=4.22.0
step() { printf '[pack] %s (%ss)\n' "$1" "$SECONDS"; }

VERSION=$(deno --version | head -1)
mkdir -p "$OUT"
if [ -f "$OUT/deno.xz" ] && [ "$(cat "$OUT/deno.version" 2>/dev/null)" = "$VERSION" ]; then
  step "deno binary: $VERSION (already packed)"
else
  step "deno binary: $VERSION (xz, a few minutes on 2 busy cores)"
  xz -T0 -6 -c "$(readlink -f "$(command -v deno)")" >"$OUT/deno.xz.partial"
  mv "$OUT/deno.xz.partial" "$OUT/deno.xz"
  echo "$VERSION" >"$OUT/deno.version"
fi
rm -rf "$OUT/deno_dir.tar.xz" "$OUT/node_modules"

step "npm packages into a fresh Deno cache"
cat >"$OUT/deno.json" <<JSON
{
  "nodeModulesDir": "auto",
  "lock": false,
  "imports": {
    "@tensorflow/tfjs": "npm:@tensorflow/tfjs@$TFJS",
    "@tensorflow/tfjs-core": "npm:@tensorflow/tfjs-core@$TFJS",
    "@tensorflow/tfjs-backend-wasm": "npm:@tensorflow/tfjs-backend-wasm@$TFJS",
    "@tensorflow/tfjs-backend-webgpu": "npm:@tensorflow/tfjs-backend-webgpu@$TFJS"
  }
}
JSON
CACHE=$(mktemp -d /tmp/tunebox-gpu-pack.XXXXXX)
trap 'rm -rf "$CACHE"' EXIT
DENO_DIR="$CACHE/deno_dir" deno install --quiet --config "$OUT/deno.json" \
  --entrypoint tools/gpu_smoke.ts tools/gpu_smoke_trial.ts
rm -rf "$OUT/node_modules"

step "prune the packages to what Deno loads (package.json, the node entry, .wasm)"
python3 - "$CACHE/deno_dir/npm/registry.npmjs.org" <<'PY'
import json, os, shutil, sys
root = sys.argv[1]
freed = 0
for scope, dirs, files in os.walk(root):
    if "package.json" not in files or os.path.basename(os.path.dirname(scope)) == "node_modules":
        continue
    pkg = json.load(open(os.path.join(scope, "package.json")))
    if not pkg.get("name", "").startswith("@tensorflow/"):
        dirs[:] = []
        continue
    main = os.path.normpath(pkg.get("main", "index.js"))
    keep = {"package.json", main, main + ".js"}
    for d, _, fs in os.walk(scope):
        for f in fs:
            rel = os.path.relpath(os.path.join(d, f), scope)
            if rel in keep or f.endswith(".wasm") or rel.startswith("wasm-out/"):
                continue
            freed += os.path.getsize(os.path.join(d, f))
            os.remove(os.path.join(d, f))
    dirs[:] = []
print(f"[pack] removed {freed / 1e6:.0f} MB of browser bundles, sources and maps")
PY

step "check: the smoke's modules load from the pruned cache alone (--cached-only, fresh node_modules)"
DENO_DIR="$CACHE/deno_dir" deno run --cached-only --quiet --config "$OUT/deno.json" \
  --allow-read --allow-env --allow-sys plugins/backends/tfjs/_probe.ts '["wasm"]'
DENO_DIR="$CACHE/deno_dir" deno eval --cached-only --quiet --config "$OUT/deno.json" \
  'await import("@tensorflow/tfjs-backend-webgpu"); console.log("tfjs-backend-webgpu loads")'
rm -rf "$OUT/node_modules"

step "compress the cache"
rm -rf "$CACHE/deno_dir/gen" "$CACHE/deno_dir/remote" "$CACHE/deno_dir/location_data"
tar -C "$CACHE" -cf - deno_dir | xz -T0 -6 >"$OUT/deno_dir.tar.xz"

step "done"
du -b "$OUT"/* | awk '{ printf "  %-28s %6.1f MiB\n", $2, $1 / 1048576 }'
du -sb "$OUT" | awk '{ printf "  total                        %6.1f MiB (limit 64)\n", $1 / 1048576 }'
cat <<CMD

Run on the GPU machine (the repository travels; .gpu_carry must be carried):
  run(command="bash tools/gpu_smoke.sh --carry .gpu_carry", carry=[".gpu_carry"], timeout_s=540)
CMD
