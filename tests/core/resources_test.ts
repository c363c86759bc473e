import { deepStrictEqual, ok, rejects, throws } from "#assert";
import {
  type Device,
  discoverGpus,
  parseNvidiaSmiList,
  ResourcePool,
  visibleDevices,
} from "../../core/resources.ts";

const assert = { equal: deepStrictEqual };

function devices(n: number): Device[] {
  return Array.from({ length: n }, (_, index) => ({ index, name: `Sim ${index}` }));
}

Deno.test("ResourcePool packs fractional GPU trials onto the fullest device that fits", () => {
  const pool = new ResourcePool({ cpus: 8, gpus: devices(2) });
  const a = pool.tryAcquire("a", { cpu: 1, gpu: 0.5 });
  const b = pool.tryAcquire("b", { cpu: 1, gpu: 0.25 });
  const c = pool.tryAcquire("c", { cpu: 1, gpu: 0.25 });
  // a, b and c share device 0; device 1 stays whole for a whole-GPU trial.
  assert.equal([a?.gpus, b?.gpus, c?.gpus], [
    [{ index: 0, share: 0.5 }],
    [{ index: 0, share: 0.25 }],
    [{ index: 0, share: 0.25 }],
  ]);
  const d = pool.tryAcquire("d", { cpu: 1, gpu: 1 });
  assert.equal(d?.gpus, [{ index: 1, share: 1 }]);
  assert.equal(pool.tryAcquire("e", { cpu: 1, gpu: 0.1 }), undefined);
  assert.equal(pool.free().gpus, [{ index: 0, share: 0 }, { index: 1, share: 0 }]);
});

Deno.test("ResourcePool counts shares exactly (0.1 + 0.2 + 0.7 fill one device)", () => {
  const pool = new ResourcePool({ cpus: 3, gpus: devices(1) });
  ok(pool.tryAcquire("a", { gpu: 0.1 }));
  ok(pool.tryAcquire("b", { gpu: 0.2 }));
  ok(pool.tryAcquire("c", { gpu: 0.7 }));
  assert.equal(pool.free(), { cpu: 0, gpus: [{ index: 0, share: 0 }] });
});

Deno.test("ResourcePool sets CUDA_VISIBLE_DEVICES per trial, allow-growth only when shared", () => {
  const gpus: Device[] = [
    { index: 0, name: "A", uuid: "GPU-aaaa" },
    { index: 1, name: "B" },
    { index: 2, name: "C" },
  ];
  const pool = new ResourcePool({ cpus: 8, gpus });
  assert.equal(pool.tryAcquire("cpu-only", { cpu: 1 })?.env, { CUDA_VISIBLE_DEVICES: "" });
  assert.equal(pool.tryAcquire("half", { cpu: 1, gpu: 0.5 })?.env, {
    CUDA_VISIBLE_DEVICES: "GPU-aaaa",
    CUDA_DEVICE_ORDER: "PCI_BUS_ID",
    TF_FORCE_GPU_ALLOW_GROWTH: "true",
  });
  assert.equal(pool.tryAcquire("two", { cpu: 1, gpu: 2 })?.env, {
    CUDA_VISIBLE_DEVICES: "1,2",
    CUDA_DEVICE_ORDER: "PCI_BUS_ID",
  });
});

Deno.test("ResourcePool waits for CPUs: a full pool returns undefined, not an error", () => {
  const pool = new ResourcePool({ cpus: 2 });
  ok(pool.tryAcquire("a", { cpu: 1.5 }));
  assert.equal(pool.tryAcquire("b", { cpu: 1 }), undefined);
  ok(pool.tryAcquire("c", { cpu: 0.5 }));
  assert.equal(pool.allocations.map((x) => x.trialId), ["a", "c"]);
});

Deno.test("ResourcePool.release frees a trial's share when it ends or is killed", () => {
  const pool = new ResourcePool({ cpus: 2, gpus: devices(1) });
  ok(pool.tryAcquire("a", { cpu: 1, gpu: 1 }));
  assert.equal(pool.tryAcquire("b", { cpu: 1, gpu: 1 }), undefined);
  assert.equal(pool.release("a"), true); // ended or killed: same call
  assert.equal(pool.release("a"), false);
  assert.equal(pool.allocation("a"), undefined);
  assert.equal(pool.tryAcquire("b", { cpu: 1, gpu: 1 })?.gpus, [{ index: 0, share: 1 }]);
});

Deno.test("ResourcePool pause/resume: a paused trial's share goes to others, then comes back", () => {
  const pool = new ResourcePool({ cpus: 4, gpus: devices(2) });
  ok(pool.tryAcquire("a", { gpu: 1 }));
  ok(pool.tryAcquire("b", { gpu: 1 }));
  pool.release("a"); // pause a
  const c = pool.tryAcquire("c", { gpu: 0.5 });
  assert.equal(c?.gpus, [{ index: 0, share: 0.5 }]);
  assert.equal(pool.tryAcquire("a", { gpu: 1 }), undefined); // resume has to wait
  pool.release("c");
  assert.equal(pool.tryAcquire("a", { gpu: 1 })?.env.CUDA_VISIBLE_DEVICES, "0");
});

Deno.test("ResourcePool.maxConcurrent counts trials of one size in the empty pool", () => {
  const pool = new ResourcePool({ cpus: 16, gpus: devices(2) });
  assert.equal(pool.maxConcurrent({ cpu: 1, gpu: 0.5 }), 4);
  assert.equal(pool.maxConcurrent({ cpu: 1, gpu: 0.3 }), 6); // 3 per device, 0.1 left over
  assert.equal(pool.maxConcurrent({ cpu: 1, gpu: 2 }), 1);
  assert.equal(pool.maxConcurrent({ cpu: 3 }), 5);
  assert.equal(pool.maxConcurrent({}), 16);
  assert.equal(pool.maxConcurrent({ cpu: 0 }), Infinity);
});

Deno.test("ResourcePool rejects a request larger than the pool before any trial starts", () => {
  const pool = new ResourcePool({ cpus: 4, gpus: [{ index: 0, name: "NVIDIA H100" }] });
  throws(() => pool.tryAcquire("a", { gpu: 2 }), {
    name: "RangeError",
    message: "A trial asks for resources.gpu = 2 but only 1 GPU(s) exist (0: NVIDIA H100): " +
      'lower resources.gpu, or name the devices with the "gpus" option or the TUNEBOX_GPUS ' +
      "variable",
  });
  throws(() => new ResourcePool({ cpus: 2 }).check({ gpu: 0.5 }), {
    name: "RangeError",
    message: /resources\.gpu = 0\.5 but no GPU was found/,
  });
  throws(() => pool.maxConcurrent({ cpu: 5 }), {
    name: "RangeError",
    message: "A trial asks for resources.cpu = 5 but the pool has 4 CPU(s): lower " +
      "resources.cpu or raise the pool's CPUs",
  });
});

Deno.test("ResourcePool rejects malformed requests and options with messages naming them", () => {
  const pool = new ResourcePool({ cpus: 4, gpus: devices(4) });
  throws(() => pool.check({ gpu: 1.5 }), {
    name: "RangeError",
    message: /resources\.gpu must be at most 1 or a whole number, got 1\.5/,
  });
  throws(() => pool.check({ cpu: -1 }), {
    name: "RangeError",
    message: "resources.cpu must be a finite number >= 0, got -1",
  });
  throws(() => pool.check({ gpu: NaN }), {
    name: "RangeError",
    message: "resources.gpu must be a finite number >= 0, got NaN",
  });
  throws(() => pool.check({ gpu: 0.00001 }), {
    name: "RangeError",
    message: "resources.gpu must be 0 or at least 0.0001, got 0.00001",
  });
  ok(pool.tryAcquire("a", {}));
  throws(() => pool.tryAcquire("a", {}), {
    name: "TypeError",
    message: 'Trial "a" already holds resources; release them before acquiring again',
  });
  throws(() => new ResourcePool({ cpus: 0 }), {
    name: "RangeError",
    message: 'ResourcePool option "cpus" must be a positive finite number, got 0',
  });
  throws(() => new ResourcePool({ cpus: 1, gpus: [...devices(1), ...devices(1)] }), {
    name: "RangeError",
    message: 'ResourcePool option "gpus" lists device 0 twice',
  });
});

Deno.test("parseNvidiaSmiList reads names and UUIDs and skips MIG lines", () => {
  const text = [
    "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-6f2c1b7e-0d1e-4c1a-9a51-2b1f9e0c7d11)",
    "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-1d2e)",
    "  MIG 1g.5gb     Device  0: (UUID: MIG-7c3b)",
    "GPU 2: Tesla T4",
    "",
  ].join("\n");
  assert.equal(parseNvidiaSmiList(text), [
    { index: 0, name: "NVIDIA H100 80GB HBM3", uuid: "GPU-6f2c1b7e-0d1e-4c1a-9a51-2b1f9e0c7d11" },
    { index: 1, name: "NVIDIA A100-SXM4-40GB", uuid: "GPU-1d2e" },
    { index: 2, name: "Tesla T4" },
  ]);
  assert.equal(parseNvidiaSmiList("No devices found.\n"), []);
});

Deno.test("visibleDevices keeps the devices the driver's CUDA_VISIBLE_DEVICES names", () => {
  const all: Device[] = [
    { index: 0, name: "A", uuid: "GPU-aaaa-1111" },
    { index: 1, name: "B", uuid: "GPU-bbbb-2222" },
    { index: 2, name: "C" },
  ];
  assert.equal(visibleDevices(all, undefined), all);
  assert.equal(visibleDevices(all, "2,0").map((d) => d.index), [2, 0]);
  assert.equal(visibleDevices(all, "GPU-bbbb").map((d) => d.index), [1]);
  assert.equal(visibleDevices(all, ""), []);
  assert.equal(visibleDevices(all, "-1"), []);
  assert.equal(visibleDevices(all, "0,7,1").map((d) => d.index), [0]); // CUDA stops at 7
});

Deno.test("discoverGpus takes the gpus option, then TUNEBOX_GPUS", async () => {
  assert.equal(await discoverGpus({ gpus: 0 }), []);
  assert.equal((await discoverGpus({ gpus: 2 })).map((d) => d.name), ["GPU 0", "GPU 1"]);
  const listed = [{ index: 3, name: "B" }, { index: 1, name: "A" }];
  assert.equal((await discoverGpus({ gpus: listed })).map((d) => d.index), [1, 3]);
  assert.equal(
    await discoverGpus({ env: { TUNEBOX_GPUS: "3" } }),
    devices(3).map((d) => ({
      ...d,
      name: `GPU ${d.index}`,
    })),
  );
  assert.equal(await discoverGpus({ env: { TUNEBOX_GPUS: "A100, H100" } }), [
    { index: 0, name: "A100" },
    { index: 1, name: "H100" },
  ]);
});

Deno.test("discoverGpus rejects a malformed TUNEBOX_GPUS or gpus option", async () => {
  await rejects(() => discoverGpus({ env: { TUNEBOX_GPUS: "A100,,B" } }), {
    name: "RangeError",
    message: 'TUNEBOX_GPUS must be a count ("2") or comma-separated device names ("A100,A100"), ' +
      'got "A100,,B"',
  });
  await rejects(() => discoverGpus({ gpus: 1.5 }), {
    name: "RangeError",
    message: 'option "gpus" must be a whole number of devices >= 0, got 1.5',
  });
});

Deno.test("discoverGpus without nvidia-smi on PATH finds no GPU and does not throw", async () => {
  // Runs the real lookup in a child whose PATH has no nvidia-smi.
  const script = `import { discoverGpus } from ${
    JSON.stringify(
      new URL("../../core/resources.ts", import.meta.url).href,
    )
  };
const warnings = [];
console.log(JSON.stringify({ gpus: await discoverGpus({ warn: (m) => warnings.push(m) }), warnings }));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    clearEnv: true,
    env: { PATH: "/nonexistent", HOME: Deno.env.get("HOME") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  ok(out.success, stderr);
  assert.equal(JSON.parse(new TextDecoder().decode(out.stdout)), { gpus: [], warnings: [] });
});
