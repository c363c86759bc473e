// The Ray executor's pieces that need no cluster: Ray's error bodies in one line, the placement
// check, the YAML `executor: { name: ray }` spec (saved without a token), bad options, and
// `.ray_jobs` kept by a prepare() that could not reach the cluster.
import { deepEqual, equal, match, throws } from "#assert";
import { rayErrorLine, type RayNode, unplaceable } from "../../plugins/executors/_ray_client.ts";
import { rayExecutor } from "../../plugins/executors/ray.ts";
import { parseExperiment } from "../../tuner/experiment_file.ts";
import { join } from "../../core/_path.ts";
import { ConfigError } from "../../core/errors.ts";

// Bodies as Ray 2.52's dashboard answers them (captured from the test cluster).
const DUPLICATE = `Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/ray/dashboard/modules/job/job_head.py", line 135, in submit_job_internal
    await self._raise_error(resp)
RuntimeError: Request failed with status code 400: Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/ray/dashboard/modules/job/job_manager.py", line 542, in submit_job
    raise ValueError(
ValueError: Job with submission_id x1 already exists. Please use a different submission_id.
.
`;
const BAD_TYPE = `Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/ray/dashboard/modules/job/common.py", line 510, in __post_init__
    raise TypeError(
TypeError: entrypoint_num_cpus must be a number, got <class 'str'>
`;
const PENDING_DELETE = `Traceback (most recent call last):
  File "/venv/ray/dashboard/modules/job/job_manager.py", line 641, in delete_job
    raise RuntimeError(
RuntimeError: Attempted to delete job 'p1', but it is in a non-terminal state PENDING.
.
`;

Deno.test("rayErrorLine turns Ray's tracebacks and plain-text errors into one line", () => {
  equal(
    rayErrorLine(DUPLICATE),
    "Job with submission_id x1 already exists. Please use a different submission_id.",
  );
  equal(rayErrorLine(BAD_TYPE), "entrypoint_num_cpus must be a number, got <class 'str'>");
  equal(
    rayErrorLine(PENDING_DELETE),
    "Attempted to delete job 'p1', but it is in a non-terminal state PENDING.",
  );
  equal(
    rayErrorLine("Forbidden: Invalid authentication token"),
    "Forbidden: Invalid authentication token",
  );
  equal(rayErrorLine("Job nope does not exist\n"), "Job nope does not exist");
  equal(rayErrorLine(""), "(no message)");
  equal(rayErrorLine("x".repeat(1000)).length, 403);
});

Deno.test("unplaceable names the resource no alive node has enough of", () => {
  const nodes: RayNode[] = [
    { ip: "10.0.0.2", nodeId: "a", alive: true, resources: { CPU: 4, node1: 100 } },
    { ip: "10.0.0.3", nodeId: "b", alive: true, resources: { CPU: 4, GPU: 2, node2: 100 } },
    { ip: "10.0.0.4", nodeId: "c", alive: false, resources: { CPU: 64, tpu: 8 } },
  ];
  equal(unplaceable({ CPU: 1, GPU: 0.5 }, nodes), undefined);
  equal(unplaceable({ CPU: 1, node1: 1 }, nodes), undefined);
  equal(unplaceable({ CPU: 1, tpu: 1 }, nodes), 'no node has the resource "tpu" (asked 1)');
  equal(unplaceable({ CPU: 8 }, nodes), 'asked 8 "CPU" but the largest node has 4');
  match(unplaceable({ GPU: 1, node1: 1 }, nodes)!, /no single node has all of/);
  equal(unplaceable({ CPU: 1 }, []), "the cluster has no alive node");
});

Deno.test("YAML executor: { name: ray } makes a Ray executor whose saved spec has no token", async () => {
  const o = await parseExperiment(
    [
      "trainable: ./train.ts",
      "metric: loss",
      "mode: min",
      "space: { x: { uniform: [0, 1] } }",
      "resources: { cpu: 2, gpu: 0.5, custom: { node2: 1 } }",
      "executor: { name: ray, address: 'http://head:8265', pending_timeout_ms: 5000 }",
    ].join("\n"),
    "/tmp/exp.yaml",
  );
  equal(o.executor?.name, "ray");
  const spec = (o.executor as unknown as { spec: { name: string; options: object } }).spec;
  equal(spec.name, "ray");
  equal(JSON.stringify(spec.options), '{"address":"http://head:8265","pendingTimeoutMs":5000}');
  equal(JSON.stringify(o.resources), '{"cpu":2,"gpu":0.5,"custom":{"node2":1}}');
  // A code-built executor saves its spec too, without the token.
  const code = rayExecutor("/tmp/train.ts", { address: "http://h:8265", token: "secret" });
  equal(JSON.stringify((code as unknown as { spec: object }).spec).includes("secret"), false);
  const err = await parseExperiment(
    "trainable: ./train.ts\nmetric: loss\nmode: min\nspace: {}\nexecutor: { name: ray, adress: x }\n",
    "/tmp/exp.yaml",
  ).then(() => undefined, (e) => e);
  equal(err instanceof ConfigError, true);
  match(String(err.message), /exp\.yaml:5:.*Unknown key "executor\.adress".*address/);
});

Deno.test("rayExecutor refuses a bad address or deno option when built", () => {
  throws(() => rayExecutor("/tmp/t.ts", { address: "head:8265" }), TypeError, /http\(s\) URL/);
  throws(
    () => rayExecutor("/tmp/t.ts", { deno: "deno" }),
    TypeError,
    /"path", "pip" or an absolute/,
  );
});

Deno.test("a prepare() that cannot reach the dashboard keeps .ray_jobs: its jobs are stopped by the next driver", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tunebox-ray-jobs-" });
  try {
    // What a driver killed with -9 left: the jobs it submitted and did not delete.
    const listing = "tunebox-0badf00d-t_00000-1\ntunebox-0badf00d-t_00001-2\n";
    await Deno.writeTextFile(join(dir, ".ray_jobs"), listing);
    // An address nothing listens on.
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = free.addr.port;
    free.close();
    const logged: string[] = [];
    const ex = rayExecutor("/tmp/train.ts", {
      address: `http://127.0.0.1:${port}`,
      log: (m) => logged.push(m),
    });
    const err = await ex.prepare!({ experimentDir: dir }).then(() => undefined, (e) => e);
    match(String(err?.message), /Cannot reach the Ray dashboard at http:\/\/127\.0\.0\.1:/);
    await ex.close!();
    // The leftovers were never stopped: the list stays for the next driver of this experiment.
    equal(await Deno.readTextFile(join(dir, ".ray_jobs")), listing);
    deepEqual(logged, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a dashboard that cannot tell a leftover job's state fails prepare() and keeps .ray_jobs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tunebox-ray-jobs-" });
  // A dashboard that answers the version and the job list, then fails on the job's state.
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/api/version") return Response.json({ ray_version: "2.52.1" });
    if (path === "/api/jobs/" && req.method === "GET") return Response.json([]);
    return new Response("the GCS is restarting", { status: 503 });
  });
  try {
    const listing = "tunebox-0badf00d-t_00000-1\n";
    await Deno.writeTextFile(join(dir, ".ray_jobs"), listing);
    const trainable = join(dir, "train.ts");
    await Deno.writeTextFile(trainable, "export default () => {};\n");
    const ex = rayExecutor(trainable, { address: `http://127.0.0.1:${server.addr.port}` });
    const err = await ex.prepare!({ experimentDir: dir }).then(() => undefined, (e) => e);
    match(
      String(err?.message),
      /Cannot tell whether Ray job tunebox-0badf00d-t_00000-1, left by an earlier driver .*\.ray_jobs is kept/s,
    );
    await ex.close!();
    equal(await Deno.readTextFile(join(dir, ".ray_jobs")), listing);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
