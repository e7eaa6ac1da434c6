// Navette dashboard: polls /api/dashboard and redraws the topology, the table, the charts and the events.
"use strict";
(function () {
  const palette = ["#2f6fdc", "#2f9e5b", "#d98a06", "#8e44ad", "#d64545", "#16a2b8", "#6b7785", "#c2185b"];
  const stateColor = { streaming: "#2f9e5b", copying: "#2f6fdc", initializing: "#2f6fdc", warning: "#d98a06", stopped: "#9aa5b1", unknown: "#9aa5b1" };
  const failedColor = "#d64545";
  const charts = {};
  let refreshMs = 5000;

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svgEl = (tag, attrs) => {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  };

  function bytes(b) {
    if (b === null || b === undefined) return "–";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0, v = b;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }
  const secs = (s) => s === null || s === undefined ? "–" : s < 10 ? s.toFixed(1) + " s" : s < 3600 ? Math.round(s) + " s" : (s / 3600).toFixed(1) + " h";
  const rate = (r) => r >= 100 ? Math.round(r).toLocaleString("en") : r.toFixed(1);

  /** The state a subscription is drawn with: its own, or "warning" when streaming over a threshold. */
  function shownState(s) {
    if (s.state === "streaming" && s.warnings.length > 0) return "warning";
    return s.state;
  }
  const colorOf = (state) => stateColor[state] || failedColor;

  /** Nodes in columns by their depth from the origins; a mesh (a cycle) is drawn on a circle instead. */
  function layout(nodes, subs, w, h) {
    const depth = Object.fromEntries(nodes.map((n) => [n, 0]));
    let changed = true, rounds = 0;
    while (changed && rounds <= nodes.length) {
      changed = false; rounds++;
      for (const s of subs) if (depth[s.to] < depth[s.from] + 1) { depth[s.to] = depth[s.from] + 1; changed = true; }
    }
    const pos = {};
    if (changed) {
      nodes.forEach((n, i) => {
        const a = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
        pos[n] = { x: w / 2 + Math.cos(a) * (w / 2 - 70), y: h / 2 + Math.sin(a) * (h / 2 - 40) };
      });
      return pos;
    }
    const max = Math.max(0, ...Object.values(depth));
    const columns = {};
    for (const n of nodes) (columns[depth[n]] = columns[depth[n]] || []).push(n);
    for (const [d, list] of Object.entries(columns)) {
      list.forEach((n, i) => {
        pos[n] = { x: max === 0 ? w / 2 : 70 + (d * (w - 140)) / max, y: ((i + 1) * h) / (list.length + 1) };
      });
    }
    return pos;
  }

  function drawGraph(data) {
    const svg = $("graph");
    const w = svg.clientWidth || 600, h = svg.clientHeight || 250, r = 28;
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.replaceChildren();
    const defs = svgEl("defs");
    const colors = new Set([...Object.values(stateColor), failedColor]);
    for (const c of colors) {
      const m = svgEl("marker", { id: "arrow" + c.slice(1), viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
      m.appendChild(svgEl("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: c }));
      defs.appendChild(m);
    }
    svg.appendChild(defs);
    const pos = layout(data.nodes, data.subscriptions, w, h);
    const pairs = new Set(data.subscriptions.map((s) => s.from + ">" + s.to));
    for (const s of data.subscriptions) {
      const a = pos[s.from], b = pos[s.to];
      if (!a || !b) continue;
      const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
      const ux = dx / len, uy = dy / len;
      const bend = pairs.has(s.to + ">" + s.from) ? 28 : 0;
      const x1 = a.x + ux * r, y1 = a.y + uy * r, x2 = b.x - ux * (r + 3), y2 = b.y - uy * (r + 3);
      const cx = (x1 + x2) / 2 - uy * bend, cy = (y1 + y2) / 2 + ux * bend;
      const c = colorOf(shownState(s));
      const path = svgEl("path", { class: "edge", d: `M ${x1} ${y1} Q ${cx} ${cy} ${x2} ${y2}`, stroke: c, "marker-end": `url(#arrow${c.slice(1)})`, "data-subscription": s.name, "data-state": s.state });
      const title = svgEl("title"); title.textContent = `${s.name}: ${s.state}${s.error ? " – " + s.error : ""}`;
      path.appendChild(title);
      svg.appendChild(path);
      const label = svgEl("text", { class: "edge-label", x: cx, y: cy - 6, "text-anchor": "middle" });
      label.textContent = `${s.name} · ${s.state === "streaming" ? "lag " + secs(s.lag_seconds) : s.state}`;
      svg.appendChild(label);
    }
    for (const n of data.nodes) {
      const p = pos[n];
      const down = data.subscriptions.some((s) => s.error && (s.error.startsWith(`target ${n}:`) || s.error.startsWith(`origin ${n}:`)));
      const g = svgEl("g", { class: "node", "data-node": n, transform: `translate(${p.x},${p.y})` });
      g.appendChild(svgEl("circle", { r, fill: down ? failedColor : "#14213d" }));
      const t = svgEl("text", { y: r + 17 }); t.textContent = n;
      g.appendChild(t);
      const role = svgEl("text", { y: 5, fill: "#fff", style: "fill:#fff;font-size:11px" });
      role.textContent = data.subscriptions.some((s) => s.to === n) ? (data.subscriptions.some((s) => s.from === n) ? "relay" : "replica") : "origin";
      g.appendChild(role);
      svg.appendChild(g);
    }
  }

  function drawTable(data) {
    const body = $("subs");
    body.replaceChildren();
    for (const s of data.subscriptions) {
      const tr = el("tr", { "data-subscription": s.name });
      const name = el("td");
      name.appendChild(el("div", {}, s.name));
      name.appendChild(el("div", { class: "sub-route" }, `${s.from} → ${s.to}`));
      tr.appendChild(name);
      const st = el("td");
      const shown = shownState(s);
      st.appendChild(el("span", { class: "state s-" + shown.replace(" ", "-") }, shown === "warning" ? "streaming ⚠" : s.state));
      tr.appendChild(st);
      tr.appendChild(el("td", { class: "num" }, bytes(s.lag_bytes)));
      tr.appendChild(el("td", { class: "num" }, secs(s.lag_seconds)));
      const samples = data.samples[s.name];
      const lastRate = samples && samples.rows_per_second.length ? samples.rows_per_second[samples.rows_per_second.length - 1] : s.rows_per_second;
      tr.appendChild(el("td", { class: "num" }, rate(lastRate)));
      const wal = el("td", { class: "num" }, bytes(s.retained_wal_bytes));
      if (s.retained_wal_bytes > s.wal_retention_warn_bytes) wal.style.color = "#b36b00";
      tr.appendChild(wal);
      tr.appendChild(el("td", { class: "num" }, String(data.restarts[s.name] ?? "–")));
      const conflicts = data.conflicts[s.name];
      tr.appendChild(el("td", { class: "num" }, conflicts ? String(Object.values(conflicts).reduce((a, b) => a + b, 0)) : "–"));
      body.appendChild(tr);
    }
    const copies = $("copies");
    copies.replaceChildren();
    for (const s of data.subscriptions.filter((x) => x.copy.length > 0)) {
      const box = el("div", { class: "copy" });
      box.appendChild(el("strong", {}, `${s.name}: initial copy, ${s.copy.filter((c) => c.finished).length}/${s.copy.length} tables`));
      for (const c of s.copy) {
        const pct = c.fraction === null ? null : Math.round(c.fraction * 100);
        box.appendChild(el("div", {}, `${c.table} – ${c.rows_copied.toLocaleString("en")} rows, ${bytes(c.bytes_copied)}${c.finished ? " (done)" : pct !== null ? ` (${pct}%)` : ""}`));
        const bar = el("div", { class: "bar" });
        const fill = el("i");
        fill.style.width = (c.finished ? 100 : pct ?? 0) + "%";
        bar.appendChild(fill);
        box.appendChild(bar);
      }
      copies.appendChild(box);
    }
    const warnings = $("warnings");
    warnings.replaceChildren();
    for (const s of data.subscriptions) {
      if (s.error) warnings.appendChild(el("li", { class: "error" }, `${s.name}: ${s.error}`));
      for (const w of s.warnings) warnings.appendChild(el("li", {}, `${s.name}: ${w}`));
    }
  }

  /** One column per sample time across subscriptions (they are sampled together), nulls where one has none. */
  function columns(data, field) {
    const names = data.subscriptions.map((s) => s.name);
    const times = [...new Set(names.flatMap((n) => (data.samples[n] || { time: [] }).time))].sort((a, b) => a - b);
    const index = new Map(times.map((t, i) => [t, i]));
    const series = names.map((n) => {
      const out = new Array(times.length).fill(null);
      const s = data.samples[n];
      if (s) s.time.forEach((t, i) => { out[index.get(t)] = s[field][i]; });
      return out;
    });
    return { names, cols: [times, ...series] };
  }

  function drawChart(id, data, field, format) {
    const { names, cols } = columns(data, field);
    const box = $(id);
    box.setAttribute("data-points", String(cols[0].length));
    const key = names.join(",");
    const width = Math.max(300, box.clientWidth);
    let chart = charts[id];
    if (!chart || chart.key !== key) {
      if (chart) chart.plot.destroy();
      const opts = {
        width, height: 200,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        series: [{}, ...names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2, spanGaps: false, value: (u, v) => v === null ? "–" : format(v) }))],
        axes: [{ stroke: "#6b7785", grid: { stroke: "#eef1f5" } }, { stroke: "#6b7785", grid: { stroke: "#eef1f5" }, size: 70, values: (u, vals) => vals.map(format) }],
        legend: { live: true },
        cursor: { points: { size: 6 } },
      };
      chart = charts[id] = { key, plot: new uPlot(opts, cols, box) };
    } else {
      chart.plot.setData(cols);
      if (Math.abs(chart.plot.width - width) > 4) chart.plot.setSize({ width, height: 200 });
    }
  }

  function drawEvents(data) {
    const list = $("events");
    list.replaceChildren();
    if (data.events.length === 0) { list.appendChild(el("li", { class: "empty" }, "nothing since the daemon started")); return; }
    for (const e of data.events) {
      const li = el("li", { class: e.kind });
      li.appendChild(el("span", { class: "when" }, new Date(e.at).toLocaleTimeString()));
      li.appendChild(el("span", { class: "kind" }, e.kind));
      li.appendChild(document.createTextNode((e.subscription ? e.subscription + ": " : "") + e.message));
      list.appendChild(li);
    }
  }

  function drawHeader(data) {
    const pill = $("health");
    pill.className = "pill " + (data.healthy ? "ok" : "bad");
    pill.textContent = data.healthy ? "healthy" : "unhealthy";
    pill.title = data.health_reasons.join("\n");
    const streaming = data.subscriptions.filter((s) => s.state === "streaming").length;
    const up = Math.round((Date.now() - new Date(data.started_at).getTime()) / 1000);
    $("summary").textContent = `${data.nodes.length} nodes · ${streaming}/${data.subscriptions.length} subscriptions streaming · up ${up < 3600 ? Math.floor(up / 60) + " min" : (up / 3600).toFixed(1) + " h"}`;
    $("updated").textContent = "updated " + new Date(data.generated_at).toLocaleTimeString();
  }

  async function refresh() {
    try {
      const response = await fetch("/api/dashboard", { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const data = await response.json();
      refreshMs = Math.max(1000, data.sample_interval_seconds * 1000);
      drawHeader(data);
      drawGraph(data);
      drawTable(data);
      drawChart("chart-lag", data, "lag_seconds", (v) => secs(v));
      drawChart("chart-rows", data, "rows_per_second", (v) => rate(v));
      drawChart("chart-wal", data, "retained_wal_bytes", (v) => bytes(v));
      drawEvents(data);
    } catch (err) {
      const pill = $("health");
      pill.className = "pill bad";
      pill.textContent = "daemon unreachable";
      $("updated").textContent = String(err.message || err);
    } finally {
      setTimeout(refresh, refreshMs);
    }
  }

  window.addEventListener("resize", () => { for (const c of Object.values(charts)) c.plot.setSize({ width: Math.max(300, c.plot.root.parentElement.clientWidth), height: 200 }); });
  refresh();
})();
