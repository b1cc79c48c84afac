// The per-interval grid (/api/grid): one row per stretch of time one job set, newest first,
// its status in each store, its job (state, rows, duration, checks, reasons) and the Airflow run
// and task log that ran it; filtered by data status and by Airflow run; a Cancel button on a
// live job for users who may edit the DAG that runs it.
"use strict";

const REASON_TITLES = {
  "cancelled": "the job was cancelled: its unfinished time is Incomplete",
  "lost": "the store no longer has this time (featurestore check): the next backfill rewrites it",
  "late data": "a source file changed after it was materialized (featurestore check --sources)",
  "lease expired": "the process running the job stopped without finishing it",
  "failed": "the job failed: see its error in the job list",
  "partial lookback": "its read range (window with source_lookback) was not covered by source data",
  "checks failed": "a quality check of severity error found violations",
  "checks warned": "a quality check of severity warn found violations",
};

function runLink(airflow) {
  if (!airflow || !airflow.dag_id || !airflow.run_id) return null;
  return `${AIRFLOW_ROOT}/dags/${encodeURIComponent(airflow.dag_id)}/runs/${encodeURIComponent(airflow.run_id)}`;
}

function fetchGrid() {
  const params = new URLSearchParams({ feature_set: state.current.name, version: state.current.version });
  if (state.shown) { params.set("start", iso(state.shown[0])); params.set("end", iso(state.shown[1])); }
  params.set("stores", shownStores().join(","));
  if (state.view.status?.length) params.set("status", state.view.status.join(","));
  if (state.view.run) params.set("run_id", state.view.run);
  return api("/api/grid?" + params);
}

function renderGridFilters() {
  for (const box of document.querySelectorAll("#grid-status input")) {
    box.checked = (state.view.status || []).includes(box.value);
  }
  const select = $("grid-run");
  const runs = [...new Set([...state.grid.runs, ...(state.view.run ? [state.view.run] : [])])];
  select.replaceChildren(element("option", { value: "" }, "every run"),
    ...runs.map((run) => element("option", { value: run }, run)));
  select.value = state.view.run || "";
  const live = liveJobs().filter((job) => job.airflow && job.airflow.run_id === state.view.run);
  const button = $("grid-cancel-run");
  button.hidden = !(state.view.run && live.length && live.every(canCancel));
  button.textContent = `Cancel the run's ${live.length} live job(s)`;
}

function renderGrid() {
  const grid = state.grid;
  const stores = grid.stores;
  const head = $("grid").tHead.rows[0];
  head.replaceChildren(...["Window (UTC)", ...stores, "Job", "State", "Rows read", "Rows written", "Duration",
    "Checks", "Reasons", "Airflow", ""].map((text) => element("th", {}, text)));
  const body = $("grid").tBodies[0];
  body.replaceChildren();
  $("grid-scope").textContent = grid.start
    ? `${grid.total_rows} interval(s) in ${grid.start} → ${grid.end}, newest first`
      + (grid.truncated ? ` (the newest ${grid.rows.length} shown: narrow the range)` : "")
    : "";
  if (!grid.rows.length) {
    const tr = element("tr");
    tr.append(element("td", { colspan: stores.length + 10 },
      grid.start ? "no interval matches the filters" : "no time requested yet"));
    body.append(tr);
    return;
  }
  for (const row of grid.rows) body.append(...gridRows(row, stores));
  if (state.view.job) highlightJob(state.view.job, { scroll: false });
}

// A row of the grid per job that set the stretch (usually one; none for time never materialized).
function gridRows(row, stores) {
  const jobs = row.job_ids.length ? row.job_ids : [null];
  return jobs.map((id, index) => {
    const job = id ? state.grid.jobs[id] : null;
    const tr = element("tr", { "data-start": row.start, "data-end": row.end, "data-job": id || "" });
    if (index === 0) {
      const span = { rowspan: jobs.length };
      tr.append(element("td", { ...span, class: "window" }, `${row.start} → ${row.end}`));
      for (const store of stores) {
        const cell = row.stores[store];
        const td = element("td", { ...span, class: "status", "data-store": store, "data-status": cell.status });
        td.append(element("i", { class: `swatch s-${cell.status}` }), cell.status);
        tr.append(td);
      }
    }
    tr.append(...jobCells(job));
    return tr;
  });
}

function jobCells(job) {
  if (!job) return [element("td", { colspan: 9, class: "muted" }, "never materialized")];
  const seconds = job.started_at ? ((job.finished_at ? ms(job.finished_at) : Date.now()) - ms(job.started_at)) / 1000 : null;
  const written = Object.entries(job.rows_written || {}).map(([s, n]) => `${s} ${n.toLocaleString("en")}`).join(", ");
  const reasons = element("td", { class: "reasons" });
  for (const reason of job.reasons) {
    reasons.append(element("span", { class: `reason reason-${reason.replaceAll(" ", "-")}`, title: REASON_TITLES[reason] || "" }, reason));
  }
  if (job.error) reasons.title = job.error;
  return [
    element("td", { class: "id" }, job.id),
    element("td", { class: `state state-${job.state}` }, job.state),
    element("td", { class: "num" }, job.rows_read == null ? "" : job.rows_read.toLocaleString("en")),
    element("td", {}, written),
    element("td", { class: "num" }, duration(seconds)),
    checksCell(job.checks || []),
    reasons,
    airflowCell(job),
    actionCell(job),
  ];
}

function airflowCell(job) {
  const cell = element("td", { class: "airflow" });
  const run = runLink(job.airflow);
  if (!run) { cell.textContent = "CLI"; return cell; }
  const a = job.airflow;
  const runA = element("a", { href: run, target: "_top", class: "run-link airflow-link", title: `${a.dag_id} / ${a.run_id}` }, "run");
  const log = element("a", { href: taskLink(a), target: "_top", class: "log-link airflow-link",
    title: `${a.dag_id} / ${a.run_id} / ${a.task_id}${a.map_index >= 0 ? ` [${a.map_index}]` : ""}` }, `log (try ${a.try_number})`);
  cell.append(runA, " · ", log);
  return cell;
}

const LIVE = new Set(["queued", "running"]);
const liveJobs = () => Object.values(state.grid?.jobs || {}).filter((job) => LIVE.has(job.state));
const canCancel = (job) => state.editableDags.includes(job.airflow?.dag_id || state.backfillDag);

function actionCell(job) {
  const cell = element("td", { class: "action" });
  if (LIVE.has(job.state) && canCancel(job)) {
    const button = element("button", { type: "button", class: "cancel-job" }, "Cancel");
    button.addEventListener("click", () => cancelJobs({ job_id: job.id }, `job ${job.id}`, button));
    cell.append(button);
  }
  return cell;
}

// Airflow's frame may not open confirm() (its sandbox has no allow-modals): the first click arms
// the button, a second one within 5 s cancels.
async function cancelJobs(target, what, button) {
  if (!button.dataset.armed) {
    button.dataset.armed = button.textContent;
    button.textContent = "Really cancel?";
    button.title = `Cancel ${what}: queued jobs never start; a running batch stops at its next chunk`;
    setTimeout(() => {
      if (button.dataset.armed) { button.textContent = button.dataset.armed; delete button.dataset.armed; }
    }, 5000);
    return;
  }
  delete button.dataset.armed;
  button.disabled = true;
  try {
    const done = await api("/api/cancel", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ feature_set: state.current.name, version: state.current.version, ...target }),
    });
    $("grid-message").textContent = `Cancelled ${done.cancelled.length} job(s): ${done.cancelled.join(", ")}`;
    load().catch(showError);
  } catch (error) {
    $("grid-message").textContent = error.message;
    button.disabled = false;
  }
}

// A click on a timeline bar: the grid's row holding that time (and its job), in view.
function focusInterval(bar, store) {
  const t = ms(bar.segment ? bar.segment.start : bar.start);
  const rows = [...$("grid").tBodies[0].rows].filter((tr) => tr.dataset.start
    && ms(tr.dataset.start) <= t && t < ms(tr.dataset.end));
  const match = rows.find((tr) => !bar.job_id || tr.dataset.job === bar.job_id) || rows[0];
  if (!match) {
    $("grid-message").textContent = `The interval at ${iso(t)} (${store}) is not in the grid: clear its filters.`;
    return;
  }
  $("grid-message").textContent = "";
  const job = match.dataset.job || null;
  setView({ job }, { reload: false });
  highlightJob(job, { scroll: true, row: match });
}

function wireGrid() {
  for (const box of document.querySelectorAll("#grid-status input")) {
    box.addEventListener("change", () => {
      const status = [...document.querySelectorAll("#grid-status input:checked")].map((b) => b.value);
      setView({ status, job: null });
    });
  }
  $("grid-run").addEventListener("change", () => setView({ run: $("grid-run").value || null, job: null }));
  $("grid-clear").addEventListener("click", () => setView({ status: [], run: null }));
  $("grid-cancel-run").addEventListener("click", () =>
    cancelJobs({ run_id: state.view.run }, `the live jobs of run ${state.view.run}`, $("grid-cancel-run")));
}
