// bustap dashboard: reads the JSON API, draws with plotly (served by bustap
// from the plotly Python package), refreshes on server-sent events.
// Every value from the store goes into the page as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { topic: null, topics: [], refreshTimer: null, alerts: [] };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function get(path, params) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((x) => url.searchParams.append(k, x));
    else if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
  }
  const r = await fetch(url, { credentials: "same-origin" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function fmt(n, digits = 1) {
  if (n === null || n === undefined) return "—";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(digits) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(digits) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(digits) + "k";
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(a < 10 ? 2 : 1);
}
function bytes(n) {
  if (n === null || n === undefined) return "—";
  const u = ["B", "KB", "MB", "GB"]; let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i];
}
const time = (ts) => (ts ? String(ts).slice(11, 19) : "");
const datetime = (ts) => (ts ? String(ts).slice(0, 19).replace("T", " ") : "");
const stamp = (ts) => (ts ? String(ts).slice(5, 19).replace("T", " ") : "");  // tables: no year
function short(v, n = 80) {
  if (v === undefined || v === null) return "";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}
function pretty(v) { return typeof v === "string" ? v : JSON.stringify(v, null, 2); }

// --- charts -------------------------------------------------------------------

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
function layout(extra) {
  const fg = css("--fg"), muted = css("--muted"), line = css("--line");
  return Object.assign({
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: fg, size: 12, family: "system-ui, sans-serif" },
    margin: { l: 48, r: 12, t: 8, b: 36 },
    xaxis: { gridcolor: line, linecolor: line, tickfont: { color: muted }, type: "date" },
    yaxis: { gridcolor: line, linecolor: line, tickfont: { color: muted }, rangemode: "tozero" },
    legend: { orientation: "h", y: -0.2, font: { size: 11 } },
    hovermode: "x unified", showlegend: true,
  }, extra || {});
}
const plotConfig = { displaylogo: false, responsive: true, displayModeBar: false };
const utc = (ts) => (ts ? String(ts).replace("Z", "") : ts);  // plotly draws naive times as given

function lines(div, series, opts) {
  const traces = Object.entries(series).map(([name, s]) => ({
    x: s.x.map(utc), y: s.y, name: name || "(none)", type: "scatter",
    mode: s.x.length < 40 ? "lines+markers" : "lines", line: { width: 2, shape: "linear" },
    marker: { size: 5 }, fill: opts && opts.fill ? "tozeroy" : undefined,
  }));
  if (!traces.length) {
    Plotly.react(div, [], layout({ annotations: [{ text: "no data in this range", showarrow: false,
      xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { color: css("--muted") } }],
      xaxis: { visible: false }, yaxis: { visible: false } }), plotConfig);
    return;
  }
  Plotly.react(div, traces, layout(opts && opts.layout), plotConfig);
}

// --- overview -----------------------------------------------------------------

async function loadOverview() {
  const o = await get("api/overview");
  $("asof").textContent = o.as_of ? "data as of " + datetime(o.as_of) + " UTC" : "no records yet";
  $("c-rate").textContent = fmt(o.msgs_per_sec || 0);
  $("c-rate-sub").textContent = `last ${Math.round(o.window_secs)}s of data`;
  $("c-bytes").textContent = bytes(o.bytes_per_sec || 0) + "/s";
  $("c-clients").textContent = fmt(o.clients);
  $("c-firing").textContent = fmt(o.firing);
  $("card-alerts").classList.toggle("alerting", o.firing > 0);
  $("c-alerts-sub").textContent = `${fmt(o.totals.alerts || 0)} notifications`;
  $("c-records").textContent = fmt(o.totals.records || 0);
  $("c-records-sub").textContent = `${fmt(o.totals.messages || 0)} messages · ${bytes(o.totals.bytes || 0)}`;
  if (o.pipeline) {
    const p = o.pipeline;
    $("card-pipeline").hidden = false;
    $("c-pipe").textContent = fmt(p.received);
    $("c-pipe-sub").textContent = `received · dropped ${fmt(p.dropped_total)} · spooled ${fmt(p.spooled)} · queue ${p.queue_depth}/${p.queue_limit}`;
  }
  lines($("chart-rates"), (o.series && o.series.messages) || {}, { fill: false });
  const t = $("sources");
  t.replaceChildren(el("tr", {}, el("th", {}, "source"), el("th", { class: "num" }, "msgs/s"),
    el("th", { class: "num" }, "bytes/s"), el("th", { class: "num" }, "messages"), el("th", {}, "last")));
  for (const s of o.sources) {
    t.append(el("tr", {}, el("td", { class: "mono" }, s.source), el("td", { class: "num" }, fmt(s.msgs_per_sec)),
      el("td", { class: "num" }, bytes(s.bytes_per_sec)), el("td", { class: "num" }, fmt(s.messages)),
      el("td", {}, time(s.last))));
  }
}

// --- topic tree ---------------------------------------------------------------

function buildTree(topics) {
  const root = { children: new Map(), count: 0 };
  for (const t of topics) {
    const proto = t.protocol === "mqtt" ? "mqtt" : "nats";
    const parts = proto === "mqtt" ? t.topic.split("/") : t.topic.split(".");
    let node = root.children.get(proto);
    if (!node) { node = { name: proto.toUpperCase(), children: new Map(), count: 0, rate: 0 }; root.children.set(proto, node); }
    node.count += t.count; node.rate += t.msgs_per_sec;
    for (const p of parts) {
      let next = node.children.get(p);
      if (!next) { next = { name: p === "" ? "(empty)" : p, children: new Map(), count: 0, rate: 0 }; node.children.set(p, next); }
      next.count += t.count; next.rate += t.msgs_per_sec;
      node = next;
    }
    node.topic = t;
  }
  return root;
}

function renderNode(node, depth) {
  const t = node.topic;
  const line = el("div", { class: "node" + (t && state.topic === t.topic ? " selected" : "") });
  line.append(el("span", { class: "twisty" }, node.children.size ? "▸" : ""),
    el("span", { class: "name" }, node.name),
    el("span", { class: "count" }, `${fmt(node.count)} · ${fmt(node.rate)}/s`));
  if (t) {
    if (t.retained) line.append(el("span", { class: "badge" }, "retained"));
    line.append(el("span", { class: "last", title: short(t.last.payload, 400) }, "= " + short(t.last.payload, 60)));
    line.classList.add("leaf");
    line.dataset.topic = t.topic;
    line.addEventListener("click", (ev) => { ev.preventDefault(); openTopic(t.topic); });
  }
  if (!node.children.size) return line;
  const d = el("details", {});
  // small trees open whole; big ones two levels deep (and wherever the filter matches)
  if (depth < 2 || state.topics.length <= 60 || node.children.size === 1 || treeFilter()) d.open = true;
  const sum = el("summary", {}, line);
  const kids = el("div", { class: "children" });
  for (const c of [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name))) kids.append(renderNode(c, depth + 1));
  d.append(sum, kids);
  d.addEventListener("toggle", () => { line.firstChild.textContent = d.open ? "▾" : "▸"; });
  line.firstChild.textContent = d.open ? "▾" : "▸";
  return d;
}

const treeFilter = () => $("tree-filter").value.trim().toLowerCase();

function renderTree() {
  const f = treeFilter();
  const shown = f ? state.topics.filter((t) => t.topic.toLowerCase().includes(f)) : state.topics;
  const root = buildTree(shown);
  const box = $("tree");
  box.replaceChildren(...[...root.children.values()].map((n) => renderNode(n, 0)));
  if (!shown.length) box.append(el("div", { class: "empty" }, "no topics"));
}

async function loadTopics() {
  const r = await get("api/topics");
  state.topics = r.topics;
  $("topic-count").textContent = `${r.topics.length}${r.truncated ? "+" : ""} topics and subjects`;
  renderTree();
  if (!state.topic && r.topics.length) {
    const wanted = new URLSearchParams(location.hash.slice(1)).get("topic");
    const pick = r.topics.find((t) => t.topic === wanted)
      || [...r.topics].sort((a, b) => b.count - a.count)[0];
    openTopic(pick.topic);
  }
}

async function openTopic(topic) {
  state.topic = topic;
  document.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
  document.querySelectorAll(".node.leaf").forEach((n) => { if (n.dataset.topic === topic) n.classList.add("selected"); });
  const d = await get("api/topic", { name: topic });
  $("detail-title").replaceChildren("History of ", el("code", {}, topic));
  const series = Object.keys(d.values).length ? d.values
    : { [`messages per ${d.counts.every || 1}s`]: d.counts };
  lines($("chart-topic"), series, {});
  const box = $("detail-messages");
  box.replaceChildren(...d.messages.map(messageBox));
  if (!d.messages.length) box.append(el("div", { class: "empty" }, "no messages"));
}

function messageBox(m) {
  const meta = el("div", { class: "meta" }, el("span", {}, datetime(m.timestamp)),
    m.topic ? el("code", {}, m.topic) : null,
    m.protocol ? el("span", {}, m.protocol) : null,
    m.qos !== undefined ? el("span", {}, "qos " + m.qos) : null,
    m.retain ? el("span", { class: "badge" }, "retained") : null,
    m.size !== undefined ? el("span", {}, bytes(m.size)) : null,
    m.device ? el("span", {}, "device " + m.device) : null,
    m.decoder ? el("span", {}, m.decoder) : null,
    m.decode_error ? el("span", { class: "badge error" }, "decode error") : null);
  const body = m.payload !== undefined ? m.payload
    : Object.fromEntries(Object.entries(m).filter(([k]) => !["seq", "writer_id", "timestamp", "source"].includes(k)));
  return el("div", { class: "msg" }, meta, el("pre", {}, pretty(body)));
}

// --- timelines ------------------------------------------------------------------

async function loadTimeline() {
  const f = new FormData($("timeline-form"));
  const r = await get("api/timeline", { by: f.get("by"), metric: f.get("metric"), since: f.get("since") });
  lines($("chart-timeline"), r.series, { layout: { yaxis: { title: { text: `${r.metric} per ${r.every}s`, font: { size: 11 } },
    gridcolor: css("--line"), rangemode: "tozero" } } });
}

// --- broker events ------------------------------------------------------------

function row(cells, attrs) {
  return el("tr", attrs || {}, ...cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))));
}
const num = (v) => el("td", { class: "num" }, fmt(v));

async function loadEvents() {
  const r = await get("api/events", { limit: 200 });
  const c = $("clients");
  c.replaceChildren(el("tr", {}, ...["client", "broker", "address", "user"].map((h) => el("th", {}, h)),
    ...["conn.", "auth fail", "denied", "pub", "sub"].map((h) => el("th", { class: "num" }, h)), el("th", {}, "last seen")));
  for (const x of r.clients) {
    c.append(row([el("td", { class: "mono" }, x.client), x.broker || "", x.address || "", x.username || "",
      num(x.connections), num(x.auth_failures), num(x.denials), num(x.publishes), num(x.subscribes), stamp(x.last_seen)]));
  }
  if (!r.clients.length) c.append(row(["no broker events (tail a broker log or nats-monitor:// to see clients)"]));
  const e = $("event-list");
  e.replaceChildren(el("tr", {}, ...["time", "broker", "event", "client", "address", "detail"].map((h) => el("th", {}, h))));
  for (const x of r.events) {
    const sev = x.event === "auth_failed" || x.event === "acl_denied" ? "error" : "";
    e.append(row([stamp(x.timestamp), x.broker || "", el("td", {}, el("span", { class: "badge " + sev }, x.event || "")),
      el("td", { class: "mono" }, x.client || ""), x.address || "", el("td", { class: "wrap" }, short(x.topic || x.reason || x.username || "", 60))]));
  }
}

// --- alerts ---------------------------------------------------------------------

async function loadAlerts() {
  const alerts = await get("api/alerts", { state: "all" });
  state.alerts = alerts;
  const rank = { emerg: 0, alert: 1, crit: 2, error: 3, warning: 4, notice: 5, info: 6, debug: 7 };
  const firing = alerts.filter((a) => a.state === "firing")
    .sort((a, b) => (rank[a.severity] ?? 9) - (rank[b.severity] ?? 9));
  const list = $("firing");
  list.replaceChildren(...firing.slice(0, 7).map((a) => el("div", { class: "alert " + (a.severity || ""), onclick: () => openEvidence(a.alert_id) },
    el("div", {}, el("span", { class: "rule" }, a.rule), " ", el("span", { class: "badge " + (a.severity || "") }, a.severity || ""),
      " ", el("span", { class: "muted" }, `${fmt(a.count)}× · since ${datetime(a.first_seen)}`)),
    el("div", {}, a.summary || ""))));
  if (firing.length > 7) list.append(el("a", { class: "more", href: "#alerts" }, `and ${firing.length - 7} more…`));
  if (!firing.length) list.append(el("div", { class: "empty" }, "nothing is firing"));
  const t = $("alert-list");
  t.replaceChildren(el("tr", {}, ...["state", "severity", "rule", "subject", "count", "first seen", "last seen", "summary"]
    .map((h) => el("th", { class: h === "count" ? "num" : "" }, h))));
  for (const a of alerts) {
    t.append(row([el("td", {}, el("span", { class: "badge " + a.state }, a.state)),
      el("td", {}, el("span", { class: "badge " + (a.severity || "") }, a.severity || "")),
      a.rule, el("td", { class: "mono" }, short(a.subject, 40)), num(a.count), stamp(a.first_seen), stamp(a.last_seen),
      el("td", { class: "wrap" }, a.summary || "")],
    { class: "click", "data-alert": a.alert_id, onclick: () => openEvidence(a.alert_id) }));
  }
  if (!alerts.length) t.append(row(["no alerts"]));
}

async function openEvidence(id) {
  const r = await get("api/alerts/" + encodeURIComponent(id));
  document.querySelectorAll("#alert-list tr.selected").forEach((x) => x.classList.remove("selected"));
  document.querySelectorAll("#alert-list tr").forEach((x) => { if (x.dataset.alert === id) x.classList.add("selected"); });
  const box = $("evidence");
  box.hidden = false;
  box.replaceChildren(el("h3", {}, `Evidence of ${r.alert.rule} (${r.records.length} records)`), ...r.records.map(messageBox));
  if (location.hash !== "#alerts") $("alerts").scrollIntoView({ behavior: "smooth" });
}

// --- search ---------------------------------------------------------------------

async function runSearch(ev) {
  if (ev) ev.preventDefault();
  const f = new FormData($("search-form"));
  const params = {};
  for (const [k, v] of f.entries()) if (String(v).trim()) params[k] = String(v).trim();
  $("search-error").hidden = true;
  let recs;
  try { recs = await get("api/search", params); } catch (e) {
    $("search-error").textContent = e.message; $("search-error").hidden = false; return;
  }
  const t = $("results");
  t.replaceChildren(el("tr", {}, ...["time", "kind", "topic / event", "device / client", "sev", "summary"].map((h) => el("th", {}, h))));
  for (const r of recs.reverse()) {
    const what = r.kind === "message" ? r.topic : (r.event || r.event_type);
    const who = r.device || r.client_id || r.address || "";
    const text = r.kind === "message" ? r.payload : (r.summary || r.line || r.topic || r.username || "");
    t.append(row([stamp(r.timestamp), r.kind || r.event_type, el("td", { class: "mono" }, what || ""), who,
      r.severity ? el("td", {}, el("span", { class: "badge " + r.severity }, r.severity)) : "", el("td", { class: "mono wrap" }, short(text, 120))]));
  }
  if (!recs.length) t.append(row(["no matching records"]));
}

// --- live updates ---------------------------------------------------------------

async function refresh() {
  const jobs = [loadOverview(), loadTopics(), loadAlerts(), loadEvents(), loadTimeline()];
  if (state.topic) jobs.push(openTopic(state.topic));
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === "rejected") console.warn(r.reason);
}

function live() {
  const dot = $("live");
  const es = new EventSource("api/stream");
  es.onopen = () => { dot.classList.add("on"); dot.title = "live"; };
  es.onerror = () => { dot.classList.remove("on"); dot.title = "reconnecting…"; };
  es.addEventListener("update", (ev) => {
    const d = JSON.parse(ev.data);
    dot.classList.remove("pulse"); void dot.offsetWidth; dot.classList.add("pulse");
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
    document.body.dataset.lastUpdate = d.as_of;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refresh, 300);
  });
}

async function start() {
  get("api/health").then((h) => { $("store").textContent = h.store; }).catch(() => {});
  $("tree-filter").addEventListener("input", renderTree);
  $("timeline-form").addEventListener("change", loadTimeline);
  for (const b of document.querySelectorAll(".presets button")) {
    b.addEventListener("click", () => {
      const f = $("timeline-form");
      f.by.value = b.dataset.by; f.metric.value = b.dataset.metric; loadTimeline();
    });
  }
  $("search-form").addEventListener("submit", runSearch);
  await refresh();
  runSearch();
  document.body.dataset.ready = "1";
  // ?live=0: a still page (screenshots, printing); otherwise server-sent events
  if (new URLSearchParams(location.search).get("live") !== "0") live();
}

start();
