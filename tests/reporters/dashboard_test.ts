import { deepEqual, equal, match, ok, rejects, throws } from "#assert";
import { join } from "node:path";
import {
  dashboardCallback,
  dashboardCommand,
  serveDashboard,
} from "../../plugins/reporters/dashboard.ts";
import { Tuner, uniform } from "../../mod.ts";
import type { Callback } from "../../core/plugin.ts";
import { stoppingExperiment } from "../fixtures/report/experiments.ts";
import type { ReportData } from "../../plugins/reporters/_html_data.ts";
import { chartCounts, launchChromium, watchConsole } from "./_browser.ts";
import { findPluginFactory } from "../../tuner/plugin_table.ts";

const storage = await Deno.makeTempDir({ prefix: "tunebox_dashboard_test_" });
const finished = await stoppingExperiment(storage, "finished", 6);

Deno.test({
  name: "dashboardCallback serves the running experiment; a new report appears without reloading",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const listening = Promise.withResolvers<string>();
    const next = Promise.withResolvers<void>();
    const dashboard = dashboardCallback({ port: 0, onListen: (url) => listening.resolve(url) });
    const fit = new Tuner({
      trainable: async (config, session) => {
        await session.report({ loss: (config.x - 1) ** 2 + 1 });
        await next.promise; // the test lets the second report through once the page is open
        await session.report({ loss: (config.x - 1) ** 2 + 0.5 });
      },
      space: { x: uniform(-2, 3) },
      metric: "loss",
      mode: "min",
      numSamples: 1,
      seed: 1,
      reporter: false,
      storage,
      name: "live",
      callbacks: [dashboard],
    }).fit();
    const browser = await launchChromium();
    try {
      const url = await listening.promise;
      match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      equal(dashboard.url, url);
      const page = await browser.context.newPage();
      const problems = watchConsole(page);
      let navigations = 0;
      page.on("framenavigated", () => navigations++);
      await page.goto(url);
      await page.waitForFunction(() =>
        // deno-lint-ignore no-explicit-any
        (globalThis as any).__tunebox?.data?.trials[0]?.iterations.length === 1
      );
      deepEqual((await chartCounts(page)).curves, [1]);
      match(await page.innerText("#live"), /^live — updated /);
      // deno-lint-ignore no-explicit-any
      await page.evaluate(() => ((globalThis as any).__stillHere = true));
      const navigated = navigations;

      next.resolve();
      await page.waitForFunction(() =>
        // deno-lint-ignore no-explicit-any
        (globalThis as any).__tunebox?.data?.trials[0]?.iterations.length === 2
      );
      deepEqual((await chartCounts(page)).curves, [2]);
      equal(navigations, navigated, "the page did not reload");
      // deno-lint-ignore no-explicit-any
      equal(await page.evaluate(() => (globalThis as any).__stillHere), true);
      equal(await page.$$eval("#trials tbody tr", (rows) => rows.length), 1);

      // The experiment ends: the page is told, and the server closes.
      await fit;
      await page.waitForFunction(() =>
        // deno-lint-ignore no-explicit-any
        (globalThis as any).document.getElementById("live").textContent.startsWith(
          "experiment ended",
        )
      );
      equal(dashboard.dashboard, undefined);
      deepEqual(problems, []);
    } finally {
      next.resolve();
      await browser.close();
    }
  },
});

Deno.test("serveDashboard is read-only, answers loopback hosts only, and serves trial files without symlinks", async () => {
  const ac = new AbortController();
  const d = await serveDashboard(finished, { port: 0, signal: ac.signal, onListen: () => {} });
  try {
    match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(d.url);
    equal(page.status, 200);
    match(await page.text(), /<title>Tunebox dashboard<\/title>/);
    const data = await (await fetch(`${d.url}api/data`)).json();
    equal(data.trials.length, 6);
    equal(data.trials[0].link, `trials/${data.trials[0].id}/`);

    const post = await fetch(`${d.url}api/data`, { method: "POST", body: "{}" });
    equal(post.status, 405);
    equal(await post.text(), "The dashboard is read-only");

    // fetch() sets Host itself: a raw request, as a rebound DNS name would send it.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
    await conn.write(
      new TextEncoder().encode(
        "GET /api/data HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
      ),
    );
    const reply = await new Response(conn.readable).text();
    match(reply, /^HTTP\/1\.1 403 Forbidden\r\n/);
    match(reply, /Unexpected Host header$/);

    const id = data.trials[0].id;
    const listing = await fetch(`${d.url}trials/${id}/`);
    match(await listing.text(), /<a href="result\.jsonl">result\.jsonl<\/a>/);
    const params = await fetch(`${d.url}trials/${id}/params.json`);
    deepEqual(
      await params.json(),
      JSON.parse(await Deno.readTextFile(join(finished, id, "params.json"))),
    );

    await Deno.symlink("/etc/passwd", join(finished, id, "leak.txt"));
    const leak = await fetch(`${d.url}trials/${id}/leak.txt`);
    equal(leak.status, 403);
    equal(await leak.text(), "Symbolic links are not served");
    await Deno.remove(join(finished, id, "leak.txt"));
    for (
      const bad of [
        `trials/${id}/../experiment.json`,
        "trials/%2e%2e/experiment.json",
        `trials/${id}/x%2F..%2F..%2Fexperiment.json`,
        "nope",
      ]
    ) {
      const r = await fetch(`${d.url}${bad}`);
      equal(r.status, 404, bad);
      await r.body?.cancel();
    }
  } finally {
    ac.abort();
    await d.finished;
  }
});

Deno.test("serveDashboard streams the data at connection, at every change, and at the end", async () => {
  const dir = join(await Deno.makeTempDir(), "copy");
  await Deno.mkdir(dir);
  await Deno.copyFile(join(finished, "experiment.json"), join(dir, "experiment.json"));
  const d = await serveDashboard(dir, { port: 0, pollMs: 20, onListen: () => {} });
  const res = await fetch(`${d.url}api/events`);
  equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const nextEvent = async (): Promise<{ event: string; data: ReportData }> => {
    for (;;) {
      const end = buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) return { event, data: JSON.parse(data) };
        continue; // "retry:" or a keep-alive comment
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the stream ended");
      buffer += value;
    }
  };
  try {
    const first = await nextEvent();
    equal(first.event, "data");
    equal(first.data.trials.length, 0);
    const created = { t: 1, trial: "a_00000", event: "created", config: { lr: 0.01 } };
    await Deno.writeTextFile(join(dir, "trials.jsonl"), JSON.stringify(created) + "\n");
    const second = await nextEvent();
    equal(second.event, "data");
    deepEqual(second.data.trials.map((t) => t.id), ["a_00000"]);
    await d.end();
    const last = await nextEvent();
    equal(last.event, "end");
    equal(last.data.trials.length, 1);
    equal((await reader.read()).done, true);
  } finally {
    await reader.cancel().catch(() => {});
    await d.close();
  }
});

Deno.test("serveDashboard on a folder that is not an experiment says so", async () => {
  await rejects(serveDashboard(storage, { port: 0, onListen: () => {} }), {
    name: "TuneError",
    message: new RegExp(`^"${storage}" is a storage folder, not an experiment folder; it holds`),
  });
});

Deno.test("dashboard options are checked when built", () => {
  throws(() => dashboardCallback({ port: 70000 }), {
    name: "RangeError",
    message:
      'dashboardCallback: "port" must be an integer from 0 to 65535 (0: any free port), got 70000',
  });
  throws(() => dashboardCallback({ hostname: "" }), {
    name: "TypeError",
    message: 'dashboardCallback: "hostname" must be a non-empty string such as "127.0.0.1", got ""',
  });
  throws(() => dashboardCallback({ prot: 1 } as never), {
    name: "TypeError",
    message:
      'dashboardCallback: unknown option "prot" (did you mean "port"?); expected one of port, hostname, signal, pollMs, onListen, keepOpen',
  });
  throws(() => dashboardCallback({ pollMs: 0 }), {
    name: "RangeError",
    message: 'dashboardCallback: "pollMs" must be a positive number of milliseconds, got 0',
  });
});

Deno.test("a YAML experiment can name the dashboard among its loggers", async () => {
  const factory = await findPluginFactory("callback", "dashboard");
  if (!factory) throw new Error("the dashboard is not a callback name");
  const cb = factory({ name: "dashboard", port: 0, keepOpen: true }) as Callback;
  equal(cb.name, "dashboard");
  throws(() => factory({ port: "80" }), {
    message:
      'dashboardCallback: "port" must be an integer from 0 to 65535 (0: any free port), got "80"',
  });
});

Deno.test("dashboardCommand serves until stopped, and explains bad input", async () => {
  const out: string[] = [], err: string[] = [];
  const io = { stdout: (s: string) => out.push(s), stderr: (s: string) => err.push(s) };
  const ac = new AbortController();
  const printed = Promise.withResolvers<string>();
  const running = dashboardCommand([finished, "--port", "0"], {
    stdout: (s) => {
      out.push(s);
      printed.resolve(s);
    },
    stderr: io.stderr,
    signal: ac.signal,
  });
  const line = await printed.promise;
  const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(line)![1];
  equal(line, `Dashboard of ${finished}: ${url} (Ctrl-C to stop)`);
  equal((await (await fetch(`${url}api/data`)).json()).trials.length, 6);
  ac.abort();
  equal(await running, 0);

  equal(await dashboardCommand([finished, "--port", "x"], io), 2);
  equal(err.at(-1), 'tunebox dashboard: --port must be an integer from 0 to 65535, got "x"');
  equal(await dashboardCommand([], io), 2);
  match(err.at(-1)!, /^tunebox dashboard: expected one experiment folder, got 0\n\nUsage:/);
  equal(await dashboardCommand([join(storage, "missing"), "--port", "0"], io), 1);
  match(err.at(-1)!, /^tunebox dashboard: ".*missing" does not exist; pass an experiment folder/);
  ok(out.length >= 1);
});
