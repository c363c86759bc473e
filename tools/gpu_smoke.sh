#!/usr/bin/env bash
# GPU smoke test, one line per check (ok / FAIL / SKIP with the reason), under 8 minutes.
# Runs unchanged on a machine with NVIDIA GPUs, even offline and without Deno installed:
#
#   bash tools/gpu_smoke.sh [--deno PATH] [--carry DIR] [--fake-gpus N]
#
#   --deno PATH    the deno binary (default: deno on PATH, else DIR/deno.xz unpacked to /tmp)
#   --carry DIR    what tools/gpu_smoke_pack.sh prepared (deno.xz, deno_dir.tar.xz, deno.json);
#                  without it the project's own deno.json and Deno cache are used
#   --fake-gpus N  pretend N GPUs (try the script on a machine without one)
#
# Checks: the driver (nvidia-smi), a PyPI-free PyTorch reference if python3 has torch, then
# tools/gpu_smoke.ts: CUDA_VISIBLE_DEVICES per trial, native tensorflow-gpu, tf.getBackend() in
# a GPU trial, a conv net's samples/s on the GPU backend vs wasm vs cpu, two trials sharing one
# GPU with gpu: 0.5, multi-worker trials (devices per worker, the ring all-reduce on the cores).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
DENO="" CARRY="" PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --deno) DENO="$2"; shift 2 ;;
    --carry) CARRY="$2"; shift 2 ;;
    --fake-gpus) PASS+=(--fake-gpus "$2"); shift 2 ;;
    *) echo "gpu_smoke.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
line() { printf '%-4s  %s\n' "$1" "$2"; }
WORK=$(mktemp -d /tmp/tunebox-gpu-smoke.XXXXXX)
unxz_to() { # file.xz -> stdout, with xz or Python's lzma
  if command -v xz >/dev/null 2>&1; then xz -dc "$1"; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

# Deno
if [ -z "$DENO" ] && command -v deno >/dev/null 2>&1; then DENO=$(command -v deno); HOW="on PATH"
elif [ -z "$DENO" ] && [ -n "$CARRY" ] && [ -f "$CARRY/deno.xz" ]; then
  unxz_to "$CARRY/deno.xz" >"$WORK/deno" && chmod +x "$WORK/deno" && DENO="$WORK/deno"
  HOW="unpacked from $CARRY/deno.xz"
else HOW="given"; fi
if [ -z "$DENO" ] || ! "$DENO" --version >/dev/null 2>&1; then
  line FAIL "deno: none found (pass --deno PATH, or --carry DIR from tools/gpu_smoke_pack.sh)"
  exit 1
fi
line ok "deno: $("$DENO" --version | head -1) ($HOW)"

# Packages: the carried Deno cache, or the project's own
CONFIG="$PWD/deno.json"
if [ -n "$CARRY" ] && [ -f "$CARRY/deno_dir.tar.xz" ]; then
  unxz_to "$CARRY/deno_dir.tar.xz" | tar -C "$WORK" -xf - || { line FAIL "packages: cannot unpack $CARRY/deno_dir.tar.xz"; exit 1; }
  export DENO_DIR="$WORK/deno_dir"
  CONFIG="$(cd "$CARRY" && pwd)/deno.json"
  rm -rf "$(dirname "$CONFIG")/node_modules"
  line ok "packages: TensorFlow.js $(grep -o 'tfjs@[0-9.]*' "$CONFIG" | head -1 | cut -d@ -f2) (wasm, webgpu) from the carried cache"
else
  line ok "packages: the project's deno.json and Deno cache"
fi

# Driver
if command -v nvidia-smi >/dev/null 2>&1; then
  if Q=$(nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>&1); then
    line ok "nvidia-smi: $(echo "$Q" | wc -l) GPU(s); $(echo "$Q" | head -1)"
  else line FAIL "nvidia-smi: $Q"; fi
else
  line SKIP "nvidia-smi: not on PATH (no NVIDIA driver here)"
fi

# Reference: what the same machine does with PyTorch (not Tunebox; tells the GPU works at all)
if command -v python3 >/dev/null 2>&1 && python3 -c 'import torch' >/dev/null 2>&1; then
  REF=$(timeout 120 python3 - <<'PY' 2>&1
import time, torch
from torch import nn
def sps(dev, n):
    m = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 64), nn.ReLU(), nn.Linear(64, 10)).to(dev)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x = torch.randn(n, 1, 28, 28, device=dev); y = torch.randint(0, 10, (n,), device=dev)
    def epoch():
        for i in range(0, n, 64):
            opt.zero_grad(); nn.functional.cross_entropy(m(x[i:i+64]), y[i:i+64]).backward(); opt.step()
    epoch()
    if dev == "cuda": torch.cuda.synchronize()
    t = time.perf_counter(); epoch()
    if dev == "cuda": torch.cuda.synchronize()
    return n / (time.perf_counter() - t)
cuda = f"cuda {sps('cuda', 8192):.0f}" if torch.cuda.is_available() else "cuda unavailable"
print(f"{cuda} vs cpu {sps('cpu', 1024):.0f} samples/s (torch {torch.__version__})")
PY
  ) && line ok "reference, PyTorch (not Tunebox) conv net: $REF" || line SKIP "reference, PyTorch: $(echo "$REF" | tail -1)"
else
  line SKIP "reference, PyTorch: python3 has no torch"
fi

# Tunebox (node_modules is set up from the cache first, quietly)
"$DENO" cache --quiet --config "$CONFIG" tools/gpu_smoke.ts tools/gpu_smoke_trial.ts >/dev/null 2>&1
timeout 420 "$DENO" run --allow-all --cached-only --config "$CONFIG" tools/gpu_smoke.ts \
  --config "$CONFIG" --storage "$WORK/results" "${PASS[@]}"
RC=$?
[ $RC -eq 124 ] && line FAIL "tools/gpu_smoke.ts: timed out after 420 s"
echo "gpu_smoke.sh: $((SECONDS - START)) s, exit $RC"
rm -rf "$WORK"
exit $RC
