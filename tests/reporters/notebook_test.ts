// The notebook view without Jupyter: the reporter's display messages (one display, then updates
// of the same display_id), hostile trial content shown as text, and the results' MIME bundle.
// tests/notebook_test.ts runs the same code in a real Jupyter on Deno's kernel.
import { deepEqual, equal, match, ok } from "#assert";
import { choice, Tuner, uniform } from "../../mod.ts";
import { inJupyter, notebookReporter } from "../../plugins/reporters/notebook.ts";
import { tableReporter } from "../../plugins/reporters/table.ts";

interface Message {
  type: string;
  content: {
    data: Record<string, string>;
    transient: { display_id: string };
  };
}

Deno.test("notebookReporter shows one HTML output and updates it in place; trial content is text", async () => {
  const storage = await Deno.makeTempDir({ prefix: "tunebox_notebook_unit_" });
  try {
    const messages: Message[] = [];
    const evil = '<img src=x onerror="globalThis.__pwned = 1">\x1b]52;c;aGk=\x07';
    const results = await new Tuner({
      trainable: async (config, session) => {
        for (let i = 0; i < 3; i++) await session.report({ loss: config.x + 1 / (i + 1) });
      },
      space: { x: uniform(0, 1), tag: choice([evil, "plain"]) },
      metric: "loss",
      mode: "min",
      numSamples: 6,
      seed: 2,
      storage,
      name: "nb",
      reporter: notebookReporter({
        totalTrials: 6,
        intervalMs: 0,
        broadcast: (type, content) => {
          messages.push({ type, content } as unknown as Message);
          return Promise.resolve();
        },
      }),
    }).fit();

    equal(messages[0].type, "display_data");
    ok(messages.length > 6, `${messages.length} messages`);
    ok(messages.slice(1).every((m) => m.type === "update_display_data"));
    const ids = new Set(messages.map((m) => m.content.transient.display_id));
    equal(ids.size, 1);
    match([...ids][0], /^tunebox-/);

    const first = messages[0].content.data["text/html"];
    match(first, /data-done="0" data-total="6" data-final="false"/);
    match(first, /width:0\.0%/);
    const last = messages.at(-1)!.content.data["text/html"];
    match(last, /data-done="6" data-total="6" data-final="true"/);
    match(last, /6\/6 trials, finished/);
    const best = results.best();
    match(last, new RegExp(`best loss = [\\d.]+ \\(${best.id}\\)`));
    equal(last.match(/<tr data-trial="/g)?.length, 6);
    ok(!last.includes("<img"), "markup from a config is escaped");
    ok(!last.includes("\x1b"), "control characters are made visible");
    ok(!last.includes("\x07"));

    // `results` in a cell: its MIME bundle.
    const display = (results as unknown as Record<symbol, () => Promise<Record<string, unknown>>>)[
      Symbol.for("Jupyter.display")
    ];
    const bundle = await display.call(results);
    const html = bundle["text/html"] as string;
    match(html, new RegExp(`Best trial <b>${best.id}</b>: loss = <b>`));
    equal(html.match(/<tr data-trial="/g)?.length, 6);
    // Rows best first.
    const order = [...html.matchAll(/<tr data-trial="([^"]+)"/g)].map((m) => m[1]);
    equal(order[0], best.id);
    ok(!html.includes("<img"));
    match(bundle["text/plain"] as string, /^nb: 6 trials \(6 terminated\), best /);

    // `await results.plot()`: the report in a sandboxed frame, nothing fetched.
    const plot = (await results.plot({ height: 500 })).html;
    match(
      plot,
      /^<iframe class="tunebox-plot" sandbox="allow-scripts" style="width:100%;height:500px;/,
    );
    ok(plot.includes('srcdoc="<!doctype html>'));
    ok(!/<script[^>]* src=/.test(plot));
  } finally {
    await Deno.remove(storage, { recursive: true });
  }
});

Deno.test("outside Jupyter tableReporter stays the terminal table", () => {
  equal(inJupyter(), false);
  deepEqual(tableReporter({ write: () => {} }).name, "table");
  deepEqual(tableReporter().name, "table");
});
