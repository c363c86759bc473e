// @ts-nocheck: browser code, sent to the page as source text by Function.prototype.toString; the
// DOM types are not part of Deno's library, and the browser tests check it.
/**
 * The report page's script: draws the summary, the sortable trial table and the charts from a
 * {@linkcode ReportData} object, and in the live dashboard refetches it whenever the server says
 * the experiment changed. It is a single self-contained function (no imports, no outside names)
 * because the page gets its source text.
 *
 * @module
 */

/**
 * Draws the report into `#app`; with `opts.live`, redraws at every `data` event of the server.
 *
 * @param initial the report data, or null to fetch it (live).
 * @param opts `{ live, eventsUrl }`.
 */
export function tuneboxClient(initial, opts) {
  const echarts = globalThis.echarts;
  const doc = globalThis.document;
  const state = {
    data: null,
    sort: { key: "id", dir: 1 },
    charts: { scatter: {} },
    lineageParam: null,
    // How the metric axes are scaled: "robust" (outliers clipped to the edge and marked),
    // "full" (every value in range) or "log".
    yScale: "robust",
    renders: 0,
    errors: [],
  };
  globalThis.__tunebox = state;

  // ---------- helpers ----------
  const esc = (s) =>
    String(s).replace(
      /[&<>"']/g,
      (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
    );
  // A trial's id, linked to its folder when it has one.
  const link = (t) => t.link ? `<a href="${esc(t.link)}">${esc(t.id)}</a>` : esc(t.id);
  const fmt = (v) => {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  };
  const fmtTime = (s) => {
    if (s === null || s === undefined || !Number.isFinite(s)) return "";
    if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  };
  const el = (tag, attrs, html) => {
    const e = doc.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) e.setAttribute(k, v);
    if (html !== undefined) e.innerHTML = html;
    return e;
  };
  // Viridis-like stops: the best trials dark, the worst light.
  const STOPS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
  const ramp = (f) => {
    const x = Math.min(1, Math.max(0, f)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(x));
    const h = (s) => [1, 3, 5].map((k) => parseInt(s.slice(k, k + 2), 16));
    const a = h(STOPS[i]), b = h(STOPS[i + 1]);
    const t = x - i;
    return "#" + a.map((v, k) => Math.round(v + (b[k] - v) * t).toString(16).padStart(2, "0"))
      .join("");
  };
  const CLIP_COLOR = "#e66101";

  // ---------- metric axis: robust range, full range or log ----------
  const quantile = (sorted, q) => {
    const x = (sorted.length - 1) * q;
    const i = Math.floor(x);
    return i + 1 < sorted.length ? sorted[i] + (sorted[i + 1] - sorted[i]) * (x - i) : sorted[i];
  };
  /**
   * The metric axis of a chart drawing `values`: its ECharts options, and `place(v)`, which
   * gives where a value is drawn and whether it was clipped. The robust range keeps the values
   * inside Tukey's far fences (3 IQR beyond the quartiles), and only clips when the values outside
   * would squash the rest (they widen the range more than twice): one diverged trial at 14.5
   * among losses of 0.1-0.5 no longer flattens every curve. Log needs positive values.
   */
  function metricAxis(values) {
    const v = values.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) =>
      a - b
    );
    const positive = v.length > 0 && v[0] > 0;
    const mode = state.yScale === "log" && !positive ? "full" : state.yScale;
    const none = { mode, clipped: 0, place: (x) => ({ value: x, clip: 0 }) };
    if (mode === "log") return { ...none, axis: { type: "log", scale: true } };
    if (mode === "full" || v.length < 4) return { ...none, axis: { type: "value", scale: true } };
    const q1 = quantile(v, 0.25), q3 = quantile(v, 0.75);
    const iqr = q3 - q1;
    const inside = v.filter((x) => x >= q1 - 3 * iqr && x <= q3 + 3 * iqr);
    const lo = inside[0], hi = inside[inside.length - 1];
    if (inside.length === v.length || (v[v.length - 1] - v[0]) <= 2 * (hi - lo)) {
      return { ...none, mode: "robust", axis: { type: "value", scale: true } };
    }
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.08 || 1;
    const min = v[0] < lo ? lo - pad : undefined, max = v[v.length - 1] > hi ? hi + pad : undefined;
    const place = (x) =>
      typeof x !== "number" || !Number.isFinite(x)
        ? { value: x, clip: 0 }
        : max !== undefined && x > max
        ? { value: max, clip: 1 }
        : min !== undefined && x < min
        ? { value: min, clip: -1 }
        : { value: x, clip: 0 };
    return {
      mode: "robust",
      clipped: v.filter((x) => place(x).clip).length,
      place,
      axis: {
        type: "value",
        ...(min !== undefined ? { min } : { scale: true }),
        ...(max !== undefined ? { max } : {}),
        axisLabel: { formatter: (x) => fmt(x) },
      },
    };
  }
  /** A clipped point's marker: an orange arrow at the axis edge, pointing where the value is. */
  const clipStyle = (clip) => ({
    symbol: "arrow",
    symbolSize: 12,
    symbolRotate: clip > 0 ? 0 : 180,
    itemStyle: { color: CLIP_COLOR, borderColor: "#fff", borderWidth: 0.5 },
  });
  function scaleNote(ax, what) {
    if (ax.mode === "log") return ` Log scale.`;
    if (!ax.clipped) return "";
    return ` ${ax.clipped} ${what} outside the robust range ${
      ax.clipped === 1 ? "is" : "are"
    } drawn at its edge as orange arrows; hover for the value, or choose "full range" or "log" above.`;
  }
  const CROSS = "path://M2,0 L5,3 L8,0 L10,2 L7,5 L10,8 L8,10 L5,7 L2,10 L0,8 L3,5 L0,2 Z";

  function outcome(t) {
    if (t.status === "error") return "failed";
    if (t.status === "terminated") return t.reason ? "stopped" : "completed";
    return t.status;
  }
  function configHtml(t) {
    const rows = Object.entries(flat(t.config)).map(([k, v]) =>
      `<tr><td>${esc(k)}</td><td>${
        esc(typeof v === "number" ? fmt(v) : JSON.stringify(v))
      }</td></tr>`
    ).join("");
    return `<table class="tip">${rows}</table>`;
  }
  function flat(obj, prefix, out) {
    out = out ?? {};
    for (const [k, v] of Object.entries(obj ?? {})) {
      const key = prefix ? `${prefix}/${k}` : k;
      if (v !== null && typeof v === "object" && !Array.isArray(v)) flat(v, key, out);
      else out[key] = v;
    }
    return out;
  }
  function trialTip(t, extra) {
    return `<b>${esc(t.id)}</b> <span class="st st-${esc(t.status)}">${esc(outcome(t))}</span>` +
      (extra ? `<br>${extra}` : "") + configHtml(t);
  }

  // ---------- chart bookkeeping ----------
  function chart(name, node, option) {
    let c = state.charts[name];
    if (c && c.getDom() !== node) {
      c.dispose();
      c = undefined;
    }
    if (!c) {
      c = echarts.init(node, null, { renderer: "canvas" });
      state.charts[name] = c;
    }
    c.setOption(option, true);
    return c;
  }
  function scatterChart(key, node, option) {
    let c = state.charts.scatter[key];
    if (c && c.getDom() !== node) {
      c.dispose();
      c = undefined;
    }
    if (!c) c = state.charts.scatter[key] = echarts.init(node, null, { renderer: "canvas" });
    c.setOption(option, true);
  }
  function dropChart(name) {
    if (state.charts[name]) {
      state.charts[name].dispose();
      delete state.charts[name];
    }
  }
  function allCharts() {
    return [
      ...Object.entries(state.charts).filter(([k]) => k !== "scatter").map(([, c]) => c),
      ...Object.values(state.charts.scatter),
    ];
  }

  // ---------- layout ----------
  const app = doc.getElementById("app");
  app.innerHTML = `
<header><h1 id="title">Tunebox experiment</h1><div id="live"></div></header>
<div id="summary"></div>
<ul id="warnings"></ul>
<nav>
  <a href="#trials-section">Trials</a><a href="#curves-section">Learning curves</a>
  <a href="#parallel-section">Parallel coordinates</a><a href="#scatter-section">Metric vs parameters</a>
  <a href="#importance-section">Importance</a><a href="#best-section">Best so far</a>
  <a href="#pareto-section" id="pareto-nav">Pareto front</a>
  <a href="#lineage-section" id="lineage-nav">PBT lineage</a>
</nav>
<div id="yscale" role="radiogroup" aria-label="Metric axis">Metric axis:
  <label><input type="radio" name="yscale" value="robust" checked> robust range (outliers marked)</label>
  <label><input type="radio" name="yscale" value="full"> full range</label>
  <label><input type="radio" name="yscale" value="log"> log</label></div>
<section id="trials-section"><h2>Trials</h2>
  <div class="scroll"><table id="trials"><thead></thead><tbody></tbody></table></div></section>
<section id="curves-section"><h2>Learning curves</h2>
  <p class="note" id="curves-note"></p><div class="chart tall" id="chart-curves"></div></section>
<section id="parallel-section"><h2>Parallel coordinates</h2>
  <p class="note" id="parallel-note"></p><div class="chart tall" id="chart-parallel"></div></section>
<section id="scatter-section"><h2>Metric vs each hyperparameter</h2>
  <p class="note" id="scatter-note"></p><div id="scatter-grid"></div></section>
<section id="importance-section"><h2>Parameter importance</h2>
  <p class="note" id="importance-note"></p><div class="chart" id="chart-importance"></div></section>
<section id="best-section"><h2>Best so far</h2>
  <p class="note" id="best-note"></p><div class="chart" id="chart-best"></div></section>
<section id="pareto-section"><h2>Pareto front</h2>
  <p class="note" id="pareto-note"></p><div class="chart" id="chart-pareto"></div></section>
<section id="lineage-section"><h2>PBT lineage</h2>
  <p class="note" id="lineage-note"></p>
  <label>Parameter <select id="lineage-param"></select></label>
  <div class="chart tall" id="chart-lineage"></div><ul id="exploits"></ul></section>
<footer id="footer"></footer>`;
  doc.getElementById("lineage-param").addEventListener("change", (e) => {
    state.lineageParam = e.target.value;
    if (state.data) drawLineage(state.data);
  });
  for (const input of doc.querySelectorAll('#yscale input[name="yscale"]')) {
    input.addEventListener("change", (e) => {
      state.yScale = e.target.value;
      if (state.data) render(state.data);
    });
  }
  globalThis.addEventListener("resize", () => allCharts().forEach((c) => c.resize()));

  // ---------- render ----------
  function render(data) {
    try {
      state.data = data;
      const e = data.experiment;
      doc.title = `Tunebox — ${e.name}`;
      doc.getElementById("title").textContent = e.name;
      const scored = data.trials.filter((t) => t.best !== null);
      const better = (a, b) => (e.mode === "min" ? a < b : a > b);
      const rank = new Map();
      [...scored].sort((a, b) => (better(a.best, b.best) ? -1 : better(b.best, a.best) ? 1 : 0))
        .forEach((t, i) => rank.set(t.id, scored.length > 1 ? i / (scored.length - 1) : 0));
      const color = (t) => (rank.has(t.id) ? ramp(rank.get(t.id) * 0.85) : "#aaa");
      drawSummary(data, scored, better);
      const values = data.trials.flatMap((t) => t.values).filter((v) => v !== null);
      const log = doc.querySelector('#yscale input[value="log"]');
      log.disabled = values.some((v) => v <= 0);
      log.parentElement.title = log.disabled
        ? `${e.metric} has values ≤ 0, which a log axis cannot draw`
        : "";
      for (const input of doc.querySelectorAll('#yscale input[name="yscale"]')) {
        input.checked = input.value === state.yScale;
      }
      drawTable(data);
      drawCurves(data, color);
      drawParallel(data, scored);
      drawScatter(data, scored, color);
      drawImportance(data);
      drawBest(data, scored, better);
      drawPareto(data);
      drawLineage(data, color);
      doc.getElementById("footer").innerHTML = `Generated ${esc(data.generatedAt)} by tunebox ` +
        `from <code>${esc(e.dir)}</code>. Charts: Apache ECharts ${esc(echarts.version)}.`;
      state.renders++;
    } catch (err) {
      state.errors.push(String(err && err.stack || err));
      throw err;
    }
  }

  function drawSummary(data, scored, better) {
    const e = data.experiment;
    const counts = {};
    for (const t of data.trials) counts[outcome(t)] = (counts[outcome(t)] ?? 0) + 1;
    let best;
    for (const t of scored) if (!best || better(t.best, best.best)) best = t;
    const countText = Object.entries(counts).map(([k, n]) => `${n} ${esc(k)}`).join(", ");
    doc.getElementById("summary").innerHTML = `<dl>
<dt>Status</dt><dd><span class="st st-${esc(e.status)}">${esc(e.status)}</span>
  (updated ${esc(e.updatedAt)})</dd>
<dt>Metric</dt><dd><code>${esc(e.metric)}</code> (${
      e.mode === "min" ? "minimised" : "maximised"
    })</dd>
<dt>Searcher / scheduler</dt><dd>${esc(e.searcher)} / ${esc(e.scheduler)}</dd>
<dt>Trials</dt><dd>${data.trials.length}${countText ? ` (${countText})` : ""}</dd>
<dt>Best trial</dt><dd>${
      best
        ? `${link(best)}: ${esc(e.metric)} = <b>${
          fmt(best.best)
        }</b> at iteration ${best.bestIteration} — ${
          esc(
            Object.entries(flat(best.config)).map(([k, v]) =>
              `${k}=${typeof v === "number" ? fmt(v) : JSON.stringify(v)}`
            ).join(", "),
          )
        }`
        : "none yet"
    }</dd></dl>`;
    const w = doc.getElementById("warnings");
    w.innerHTML = data.warnings.map((m) => `<li>${esc(m)}</li>`).join("");
  }

  // ---------- table ----------
  function columns(data) {
    const m = data.experiment.metric;
    return [
      {
        key: "id",
        label: "Trial",
        get: (t) => t.id,
        html: (t) => link(t),
      },
      {
        key: "status",
        label: "Status",
        get: (t) => outcome(t),
        html: (t) => `<span class="st st-${esc(t.status)}">${esc(outcome(t))}</span>`,
      },
      ...data.axes.map((a) => ({
        key: "p:" + a.key,
        label: a.key + (a.scale === "log" ? " (log)" : ""),
        get: (t) => t.params[a.key],
        html: (t) => esc(fmt(t.params[a.key])),
        num: a.scale !== "category",
      })),
      { key: "best", label: `best ${m}`, get: (t) => t.best, html: (t) => fmt(t.best), num: true },
      { key: "last", label: `last ${m}`, get: (t) => t.last, html: (t) => fmt(t.last), num: true },
      {
        key: "iteration",
        label: "iterations",
        get: (t) => t.iteration,
        html: (t) => String(t.iteration),
        num: true,
      },
      { key: "time", label: "time", get: (t) => t.time, html: (t) => fmtTime(t.time), num: true },
      {
        key: "message",
        label: "error / stop reason",
        get: (t) => t.error ?? t.reason ?? "",
        html: (t) => {
          const msg = t.error ?? t.reason ?? "";
          const first = msg.split("\n")[0];
          return `<span class="${t.error ? "err" : ""}" title="${esc(msg)}">${
            esc(first.slice(0, 160))
          }${first.length > 160 || msg.includes("\n") ? "…" : ""}</span>`;
        },
      },
    ];
  }
  function drawTable(data) {
    const cols = columns(data);
    const table = doc.getElementById("trials");
    const head = table.tHead;
    head.innerHTML = "<tr>" +
      cols.map((c) =>
        `<th data-key="${esc(c.key)}" class="${c.num ? "num" : ""}${
          state.sort.key === c.key ? (state.sort.dir > 0 ? " asc" : " desc") : ""
        }" title="Sort by ${esc(c.label)}">${esc(c.label)}</th>`
      ).join("") + "</tr>";
    for (const th of head.querySelectorAll("th")) {
      th.addEventListener("click", () => {
        const key = th.getAttribute("data-key");
        state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
        drawTable(state.data);
      });
    }
    const col = cols.find((c) => c.key === state.sort.key) ?? cols[0];
    const cmp = (a, b) => {
      const x = col.get(a), y = col.get(b);
      const nx = x === null || x === undefined || x === "",
        ny = y === null || y === undefined || y === "";
      if (nx || ny) return nx && ny ? 0 : nx ? 1 : -1; // missing values last, either direction
      const r = typeof x === "number" && typeof y === "number"
        ? x - y
        : String(x).localeCompare(String(y), undefined, { numeric: true });
      return r * state.sort.dir;
    };
    const rows = [...data.trials].sort(cmp);
    table.tBodies[0].innerHTML = rows.map((t) =>
      `<tr data-id="${esc(t.id)}" class="row-${esc(t.status)}">` +
      cols.map((c) => `<td class="${c.num ? "num" : ""}">${c.html(t)}</td>`).join("") + "</tr>"
    ).join("");
  }

  // ---------- learning curves ----------
  function drawCurves(data, color) {
    const e = data.experiment;
    const with_ = data.trials.filter((t) => t.iterations.length);
    const maxIt = Math.max(0, ...with_.map((t) => t.iteration));
    const early = with_.filter((t) => outcome(t) === "stopped" && t.iteration < maxIt).length;
    doc.getElementById("curves-note").innerHTML =
      `${esc(e.metric)} at every report of ${with_.length} trial(s), ${
        with_.reduce((n, t) => n + t.iterations.length, 0)
      } report(s). Line ends: ● completed, ✕ stopped by the scheduler or a stop criterion` +
      `${early ? ` (${early} ended early)` : ""}, ▲ failed, ◆ still running or paused. ` +
      `Hover a point for the trial's config; scroll to zoom.`;
    const node = doc.getElementById("chart-curves");
    const old = state.charts.curves?.getOption()?.dataZoom;
    const ax = metricAxis(with_.flatMap((t) => t.values));
    doc.getElementById("curves-note").innerHTML += esc(scaleNote(ax, "report(s)"));
    const series = with_.map((t) => {
      const c = color(t);
      const o = outcome(t);
      const end = o === "stopped"
        ? { symbol: CROSS, symbolSize: 9 }
        : o === "failed"
        ? { symbol: "triangle", symbolSize: 10 }
        : o === "completed"
        ? { symbol: "circle", symbolSize: 6 }
        : { symbol: "diamond", symbolSize: 10 };
      const n = t.iterations.length;
      return {
        type: "line",
        name: t.id,
        id: t.id,
        data: t.iterations.map((it, k) => {
          const raw = t.values[k];
          const at = ax.place(raw);
          const v = raw === null ? "-" : at.value;
          if (at.clip) return { value: [it, v], raw, ...clipStyle(at.clip) };
          return k === n - 1
            ? {
              value: [it, v],
              ...end,
              itemStyle: {
                color: o === "failed" ? "#d73027" : c,
                borderColor: "#fff",
                borderWidth: 0.5,
              },
            }
            : [it, v];
        }),
        symbol: "circle",
        symbolSize: 3,
        showAllSymbol: true,
        lineStyle: { width: 1.3, color: c },
        itemStyle: { color: c },
        emphasis: { focus: "series", lineStyle: { width: 3 } },
        connectNulls: false,
      };
    });
    chart("curves", node, {
      animation: false,
      grid: { left: 70, right: 30, top: 20, bottom: 70 },
      tooltip: {
        trigger: "item",
        confine: true,
        formatter: (p) => {
          const t = data.trials.find((x) => x.id === p.seriesName);
          const v = Array.isArray(p.value) ? p.value : p.data?.value ?? [];
          const raw = p.data?.raw ?? v[1];
          return t
            ? trialTip(
              t,
              `iteration ${v[0]}: ${esc(e.metric)} = ${esc(fmt(raw))}${
                p.data?.raw !== undefined ? " (outside the range: drawn at its edge)" : ""
              }`,
            )
            : "";
        },
      },
      xAxis: {
        type: "value",
        name: "training_iteration",
        nameLocation: "middle",
        nameGap: 28,
        minInterval: 1,
        min: 0,
      },
      yAxis: { ...ax.axis, name: e.metric },
      dataZoom: [
        {
          type: "inside",
          xAxisIndex: 0,
          ...(old?.[0] ? { start: old[0].start, end: old[0].end } : {}),
        },
        { type: "slider", xAxisIndex: 0, height: 16, bottom: 8 },
      ],
      series,
    });
  }

  // ---------- parallel coordinates ----------
  function drawParallel(data, scored) {
    const e = data.experiment;
    const node = doc.getElementById("chart-parallel");
    const note = doc.getElementById("parallel-note");
    if (!data.axes.length || !scored.length) {
      note.textContent = !data.axes.length
        ? "The space has no tunable hyperparameter."
        : `No trial has reported a finite ${e.metric} yet.`;
      node.style.display = "none";
      dropChart("parallel");
      return;
    }
    node.style.display = "";
    const pax = metricAxis(scored.map((t) => t.best));
    note.textContent = `One line per trial (${scored.length}): its hyperparameters and its best ` +
      `${e.metric}, coloured by that value (darker is better). Log-scale parameters have log axes, ` +
      `choices categorical axes. Drag along an axis to filter.` + scaleNote(pax, "trial(s)");
    const n = data.axes.length;
    const vals = scored.map((t) => pax.place(t.best).value);
    let lo = Math.min(...vals), hi = Math.max(...vals);
    if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
    const colors = e.mode === "min" ? [...STOPS].slice(0, 4) : [...STOPS].slice(0, 4).reverse();
    chart("parallel", node, {
      animation: false,
      parallel: { left: 60, right: 120, top: 50, bottom: 30 },
      parallelAxis: [
        ...data.axes.map((a, i) => ({
          dim: i,
          name: a.key,
          type: a.scale === "log" ? "log" : a.scale === "category" ? "category" : "value",
          ...(a.scale === "category" ? { data: a.categories } : { scale: true }),
          nameTextStyle: { fontSize: 11 },
        })),
        {
          dim: n,
          name: `best ${e.metric}`,
          ...pax.axis,
          nameTextStyle: { fontWeight: "bold" },
        },
      ],
      visualMap: {
        type: "continuous",
        dimension: n,
        min: lo,
        max: hi,
        right: 10,
        top: "middle",
        calculable: true,
        precision: 4,
        inRange: { color: colors },
        text: [e.mode === "min" ? "worse" : "better", e.mode === "min" ? "better" : "worse"],
      },
      tooltip: {
        trigger: "item",
        confine: true,
        formatter: (p) => {
          const t = data.trials.find((x) => x.id === p.name);
          return t ? trialTip(t, `best ${esc(e.metric)} = ${esc(fmt(t.best))}`) : "";
        },
      },
      series: [{
        type: "parallel",
        lineStyle: { width: 1.6, opacity: 0.7 },
        emphasis: { lineStyle: { width: 3, opacity: 1 } },
        data: scored.map((t) => ({
          name: t.id,
          value: [...data.axes.map((a) => t.params[a.key] ?? "-"), pax.place(t.best).value],
        })),
      }],
    });
  }

  // ---------- metric vs each hyperparameter ----------
  function drawScatter(data, scored, color) {
    const e = data.experiment;
    const grid = doc.getElementById("scatter-grid");
    const note = doc.getElementById("scatter-note");
    note.textContent = data.axes.length
      ? `Best ${e.metric} of each trial against each hyperparameter (${scored.length} trial(s)).`
      : "The space has no tunable hyperparameter.";
    const ax = metricAxis(scored.map((t) => t.best));
    if (data.axes.length) note.textContent += scaleNote(ax, "trial(s)");
    const keys = new Set(data.axes.map((a) => a.key));
    for (const [k, c] of Object.entries(state.charts.scatter)) {
      if (!keys.has(k)) {
        c.dispose();
        delete state.charts.scatter[k];
      }
    }
    const existing = new Map([...grid.children].map((d) => [d.getAttribute("data-key"), d]));
    for (const a of data.axes) {
      let node = existing.get(a.key);
      if (!node) {
        node = el("div", { class: "chart small", "data-key": a.key });
        grid.appendChild(node);
      }
      existing.delete(a.key);
      const pts = scored.filter((t) => t.params[a.key] !== null && t.params[a.key] !== undefined);
      scatterChart(a.key, node, {
        animation: false,
        title: undefined,
        grid: { left: 60, right: 16, top: 30, bottom: 44 },
        tooltip: {
          trigger: "item",
          confine: true,
          formatter: (p) => {
            const t = data.trials.find((x) => x.id === p.name);
            return t
              ? trialTip(
                t,
                `${esc(a.key)} = ${esc(fmt(p.value[0]))}, best ${esc(e.metric)} = ${
                  esc(fmt(t.best))
                }${p.data?.clip ? " (outside the range: drawn at its edge)" : ""}`,
              )
              : "";
          },
        },
        xAxis: {
          type: a.scale === "log" ? "log" : a.scale === "category" ? "category" : "value",
          name: a.key + (a.scale === "log" ? " (log)" : ""),
          nameLocation: "middle",
          nameGap: 26,
          ...(a.scale === "category" ? { data: a.categories } : { scale: true }),
        },
        yAxis: { ...ax.axis, name: `best ${e.metric}`, nameTextStyle: { align: "left" } },
        series: [{
          type: "scatter",
          symbolSize: 8,
          data: pts.map((t) => {
            const at = ax.place(t.best);
            return at.clip
              ? {
                name: t.id,
                value: [t.params[a.key], at.value],
                clip: at.clip,
                ...clipStyle(at.clip),
              }
              : { name: t.id, value: [t.params[a.key], t.best], itemStyle: { color: color(t) } };
          }),
        }],
      });
    }
    for (const [, node] of existing) node.remove();
  }

  // ---------- importance ----------
  function drawImportance(data) {
    const imp = data.importance;
    const node = doc.getElementById("chart-importance");
    const note = doc.getElementById("importance-note");
    if (imp.unavailable || !imp.shares.length) {
      note.textContent = `Not available: ${imp.unavailable ?? "no parameters"}.`;
      node.style.display = "none";
      dropChart("importance");
      return;
    }
    node.style.display = "";
    note.textContent = `Method: ${imp.method}, over ${imp.trials} trial(s) and their best ` +
      `${data.experiment.metric}. Shares sum to 100%.`;
    const shares = [...imp.shares].reverse();
    node.style.height = `${Math.max(160, 36 * shares.length + 60)}px`;
    const c = chart("importance", node, {
      animation: false,
      grid: { left: 160, right: 40, top: 10, bottom: 30 },
      tooltip: {
        trigger: "item",
        formatter: (p) => `${esc(p.name)}: ${(p.value * 100).toFixed(1)}%`,
      },
      xAxis: { type: "value", max: 1, axisLabel: { formatter: (v) => `${Math.round(v * 100)}%` } },
      yAxis: { type: "category", data: shares.map((s) => s.key) },
      series: [{
        type: "bar",
        data: shares.map((s) => ({ name: s.key, value: s.share })),
        itemStyle: { color: "#3b528b" },
        label: {
          show: true,
          position: "right",
          formatter: (p) => `${(p.value * 100).toFixed(1)}%`,
        },
      }],
    });
    c.resize();
  }

  // ---------- best so far ----------
  function drawBest(data, scored, better) {
    const e = data.experiment;
    const node = doc.getElementById("chart-best");
    const note = doc.getElementById("best-note");
    if (!scored.length) {
      note.textContent = `No trial has reported a finite ${e.metric} yet.`;
      node.style.display = "none";
      dropChart("best");
      return;
    }
    node.style.display = "";
    const ax = metricAxis(scored.map((t) => t.best));
    note.textContent = `Each trial's best ${e.metric} in the order the searcher proposed them ` +
      `(dots), and the best found so far (line): how the search converged.` +
      scaleNote(ax, "trial(s)");
    const index = new Map(data.trials.map((t, i) => [t.id, i + 1]));
    let run = null;
    const line = [];
    for (const t of scored) {
      if (run === null || better(t.best, run)) run = t.best;
      line.push([index.get(t.id), ax.place(run).value]);
    }
    chart("best", node, {
      animation: false,
      grid: { left: 70, right: 30, top: 20, bottom: 50 },
      tooltip: {
        trigger: "item",
        confine: true,
        formatter: (p) => {
          if (p.seriesIndex === 1) {
            return `best so far after trial ${p.value[0]}: ${esc(fmt(p.value[1]))}`;
          }
          const t = data.trials.find((x) => x.id === p.name);
          return t
            ? trialTip(
              t,
              `best ${esc(e.metric)} = ${esc(fmt(t.best))}${
                p.data?.clip ? " (outside the range: drawn at its edge)" : ""
              }`,
            )
            : "";
        },
      },
      xAxis: {
        type: "value",
        name: "trial (in creation order)",
        nameLocation: "middle",
        nameGap: 28,
        minInterval: 1,
      },
      yAxis: { ...ax.axis, name: e.metric },
      series: [
        {
          type: "scatter",
          name: "trial",
          symbolSize: 7,
          itemStyle: { color: "#21918c", opacity: 0.7 },
          data: scored.map((t) => {
            const at = ax.place(t.best);
            return at.clip
              ? {
                name: t.id,
                value: [index.get(t.id), at.value],
                clip: at.clip,
                ...clipStyle(at.clip),
              }
              : { name: t.id, value: [index.get(t.id), t.best] };
          }),
        },
        {
          type: "line",
          name: "best so far",
          step: "end",
          symbol: "none",
          lineStyle: { width: 2.5, color: "#440154" },
          data: line,
        },
      ],
    });
  }

  // ---------- Pareto front (multi-objective) ----------
  function drawPareto(data) {
    const e = data.experiment;
    const section = doc.getElementById("pareto-section");
    const nav = doc.getElementById("pareto-nav");
    const node = doc.getElementById("chart-pareto");
    const goals = e.objectives;
    if (!goals || goals.length < 2) {
      section.style.display = "none";
      nav.style.display = "none";
      dropChart("pareto");
      return;
    }
    section.style.display = "";
    nav.style.display = "";
    const [gx, gy] = goals;
    const done = data.trials.filter((t) =>
      t.objectives && t.objectives[0] !== null &&
      t.objectives[1] !== null
    );
    const note = doc.getElementById("pareto-note");
    if (!done.length) {
      note.textContent = `No trial has reported finite ${gx.metric} and ${gy.metric} yet.`;
      node.style.display = "none";
      dropChart("pareto");
      return;
    }
    node.style.display = "";
    const front = done.filter((t) => t.pareto);
    note.textContent = `${gx.metric} (${gx.mode === "min" ? "minimised" : "maximised"}) against ` +
      `${gy.metric} (${gy.mode === "min" ? "minimised" : "maximised"}) of each trial's last ` +
      `report. The ${front.length} trial(s) of the Pareto front (dark, joined) are beaten by no ` +
      `trial in every objective` +
      (goals.length > 2
        ? `; the front is over all ${goals.length} objectives, drawn on the first two.`
        : ".");
    const tip = (t) =>
      trialTip(
        t,
        goals.map((g, k) => `${esc(g.metric)} = ${esc(fmt(t.objectives[k]))}`)
          .join("<br>"),
      );
    const line = front.map((t) => [t.objectives[0], t.objectives[1]])
      .sort((a, b) => a[0] - b[0]);
    chart("pareto", node, {
      animation: false,
      grid: { left: 70, right: 30, top: 20, bottom: 50 },
      tooltip: {
        trigger: "item",
        confine: true,
        formatter: (p) => {
          const t = data.trials.find((x) => x.id === p.name);
          return t ? tip(t) : "";
        },
      },
      xAxis: { type: "value", scale: true, name: gx.metric, nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "value", scale: true, name: gy.metric },
      series: [
        {
          type: "scatter",
          name: "trial",
          symbolSize: 7,
          itemStyle: { color: "#9ca3af", opacity: 0.7 },
          data: done.filter((t) => !t.pareto).map((t) => ({
            name: t.id,
            value: [t.objectives[0], t.objectives[1]],
          })),
        },
        {
          type: "scatter",
          name: "Pareto front",
          symbolSize: 10,
          itemStyle: { color: "#440154" },
          data: front.map((t) => ({ name: t.id, value: [t.objectives[0], t.objectives[1]] })),
        },
        {
          type: "line",
          name: "front",
          symbol: "none",
          silent: true,
          lineStyle: { width: 1.5, color: "#440154", type: "dashed" },
          data: goals.length === 2 ? line : [],
        },
      ],
    });
  }

  // ---------- PBT lineage ----------
  function drawLineage(data, color) {
    const section = doc.getElementById("lineage-section");
    const nav = doc.getElementById("lineage-nav");
    const node = doc.getElementById("chart-lineage");
    if (!data.exploits.length || !data.axes.length) {
      section.style.display = "none";
      nav.style.display = "none";
      dropChart("lineage");
      return;
    }
    section.style.display = "";
    nav.style.display = "";
    color = color ?? (() => "#3b528b");
    const select = doc.getElementById("lineage-param");
    const changing = data.axes.filter((a) =>
      data.trials.some((t) =>
        t.segments.some((s) => s.params[a.key] !== t.segments[0].params[a.key])
      )
    );
    const choices = changing.length ? changing : data.axes;
    if (!state.lineageParam || !choices.some((a) => a.key === state.lineageParam)) {
      state.lineageParam = choices[0].key;
    }
    select.innerHTML = choices.map((a) =>
      `<option value="${esc(a.key)}"${a.key === state.lineageParam ? " selected" : ""}>${
        esc(a.key)
      }</option>`
    ).join("");
    const axis = data.axes.find((a) => a.key === state.lineageParam);
    const byId = new Map(data.trials.map((t) => [t.id, t]));
    const valueAt = (t, it) => {
      let v = t.segments[0]?.params[axis.key] ?? null;
      for (const s of t.segments) if (s.fromIteration < it) v = s.params[axis.key];
      return v;
    };
    doc.getElementById("lineage-note").textContent = `The value of a hyperparameter each trial ` +
      `trained with, at every report. Dashed lines are exploits (${data.exploits.length}): a ` +
      `trial copied a better trial's checkpoint and took a perturbed config.`;
    const series = data.trials.filter((t) => t.iterations.length).map((t) => ({
      type: "line",
      name: t.id,
      step: "start",
      symbol: "circle",
      symbolSize: 3,
      lineStyle: { width: 1.3, color: color(t) },
      itemStyle: { color: color(t) },
      emphasis: { focus: "series" },
      data: t.iterations.map((it) => [it, valueAt(t, it) ?? "-"]),
    }));
    for (const x of data.exploits) {
      const t = byId.get(x.trial), d = byId.get(x.donor);
      if (!t) continue;
      const seg = t.segments.find((s) => s.fromIteration === x.iteration && s.donor === x.donor);
      const to = seg ? seg.params[axis.key] : valueAt(t, x.iteration + 1);
      const from = d ? valueAt(d, x.iteration) : to;
      series.push({
        type: "line",
        name: `exploit ${x.trial} ← ${x.donor}`,
        symbol: "arrow",
        symbolSize: 7,
        lineStyle: { type: "dashed", width: 1, color: "#888" },
        itemStyle: { color: "#888" },
        data: [[x.iteration, from ?? "-"], [x.iteration + 0.5, to ?? "-"]],
      });
    }
    chart("lineage", node, {
      animation: false,
      grid: { left: 70, right: 30, top: 20, bottom: 50 },
      tooltip: {
        trigger: "item",
        confine: true,
        formatter: (p) => {
          const t = byId.get(p.seriesName);
          return t
            ? trialTip(t, `iteration ${p.value[0]}: ${esc(axis.key)} = ${esc(fmt(p.value[1]))}`)
            : esc(p.seriesName);
        },
      },
      xAxis: {
        type: "value",
        name: "training_iteration",
        nameLocation: "middle",
        nameGap: 28,
        min: 0,
      },
      yAxis: {
        type: axis.scale === "log" ? "log" : axis.scale === "category" ? "category" : "value",
        name: axis.key,
        ...(axis.scale === "category" ? { data: axis.categories } : { scale: true }),
      },
      series,
    });
    doc.getElementById("exploits").innerHTML =
      data.exploits.slice(-30).map((x) =>
        `<li>${esc(x.trial)} copied ${esc(x.donor)} after iteration ${x.iteration}</li>`
      ).join("") +
      (data.exploits.length > 30 ? `<li>… ${data.exploits.length - 30} earlier</li>` : "");
  }

  // ---------- live ----------
  function setLive(text, cls) {
    const n = doc.getElementById("live");
    n.textContent = text;
    n.className = cls ?? "";
  }
  function startLive() {
    const es = new EventSource(opts.eventsUrl);
    // Events that arrive while a large experiment is being drawn are coalesced: only the latest
    // data is drawn next.
    let latest = null, queued = false, ended = false;
    const draw = () => {
      queued = false;
      const data = latest;
      latest = null;
      if (!data) return;
      if (data.error) setLive(`live — ${data.error}`, "off");
      else {
        render(data);
        if (ended) setLive("experiment ended — this page no longer updates", "off");
        else setLive(`live — updated ${new Date().toLocaleTimeString()}`, "on");
      }
    };
    const take = (e) => {
      latest = JSON.parse(e.data);
      if (!queued) {
        queued = true;
        setTimeout(draw, 0);
      }
    };
    es.addEventListener("data", take);
    es.addEventListener("end", (e) => {
      es.close();
      ended = true;
      take(e);
    });
    es.onerror = () => setLive("live — disconnected, retrying…", "off");
  }

  state.render = render;
  if (initial) render(initial);
  if (opts && opts.live) startLive();
}
