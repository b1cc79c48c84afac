// The status page: timelines drawn from /api/timeline (the server aggregates per pixel bucket,
// so a bar per pixel at most), the job list from /api/jobs, and the backfill action.
"use strict";

const ROOT = document.body.dataset.root;
const AIRFLOW_ROOT = document.body.dataset.airflowRoot;
const STATUSES = ["Complete", "Incomplete", "Pending", "None"];
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const state = {
  stores: [], sets: [], current: null, start: null, end: null, shown: null, selection: null, canTrigger: false,
  dag: null, dryRun: null, freshness: [], grid: null, view: {}, editableDags: [], backfillDag: null,
  timeline: null, jobs: [],
};
const SLA_STATES = { ok: "ok", late: "late", no_sla: "no SLA" };
const REFRESH_MS = 4000;  // while anything on screen is Pending

// ---- small helpers --------------------------------------------------------------------------

// Every call names the feature store shown (its project): access is checked against its DAGs.
async function api(path, options = {}) {
  const url = new URL(ROOT + path, location.origin);
  if (state.view.project) url.searchParams.set("project", state.view.project);
  const response = await fetch(url.pathname + url.search, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail))
      : `${response.status} ${response.statusText}`);
  }
  return body;
}

const ms = (iso) => Date.parse(iso);
const iso = (t) => new Date(t).toISOString().replace(".000Z", "Z");
const toInput = (t) => iso(t);

function duration(seconds) {
  if (seconds == null) return "";
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size) { parts.push(Math.floor(seconds / size) + unit); seconds %= size; }
  }
  if (seconds || !parts.length) parts.push(Math.round(seconds) + "s");
  return parts.slice(0, 2).join(" ");
}

function element(tag, attrs = {}, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? String(error.message || error) : "";
}

// The task instance's page in the Airflow UI (its log tab first): the route
// /dags/:dagId/runs/:runId/tasks/:taskId[/mapped/:mapIndex] of Airflow 3's UI.
function taskLink(airflow) {
  if (!airflow || !airflow.dag_id) return null;
  let url = `${AIRFLOW_ROOT}/dags/${encodeURIComponent(airflow.dag_id)}/runs/${encodeURIComponent(airflow.run_id)}`
    + `/tasks/${encodeURIComponent(airflow.task_id)}`;
  if (airflow.map_index != null && airflow.map_index >= 0) url += `/mapped/${airflow.map_index}`;
  if (airflow.try_number) url += `?try_number=${airflow.try_number}`;
  return url;
}

// Airflow shows this page in a sandboxed iframe that may not navigate the top window, so a link
// into Airflow's UI moves the UI's own router (same origin); opened on its own, links just work.
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a.airflow-link");
  if (!link || window.top === window || event.ctrlKey || event.metaKey || event.shiftKey) return;
  try {
    window.top.history.pushState(null, "", link.href);
    window.top.dispatchEvent(new PopStateEvent("popstate", { state: null }));
    event.preventDefault();
  } catch (error) {
    // not reachable (another origin): leave the link to the browser
  }
});

// A backfill's chunks start at multiples of the feature set's max_job_window since the epoch (as
// the planner cuts them): a dragged range snaps to them, each end to its nearest chunk edge, and
// is at least one chunk (the one around the middle of the drag). The server checks again.
function snapDrag(a, b) {
  const chunk = state.current.max_job_window * 1000;
  let start = Math.round(a / chunk) * chunk;
  let end = Math.round(b / chunk) * chunk;
  if (end <= start) {
    start = Math.floor((a + b) / 2 / chunk) * chunk;
    end = start + chunk;
  }
  return [start, end];
}

// ---- the view: what is shown, kept in the address (view.js) ---------------------------------

const shownStores = () => {
  const enabled = Object.keys(state.current.stores);
  const chosen = (state.view.stores || []).filter((s) => enabled.includes(s));
  return chosen.length ? chosen : enabled;
};

// Change the view: a new feature set, store or range is a new history entry (Back returns to
// the one before), a filter or a selection only replaces it. Reloads what is shown.
function setView(changes, { push = false, reload = true } = {}) {
  state.view = { ...state.view, ...changes };
  for (const [key, value] of Object.entries(state.view)) if (value == null) delete state.view[key];
  writeView(state.view, { push });
  if (reload) load().catch(showError);
}

function applyView() {
  const view = state.view;
  const match = state.sets.find((s) => s.name === view.fs && (!view.v || String(s.version) === view.v))
    || state.sets.find((s) => s.name === view.fs);
  const requested = (s) => Object.values(s.stores).some((store) => store.extent);
  state.current = match || state.sets.find(requested) || state.sets[0];
  $("feature-set").value = `${state.current.name}:${state.current.version}`;
  view.fs = state.current.name;
  view.v = String(state.current.version);
  state.start = view.start ? ms(view.start) : null;
  state.end = view.end ? ms(view.end) : null;
  if (Number.isNaN(state.start) || Number.isNaN(state.end) || (state.start == null) !== (state.end == null)) {
    state.start = state.end = null;
  }
  for (const box of document.querySelectorAll("#stores-shown input")) box.checked = shownStores().includes(box.value);
}

// ---- loading --------------------------------------------------------------------------------

async function init() {
  try {
    state.view = readView();
    const listing = await api("/api/stores");
    state.stores = listing.stores;
    chooseStore();
    await loadStore();
    window.addEventListener("popstate", () => { state.view = readView(); loadStore().catch(showError); });
  } catch (error) {
    showError(error);
  }
}

// The store shown: the view's project, else the one owning the DAG whose tab shows the page.
function chooseStore() {
  const view = state.view;
  const readable = state.stores.filter((s) => s.project);
  const owner = view.dag_id ? readable.find((s) => view.dag_id in s.dags) : null;
  $("dag-context").hidden = !view.dag_id;
  let chosen = readable.find((s) => s.project === view.project);
  if (view.dag_id) {  // the page in a DAG's tab: that DAG's store and feature set
    const set = owner && owner.dags[view.dag_id];
    if (!chosen && set && !view.fs) view.fs = set;
    chosen = chosen || owner;
    $("dag-context").textContent = !owner
      ? `The DAG ${view.dag_id} is not one of a feature store's DAGs: showing the feature store below.`
      : set ? `The DAG ${view.dag_id} materializes the feature set ${set} of the feature store ${owner.project}.`
        : `The DAG ${view.dag_id} belongs to the feature store ${owner.project}.`;
  }
  chosen = chosen || readable[0];
  view.project = chosen.project;
  const select = $("project");
  select.replaceChildren(...readable.map((s) => element("option", { value: s.project, title: s.config.path }, s.project)));
  select.value = chosen.project;
  $("project-picker").hidden = readable.length < 2;
  const broken = state.stores.filter((s) => s.error);
  if (broken.length) showError(broken.map((s) => `${s.config.path}: ${s.error}`).join("\n"));
}

async function loadStore() {
  const overview = await api("/api/feature-sets");
  state.sets = overview.feature_sets;
  state.canTrigger = overview.can_trigger;
  state.editableDags = overview.editable_dags;
  state.backfillDag = overview.backfill_dag_id;
  document.querySelector("h1 .project").textContent = overview.project;
  document.querySelector("h1 .project").title = `${overview.config.path} (named by ${overview.config.named_by})`;
  $("bf-submit").textContent = `Trigger ${overview.backfill_dag_id}`;
  loadDag().catch(showError);
  const select = $("feature-set");
  select.replaceChildren(...state.sets.map((set) =>
    element("option", { value: `${set.name}:${set.version}` }, `${set.name} v${set.version}`)));
  if (!state.sets.length) { showError("no feature sets in this feature store"); return; }
  applyView();
  writeView(state.view);
  await load();
}

function setRange(start, end) {
  state.selection = null;
  $("selection").hidden = true;
  setView({ start: start == null ? null : iso(start), end: end == null ? null : iso(end), job: null }, { push: true });
}

// Everything shown is fetched again. A refresh (`quiet`) keeps the view and redraws only what
// changed (a drag or a hover on the timeline survives it); while anything on screen is Pending,
// the next refresh is scheduled.
let loading = 0;
let refreshTimer = null;
let drawn = {};
const changed = (key, value) => {
  const text = JSON.stringify(value);
  if (drawn[key] === text) return false;
  drawn[key] = text;
  return true;
};

async function load({ quiet = false } = {}) {
  const number = ++loading;
  clearTimeout(refreshTimer);
  if (!quiet) { drawn = {}; showError(null); }
  applyView();
  const freshness = await api("/api/freshness");  // the overview, and the SLA beside each timeline
  const width = Math.max(100, Math.min(4000, Math.round($("timelines").clientWidth || 1000)));
  const params = new URLSearchParams({ feature_set: state.current.name, version: state.current.version, buckets: width });
  if (state.start != null && state.end != null) { params.set("start", iso(state.start)); params.set("end", iso(state.end)); }
  const timeline = await api("/api/timeline?" + params);
  if (number !== loading) return;
  state.freshness = freshness;
  if (changed("freshness", freshness.map((r) => ({ ...r, lag_s: Math.floor((r.lag_s || 0) / 60) })))) renderFreshness();
  state.timeline = timeline;
  state.shown = timeline.start ? [ms(timeline.start), ms(timeline.end)] : null;
  if (changed("timeline", [timeline, shownStores()])) {
    if (state.shown) { $("range-start").value = toInput(state.shown[0]); $("range-end").value = toInput(state.shown[1]); }
    renderTimelines(timeline);
  }
  const jobParams = new URLSearchParams({ feature_set: state.current.name, version: state.current.version, limit: 200 });
  if (state.shown) { jobParams.set("start", iso(state.shown[0])); jobParams.set("end", iso(state.shown[1])); }
  const [jobs, grid] = await Promise.all([api("/api/jobs?" + jobParams), fetchGrid()]);
  if (number !== loading) return;
  state.jobs = jobs;
  state.grid = grid;
  if (changed("grid", [grid, state.view.status, state.view.run, state.editableDags])) { renderGridFilters(); renderGrid(); }
  if (changed("jobs", jobs)) renderJobs(jobs);
  if (changed("job", [state.view.job, grid, jobs]) && state.view.job) highlightJob(state.view.job, { scroll: false });
  scheduleRefresh();
}

function anythingPending() {
  const bars = Object.values(state.timeline?.stores || {}).flatMap((store) => store.bars);
  return bars.some((bar) => bar.seconds.Pending)
    || state.jobs.some((job) => LIVE.has(job.state))
    || (state.grid?.rows || []).some((row) => Object.values(row.stores).some((cell) => cell.status === "Pending"));
}

function scheduleRefresh() {
  const pending = anythingPending();
  document.body.dataset.refreshing = pending ? "on" : "off";
  $("refresh-state").hidden = !pending;
  if (pending) refreshTimer = setTimeout(refresh, REFRESH_MS);
}

function refresh() {
  document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  if (dragging()) { refreshTimer = setTimeout(refresh, REFRESH_MS); return; }
  load({ quiet: true }).catch((error) => { showError(error); refreshTimer = setTimeout(refresh, REFRESH_MS); });
}

// ---- freshness: every feature set's lag against its SLA (`featurestore status --json`) ------

function renderFreshness() {
  const body = $("freshness-table").querySelector("tbody");
  body.replaceChildren();
  for (const row of state.freshness) {
    const current = state.current && row.feature_set === state.current.name && row.version === state.current.version;
    const tr = element("tr", {
      "data-feature-set": row.feature_set, "data-version": row.version, "data-store": row.store,
      "data-state": row.state, class: current ? "current" : "",
    });
    tr.append(element("td", {}, row.feature_set));
    tr.append(element("td", { class: "num" }, `v${row.version}`));
    tr.append(element("td", {}, row.store));
    tr.append(element("td", {}, row.complete_until || "nothing Complete"));
    tr.append(element("td", { class: "num", title: row.lag_s == null ? "" : `${row.lag_s} s` },
      row.lag_s == null ? "-" : duration(row.lag_s)));
    tr.append(element("td", { class: "num" }, row.sla_s == null ? "-" : duration(row.sla_s)));
    tr.append(element("td", { class: `sla-${row.state}` }, SLA_STATES[row.state] || row.state));
    tr.append(element("td", { class: "num" }, String(row.incomplete_intervals)));
    tr.append(element("td", { class: "num" }, String(row.failed_jobs_24h)));
    tr.addEventListener("click", () => {
      setView({ fs: row.feature_set, v: String(row.version), start: null, end: null, job: null, run: null }, { push: true });
    });
    body.append(tr);
  }
}

// ---- timelines ------------------------------------------------------------------------------

function renderTimelines(timeline) {
  const box = $("timelines");
  box.replaceChildren();
  if (!state.shown) {
    box.append(element("p", { class: "empty" }, "No time requested yet: trigger a backfill (or run `featurestore backfill`)."));
    return;
  }
  const [start, end] = state.shown;
  for (const [store, data] of Object.entries(timeline.stores).filter(([name]) => shownStores().includes(name))) {
    const row = element("div", { class: "store", "data-store": store });
    const head = element("div", { class: "store-head" });
    head.append(element("span", { class: "store-name" }, store));
    const fresh = data.freshness
      ? `fresh up to ${data.freshness} (${duration((Date.now() - ms(data.freshness)) / 1000)} ago)`
      : "nothing Complete yet";
    head.append(element("span", { class: "freshness", "data-freshness": data.freshness || "" }, fresh));
    const sla = state.freshness.find((r) => r.feature_set === state.current.name
      && r.version === state.current.version && r.store === store);
    if (sla) {
      const text = sla.sla_s == null ? "no SLA" : `${SLA_STATES[sla.state]} (SLA ${duration(sla.sla_s)})`;
      head.append(element("span", { class: `sla sla-${sla.state}`, "data-state": sla.state }, text));
    }
    row.append(head);
    const track = element("div", { class: "track" });
    const svg = element("svg:svg", { viewBox: "0 0 1000 28", preserveAspectRatio: "none" });
    const x = (t) => ((t - start) / (end - start)) * 1000;
    for (const bar of data.bars) {
      const x0 = x(ms(bar.start));
      const w = Math.max(x(ms(bar.end)) - x0, 0.5);
      const attrs = { "data-start": bar.start, "data-end": bar.end, "data-status": bar.status };
      let node;
      if (bar.status !== "Mixed") {
        node = element("svg:rect", { ...attrs, class: `bar s-${bar.status}`, x: x0, y: 0, width: w, height: 28 });
      } else {
        node = element("svg:g", { ...attrs, class: "bar mixed" });
        const total = Object.values(bar.seconds).reduce((a, b) => a + b, 0);
        let y = 0;
        for (const status of STATUSES) {
          if (!bar.seconds[status]) continue;
          const h = (bar.seconds[status] / total) * 28;
          node.append(element("svg:rect", { class: `s-${status}`, x: x0, y, width: w, height: h }));
          y += h;
        }
      }
      node.bar = bar;
      svg.append(node);
    }
    track.append(svg);
    attachPointer(track, svg, start, end);
    row.append(track);
    const axis = element("div", { class: "axis" });
    for (const f of [0, 0.25, 0.5, 0.75, 1]) axis.append(element("span", {}, iso(start + f * (end - start))));
    row.append(axis);
    box.append(row);
  }
}

function tooltipText(bar) {
  if (bar.status === "Mixed") {
    const total = Object.values(bar.seconds).reduce((a, b) => a + b, 0);
    const shares = STATUSES.filter((s) => bar.seconds[s])
      .map((s) => `  ${s}: ${duration(bar.seconds[s])} (${Math.round((100 * bar.seconds[s]) / total)}%)`);
    return [`${bar.start} → ${bar.end}`, `${bar.intervals} intervals:`, ...shares, "click to zoom in"].join("\n");
  }
  const extent = bar.segment || bar;
  const lines = [`${bar.status}`, `start ${extent.start}`, `end   ${extent.end}`];
  if (bar.intervals > 1) lines.push(`${bar.intervals} intervals`);
  lines.push(bar.job_id ? `set by job ${bar.job_id}` : bar.status === "None" ? "never materialized" : "set by several jobs");
  return lines.join("\n");
}

function attachPointer(track, svg, start, end) {
  const tip = $("tooltip");
  const timeAt = (clientX) => {
    const box = track.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
    return start + f * (end - start);
  };
  let drag = null;
  let brush = null;
  track.dragging = () => drag != null;
  track.addEventListener("pointermove", (event) => {
    const bar = event.target.closest(".bar")?.bar;
    if (bar && !drag) {
      tip.hidden = false;
      tip.textContent = tooltipText(bar);
      tip.style.left = event.clientX + 12 + "px";
      tip.style.top = event.clientY + 12 + "px";
    } else {
      tip.hidden = true;
    }
    if (drag) {
      const [a, b] = snapDrag(Math.min(drag, timeAt(event.clientX)), Math.max(drag, timeAt(event.clientX)));
      const x = (t) => Math.min(1000, Math.max(0, ((t - start) / (end - start)) * 1000));
      if (!brush) { brush = element("svg:rect", { class: "brush", y: 0, height: 28 }); svg.append(brush); }
      brush.setAttribute("x", x(a));
      brush.setAttribute("width", Math.max(0.5, x(b) - x(a)));
    }
  });
  track.addEventListener("mouseleave", () => { tip.hidden = true; });
  let pressed = null;
  track.addEventListener("pointerdown", (event) => {
    drag = timeAt(event.clientX);
    pressed = event.target.closest(".bar")?.bar || null;
    track.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  track.addEventListener("pointerup", (event) => {
    if (drag == null) return;
    const from = drag;
    const to = timeAt(event.clientX);
    drag = null;
    const pixels = (Math.abs(to - from) / (end - start)) * track.getBoundingClientRect().width;
    if (pixels >= 3) {
      select(...snapDrag(Math.min(from, to), Math.max(from, to)));
      return;
    }
    if (brush) { brush.remove(); brush = null; }
    if (!pressed) return;
    if (pressed.status === "Mixed") setRange(ms(pressed.start), ms(pressed.end));
    else focusInterval(pressed, track.closest(".store").dataset.store);
  });
}

// Whether a drag across a timeline is under way (a refresh waits for it to end).
const dragging = () => [...document.querySelectorAll(".track")].some((track) => track.dragging && track.dragging());

function select(start, end) {
  state.selection = [start, end];
  $("selection").hidden = false;
  $("selection-range").textContent = `${iso(start)} → ${iso(end)} (${duration((end - start) / 1000)})`;
  $("selection-backfill").hidden = !state.canTrigger;
}

// ---- jobs -----------------------------------------------------------------------------------

function renderJobs(jobs) {
  $("jobs-scope").textContent = state.shown ? `meeting ${iso(state.shown[0])} → ${iso(state.shown[1])}, newest first` : "";
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  if (!jobs.length) {
    const row = element("tr");
    row.append(element("td", { colspan: 10 }, "no jobs in this range"));
    body.append(row);
  }
  for (const job of jobs) {
    const row = element("tr", { "data-job": job.id });
    const seconds = job.started_at && job.finished_at ? (ms(job.finished_at) - ms(job.started_at)) / 1000 : null;
    const written = Object.entries(job.rows_written || {}).map(([s, n]) => `${s} ${n.toLocaleString("en")}`).join(", ");
    row.append(
      element("td", { class: "id" }, job.id),
      element("td", { class: `state-${job.state}` }, job.state),
      windowCell(job),
      element("td", {}, job.stores.join(", ")),
      element("td", { class: "num" }, job.rows_read == null ? "" : job.rows_read.toLocaleString("en")),
      element("td", {}, written),
      element("td", { class: "num" }, duration(seconds)),
      checksCell(job.checks || []),
      errorCell(job.error),
    );
    const cell = element("td");
    const url = taskLink(job.airflow);
    if (url) {
      const link = element("a", { href: url, target: "_top", class: "log-link airflow-link" }, `log (try ${job.airflow.try_number})`);
      link.title = `${job.airflow.dag_id} / ${job.airflow.run_id} / ${job.airflow.task_id}`;
      cell.append(link);
    } else {
      cell.textContent = "CLI";
    }
    row.append(cell);
    body.append(row);
  }
}

function windowCell(job) {
  // A job whose read range was short of source data (partial_lookback) gets a warning mark.
  const cell = element("td", {}, `${job.start} → ${job.end}`);
  if (job.partial_lookback) {
    const since = job.first_source_time ? `source data from ${job.first_source_time}` : "no source rows";
    const mark = element("span", { class: "partial-lookback" }, " ⚠ partial lookback");
    mark.title = `its read range (window with source_lookback) was not covered: ${since}`;
    cell.append(mark);
  }
  return cell;
}

function checksCell(checks) {
  // One line per check that found violations (failed: severity error; warned: warn), with its
  // examples on hover; the passed ones counted.
  const cell = element("td", { class: "checks" });
  for (const check of checks.filter((c) => !c.passed)) {
    const named = check.column || (check.columns || []).join(", ");
    const word = check.severity === "error" ? "failed" : "warned";
    const line = element("div", { class: `check-${word}` }, `${check.check}${named ? " " + named : ""}: ${word} (${check.violations.toLocaleString("en")})`);
    if ((check.examples || []).length) line.title = "e.g. " + check.examples.join("; ");
    cell.append(line);
  }
  const passed = checks.filter((c) => c.passed).length;
  if (passed) cell.append(element("div", { class: "check-passed" }, `${passed} passed`));
  return cell;
}

function errorCell(error) {
  // A job's error may carry a whole worker traceback: show its last line, the rest on demand.
  const cell = element("td", { class: "error" });
  if (!error) return cell;
  const lines = error.trim().split("\n").map((line) => line.trim()).filter(Boolean);
  const last = lines[lines.length - 1].split(" (in a Python worker")[0];  // the worker's own exception
  if (lines.length === 1 && last === error.trim() && last.length <= 200) { cell.textContent = last; return cell; }
  const details = element("details");
  details.append(element("summary", {}, last.length > 200 ? last.slice(0, 200) + "…" : last), element("pre", {}, error));
  cell.append(details);
  return cell;
}

// The selected job (or interval, `row`): marked in the grid and in the job list.
function highlightJob(id, { scroll = true, row = null } = {}) {
  for (const tr of $("jobs").tBodies[0].rows) tr.classList.toggle("highlight", Boolean(id) && tr.dataset.job === id);
  for (const tr of $("grid").tBodies[0].rows) {
    tr.classList.toggle("highlight", row ? tr === row : Boolean(id) && tr.dataset.job === id);
  }
  const target = row || (id && document.querySelector(`#grid tr[data-job="${CSS.escape(id)}"]`));
  if (scroll && target) target.scrollIntoView({ block: "center" });
}

// ---- the backfill DAG: paused or not --------------------------------------------------------

async function loadDag() {
  state.dag = await api("/api/backfill-dag");
  renderDagState();
}

// A paused featurestore_backfill takes runs but never starts them: say so where the action is.
function dagWarning() {
  const dag = state.dag;
  if (!dag) return null;
  const box = element("div", { class: "dag-warning", role: "alert" });
  if (!dag.exists) {
    box.append(`The DAG ${dag.dag_id} is not in Airflow yet: check that the DAGs folder holds dags/featurestore_dags.py.`);
    return box;
  }
  if (!dag.is_paused) return null;
  box.append(`The DAG ${dag.dag_id} is paused in Airflow: a backfill triggered here waits, queued, until it is unpaused. `);
  if (dag.can_unpause) {
    const button = element("button", { type: "button", class: "unpause" }, `Unpause ${dag.dag_id}`);
    button.addEventListener("click", () => unpauseDag(button));
    box.append(button);
  } else {
    box.append("Ask an Airflow user who may edit it to unpause it.");
  }
  return box;
}

function renderDagState() {
  for (const id of ["dag-state", "bf-dag-state"]) {
    const slot = $(id);
    const warning = dagWarning();
    slot.replaceChildren(...(warning ? [warning] : []));
    slot.hidden = !warning;
  }
}

async function unpauseDag(button) {
  button.disabled = true;
  try {
    const dag = await api("/api/backfill-dag/unpause", { method: "POST" });
    state.dag = { ...state.dag, ...dag };
    renderDagState();
  } catch (error) {
    showError(error);
    button.disabled = false;
  }
}

// ---- backfill -------------------------------------------------------------------------------

function formBody() {
  const form = $("backfill-form");
  const checked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  const start = parseIsoInput("Start", form.start.value);
  const end = parseIsoInput("End", form.end.value);
  return {
    feature_set: state.current.name,
    version: state.current.version,
    start: start == null ? "" : iso(start),
    end: end == null ? "" : iso(end),
    data_status: checked("data_status"),
    stores: checked("stores"),
  };
}

function openBackfill() {
  const [start, end] = state.selection || state.shown;
  const form = $("backfill-form");
  form.start.value = toInput(start);
  form.end.value = toInput(end);
  $("bf-name").textContent = `${state.current.name} v${state.current.version}`;
  const stores = $("bf-stores");
  stores.querySelectorAll("label").forEach((label) => label.remove());
  for (const store of Object.keys(state.current.stores)) {
    const label = element("label");
    label.append(element("input", { type: "checkbox", name: "stores", value: store, checked: "" }), ` ${store}`);
    stores.append(label);
  }
  $("bf-message").textContent = "";
  $("bf-message").className = "";
  $("backfill-dialog").showModal();
  dryRun({ force: true });
  loadDag().catch(showError);
}

// The dialog shows what a trigger would do before it is done: the window widened to whole chunks
// and the jobs planned over it now (the core's dry run: nothing claimed, nothing triggered).
// A text box commits its value (a change event) again when it loses focus: a form unchanged
// since the last dry run keeps that run's answer.
let dryRunCount = 0;
let dryRunBody = null;
async function dryRun({ force = false } = {}) {
  let body;
  try { body = JSON.stringify(formBody()); } catch (error) { body = String(error.message); }
  if (!force && body === dryRunBody) return;
  dryRunBody = body;
  const number = ++dryRunCount;
  const plan = $("bf-plan");
  state.dryRun = null;
  $("bf-submit").disabled = true;
  plan.className = "";
  plan.textContent = "planning…";
  try {
    const result = await api("/api/backfill/dry-run", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(formBody()),
    });
    if (number !== dryRunCount) return;  // the form changed meanwhile
    const span = `${result.start} → ${result.end}`;
    const widened = result.snapped ? ` (widened to whole ${duration(result.max_job_window)} chunks)` : "";
    if (!result.planned_jobs) {
      plan.className = "bad";
      plan.textContent = `Nothing to do in ${span}${widened}: no time there is ${result.data_status.join(" or ")} `
        + `for ${result.stores.join(", ")}. Nothing would be triggered.`;
      return;
    }
    plan.textContent = `${result.planned_jobs.toLocaleString("en")} job(s) would be planned now for ${span}${widened}.`;
    state.dryRun = result;
    $("bf-submit").disabled = false;
  } catch (error) {
    if (number !== dryRunCount) return;
    plan.className = "bad";
    plan.textContent = error.message;
  }
}

async function submitBackfill(event) {
  event.preventDefault();
  const planned = state.dryRun;
  if (!planned) return;
  const message = $("bf-message");
  $("bf-submit").disabled = true;
  try {
    const body = { ...formBody(), start: planned.start, end: planned.end };  // the window the dry run showed
    const run = await api("/api/backfill", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    message.className = run.dag_paused ? "bad" : "";
    message.replaceChildren(`Triggered (${run.planned_jobs} job(s) planned now): `,
      element("a", { href: run.url, target: "_top", id: "bf-run-link", class: "airflow-link" }, run.dag_run_id));
    if (run.dag_paused) message.append(" – queued: the DAG is paused.");
    load().catch(showError);
    loadDag().catch(showError);
  } catch (error) {
    message.className = "bad";
    message.textContent = error.message;
    $("bf-submit").disabled = false;
  }
}

// ---- wiring ---------------------------------------------------------------------------------

$("range-apply").addEventListener("click", () => {
  try {
    const start = parseIsoInput("From", $("range-start").value);
    const end = parseIsoInput("To", $("range-end").value);
    if (start == null || end == null) throw new Error("From, To: give both, e.g. 2026-11-24T00:00:00Z");
    if (end <= start) throw new Error(`To: ${iso(end)} is not after From ${iso(start)}`);
    setRange(start, end);
  } catch (error) {
    showError(error);
  }
});
for (const id of ["range-start", "range-end"]) {
  $(id).addEventListener("keydown", (event) => { if (event.key === "Enter") $("range-apply").click(); });
}
$("range-all").addEventListener("click", () => setRange(null, null));
$("range-out").addEventListener("click", () => {
  if (!state.shown) return;
  const [start, end] = state.shown;
  const half = Math.round((end - start) / 2000) * 1000;
  setRange(start - half, end + half);
});
$("selection-zoom").addEventListener("click", () => setRange(...state.selection));
$("selection-clear").addEventListener("click", () => { state.selection = null; $("selection").hidden = true; load().catch(showError); });
$("feature-set").addEventListener("change", () => {
  const [name, version] = $("feature-set").value.split(":");
  setView({ fs: name, v: version, start: null, end: null, job: null, run: null }, { push: true });
});
$("project").addEventListener("change", () => {
  setView({ project: $("project").value, fs: null, v: null, start: null, end: null, job: null, run: null,
    stores: [], dag_id: null }, { push: true, reload: false });
  loadStore().catch(showError);
});
for (const box of document.querySelectorAll("#stores-shown input")) {
  box.addEventListener("change", () => {
    const stores = [...document.querySelectorAll("#stores-shown input:checked")].map((b) => b.value);
    setView({ stores }, { push: true });
  });
}
wireGrid();
$("selection-backfill").addEventListener("click", openBackfill);
$("bf-cancel").addEventListener("click", () => $("backfill-dialog").close());
$("backfill-form").addEventListener("submit", submitBackfill);
$("backfill-form").addEventListener("change", () => dryRun());
window.addEventListener("resize", () => { if (state.current) load().catch(showError); });

init();
