// The pushwire console: a client of the /v1 API. The session cookie is HttpOnly; requests
// that change something carry X-Pushwire-Console (the server's CSRF check). No libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

async function api(method, path, body) {
  const init = { method, headers: { "X-Pushwire-Console": "1" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401 && path !== "/console/login") showLogin();
  if (!response.ok) {
    const field = data && data.field ? ` (${data.field})` : "";
    throw new Error((data && data.detail ? data.detail : response.statusText) + field);
  }
  return data;
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showLogin() {
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-view").hidden = false;
  stopPolling();
}

async function showApp(me) {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = "signed in";
  await Promise.all([loadDashboard(), loadCampaigns(), loadJobs(), searchDevices()]);
  startPolling();
}

// -- dashboard --------------------------------------------------------------------------------

function percent(part, whole) {
  return whole ? `${((100 * part) / whole).toFixed(1)} %` : "–";
}

function perDay(kpis) {
  const days = new Map();
  for (const k of kpis) {
    const d = days.get(k.day) ||
      { day: k.day, sent: 0, delivered: 0, disabled: 0, campaignDelivered: 0, opened: 0 };
    d.sent += k.sent; d.delivered += k.delivered; d.disabled += k.tokens_disabled;
    d.campaignDelivered += k.campaign_delivered; d.opened += k.opened;
    days.set(k.day, d);
  }
  return [...days.values()].sort((a, b) => a.day.localeCompare(b.day));
}

function drawChart(days) {
  const chart = $("chart");
  chart.textContent = "";
  if (!days.length) { chart.append(el("p", { class: "note" }, "No sends recorded yet.")); return; }
  const W = 640, H = 260, left = 44, bottom = 36, top = 12;
  const max = Math.max(1, ...days.map((d) => Math.max(d.delivered, d.sent - d.delivered, d.disabled)));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("id", "delivery-chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Deliveries, failures and disabled tokens per day");
  const plotW = W - left - 8, plotH = H - top - bottom;
  const slot = plotW / days.length, bar = Math.min(28, (slot - 8) / 3);
  const y = (v) => top + plotH - (v / max) * plotH;
  for (const tick of [0, 0.5, 1]) {
    const value = Math.round(max * tick);
    const line = document.createElementNS(SVG, "line");
    Object.entries({ x1: left, x2: W - 8, y1: y(value), y2: y(value), stroke: "#d8dde5" })
      .forEach(([k, v]) => line.setAttribute(k, v));
    const label = document.createElementNS(SVG, "text");
    Object.entries({ x: left - 6, y: y(value) + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6575" })
      .forEach(([k, v]) => label.setAttribute(k, v));
    label.textContent = value;
    svg.append(line, label);
  }
  days.forEach((d, i) => {
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("class", "day");
    g.setAttribute("data-day", d.day);
    const series = [["delivered", d.delivered], ["failed", d.sent - d.delivered], ["disabled", d.disabled]];
    const x0 = left + i * slot + (slot - 3 * bar) / 2;
    series.forEach(([name, value], j) => {
      const r = document.createElementNS(SVG, "rect");
      Object.entries({ class: name, x: x0 + j * bar, y: y(value), width: bar - 2,
                       height: Math.max(0, top + plotH - y(value)), "data-value": value })
        .forEach(([k, v]) => r.setAttribute(k, v));
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${d.day} ${name}: ${value}`;
      r.append(title);
      g.append(r);
    });
    const label = document.createElementNS(SVG, "text");
    Object.entries({ x: left + i * slot + slot / 2, y: H - bottom + 16, "text-anchor": "middle",
                     "font-size": 11, fill: "#5b6575" }).forEach(([k, v]) => label.setAttribute(k, v));
    label.textContent = d.day.slice(5);
    g.append(label);
    svg.append(g);
  });
  chart.append(svg);
}

function svgNode(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// One bar per day: opened / delivered campaign notifications, 0-100 %.
function drawOpenRate(days) {
  const chart = $("open-chart");
  chart.textContent = "";
  const measured = days.filter((d) => d.campaignDelivered > 0);
  if (!measured.length) {
    chart.append(el("p", { class: "note" }, "No campaign notification delivered yet."));
    return;
  }
  const W = 640, H = 180, left = 44, bottom = 30, top = 12;
  const plotW = W - left - 8, plotH = H - top - bottom;
  const slot = plotW / days.length, bar = Math.min(40, slot - 8);
  const y = (rate) => top + plotH - rate * plotH;
  const svg = svgNode("svg", { viewBox: `0 0 ${W} ${H}`, id: "open-rate-chart", role: "img",
                               "aria-label": "Open rate per day" });
  for (const tick of [0, 0.5, 1]) {
    svg.append(svgNode("line", { x1: left, x2: W - 8, y1: y(tick), y2: y(tick), stroke: "#d8dde5" }),
               svgNode("text", { x: left - 6, y: y(tick) + 4, "text-anchor": "end", "font-size": 11,
                                 fill: "#5b6575" }, `${tick * 100} %`));
  }
  days.forEach((d, i) => {
    const g = svgNode("g", { class: "day", "data-day": d.day });
    if (d.campaignDelivered > 0) {
      const rate = d.opened / d.campaignDelivered;
      const r = svgNode("rect", { class: "opened", x: left + i * slot + (slot - bar) / 2, y: y(rate),
                                  width: bar, height: Math.max(0, top + plotH - y(rate)),
                                  "data-opened": d.opened, "data-delivered": d.campaignDelivered,
                                  "data-rate": rate.toFixed(4) });
      r.append(svgNode("title", {}, `${d.day}: ${d.opened} opened of ${d.campaignDelivered} delivered`));
      g.append(r, svgNode("text", { x: left + i * slot + slot / 2, y: y(rate) - 4, "text-anchor": "middle",
                                    "font-size": 11, fill: "#1d2430" }, percent(d.opened, d.campaignDelivered)));
    }
    g.append(svgNode("text", { x: left + i * slot + slot / 2, y: H - bottom + 16, "text-anchor": "middle",
                               "font-size": 11, fill: "#5b6575" }, d.day.slice(5)));
    svg.append(g);
  });
  chart.append(svg);
}

async function loadDashboard() {
  const { kpis } = await api("GET", "/v1/kpis");
  const days = perDay(kpis);
  drawChart(days);
  drawOpenRate(days);
  const apps = new Map();
  for (const k of kpis) {
    const a = apps.get(k.application) ||
      { sent: 0, delivered: 0, disabled: 0, campaignDelivered: 0, opened: 0 };
    a.sent += k.sent; a.delivered += k.delivered; a.disabled += k.tokens_disabled;
    a.campaignDelivered += k.campaign_delivered; a.opened += k.opened;
    apps.set(k.application, a);
  }
  const body = $("per-app").tBodies[0];
  body.textContent = "";
  for (const [name, a] of [...apps.entries()].sort()) {
    const row = el("tr", { "data-application": name });
    const rate = percent(a.delivered, a.sent);
    const opens = percent(a.opened, a.campaignDelivered);
    for (const v of [name, a.sent, a.delivered, a.sent - a.delivered, a.disabled, rate, opens]) {
      row.append(el("td", {}, String(v)));
    }
    body.append(row);
  }
}

// -- campaigns ----------------------------------------------------------------------------------

async function loadCampaigns() {
  const { campaigns } = await api("GET", "/v1/campaigns?limit=50");
  const shown = await Promise.all(
    campaigns.slice(-20).reverse().map((c) => api("GET", `/v1/campaigns/${c.id}`)));
  const list = $("campaign-list");
  list.textContent = "";
  if (!shown.length) list.append(el("li", { class: "note" }, "No campaigns yet."));
  for (const { campaign: c, progress: p } of shown) {
    const done = (p.slots_by_state.done || 0) + (p.slots_by_state.skipped || 0) +
                 (p.slots_by_state.cancelled || 0);
    const item = el("li", { "data-campaign": c.name, "data-state": c.state, "data-slots": p.slots,
                            "data-slots-done": done, "data-sent": p.sent,
                            "data-delivered": p.delivered, "data-opened": p.opened });
    item.append(el("div", { class: "title" }, `${c.name} · ${c.state} · ${c.schedule.frequency}`));
    const figures = el("dl", { class: "figures" });
    for (const [label, value] of [["Slots", `${done} / ${p.slots}`], ["Sent", p.sent],
                                  ["Delivered", p.delivered], ["Opened", p.opened],
                                  ["Open rate", percent(p.opened, p.delivered)]]) {
      const cell = el("div");
      cell.append(el("dt", {}, label), el("dd", {}, String(value)));
      figures.append(cell);
    }
    item.append(figures, el("progress", { max: Math.max(1, p.slots), value: done }));
    list.append(item);
  }
}

// -- jobs ---------------------------------------------------------------------------------------

async function loadJobs() {
  const { jobs } = await api("GET", "/v1/jobs");
  const list = $("job-list");
  list.textContent = "";
  if (!jobs.length) list.append(el("li", { class: "note" }, "No jobs in this server yet."));
  for (const j of jobs) {
    const item = el("li", { "data-job": j.job_id, "data-state": j.state,
                            "data-recorded": j.recorded, "data-total": j.total });
    item.append(el("div", {}, `${j.job_id} · ${j.state} · ${j.recorded} / ${j.total}`));
    item.append(el("progress", { max: Math.max(1, j.total), value: j.recorded }));
    list.append(item);
  }
}

let timer = null, campaignTimer = null;
function startPolling() {
  stopPolling();
  timer = setInterval(() => { loadJobs().catch(() => {}); }, 1000);
  campaignTimer = setInterval(() => { loadCampaigns().catch(() => {}); }, 5000);
}
function stopPolling() {
  if (timer) clearInterval(timer);
  if (campaignTimer) clearInterval(campaignTimer);
  timer = campaignTimer = null;
}

// -- devices ------------------------------------------------------------------------------------

async function searchDevices() {
  const segment = $("search-segment").value || "all";
  const { devices } = await api("GET", `/v1/devices?segment=${encodeURIComponent(segment)}&limit=50`);
  const body = $("device-list").tBodies[0];
  body.textContent = "";
  for (const d of devices) {
    const row = el("tr", { class: "clickable", "data-token": d.token });
    row.append(el("td", {}, d.application), el("td", { class: "token", title: d.token }, d.token),
               el("td", {}, d.user_id || ""), el("td", {}, d.enabled ? "yes" : `no (${d.disabled_reason})`),
               el("td", {}, d.updated_at.slice(0, 19).replace("T", " ")));
    row.addEventListener("click", () => showHistory(d.application, d.token));
    body.append(row);
  }
}

async function showHistory(application, token) {
  const q = `application=${encodeURIComponent(application)}&token=${encodeURIComponent(token)}`;
  const { events } = await api("GET", `/v1/events?${q}&limit=100`);
  $("history-title").hidden = false;
  $("history-title").textContent = `History of ${token.slice(0, 16)}…`;
  const list = $("history");
  list.textContent = "";
  for (const e of events) {
    list.append(el("li", {}, `${e.at.slice(0, 19).replace("T", " ")} ${e.kind} (${e.cause})`));
  }
  $("send-app").value = application;
  $("send-token").value = token;
}

// -- wiring -------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      const key = $("login-key").value.trim();
      $("login-key").value = "";
      const me = await api("POST", "/console/login", { key });
      await showApp(me);
    } catch (e) { $("login-error").textContent = e.message; }
  });
  $("logout").addEventListener("click", async () => {
    await api("POST", "/console/logout").catch(() => {});
    showLogin();
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    searchDevices().catch((e) => alert(e.message));
  });
  $("send-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = $("send-result");
    out.textContent = "sending…";
    out.className = "";
    try {
      const answer = await api("POST", "/v1/sends", {
        application: $("send-app").value.trim(), tokens: [$("send-token").value.trim()],
        message: { title: $("send-title").value, body: $("send-body").value },
      });
      if (answer.kind === "report") {
        const r = answer.report;
        const outcome = Object.entries(r.by_outcome).map(([k, v]) => `${k}: ${v}`).join(", ");
        out.textContent = `run ${r.run_id}: ${outcome}` +
          (Object.keys(r.by_reason).length ? ` (${Object.keys(r.by_reason).join(", ")})` : "");
        out.dataset.delivered = r.delivered;
      } else {
        out.textContent = `job ${answer.job_id}`;
      }
      loadDashboard().catch(() => {});
    } catch (e) { out.textContent = e.message; out.className = "error"; }
  });
  try { await showApp(await api("GET", "/v1/me")); } catch (e) { showLogin(); }
});
