// The page's view in the browser's address: feature store (project), feature set and version,
// stores shown, time range (the zoom), the grid's filters and the selected job. The page keeps
// it in its own query string and mirrors it into the Airflow UI's address around its frame
// (same origin), so that a reload, a bookmark or Back from another Airflow page restores it:
// - from Browse > Feature store (`/plugin/featurestore/...`), Airflow itself hands the frame
//   everything after the route on load (`/plugin/featurestore/featurestore/?fs=...`);
// - in a DAG's tab (`/dags/<id>/plugin/featurestore-dag`), Airflow gives the frame only the
//   view's href, so the page reads its view from the UI's query string itself.
// Navigating (another feature set, store or range) adds a history entry; filters replace it.
"use strict";

const VIEW_KEYS = ["project", "fs", "v", "stores", "start", "end", "status", "run", "job", "dag_id"];
const LISTS = new Set(["stores", "status"]);

function parseView(search) {
  const params = new URLSearchParams(search);
  const view = {};
  for (const key of VIEW_KEYS) {
    const value = params.get(key);
    if (value == null || value === "") continue;
    view[key] = LISTS.has(key) ? value.split(",").filter(Boolean) : value;
  }
  return view;
}

function viewSearch(view) {
  const params = new URLSearchParams();
  for (const key of VIEW_KEYS) {
    const value = view[key];
    if (value == null || value === "" || (Array.isArray(value) && !value.length)) continue;
    params.set(key, Array.isArray(value) ? value.join(",") : value);
  }
  const text = params.toString().replaceAll("%3A", ":").replaceAll("%2C", ",");
  return text ? "?" + text : "";
}

// The Airflow UI's address around the frame: its route's base and whether Airflow syncs it
// (a nav view) or the page must (a DAG tab). Null when not framed by the Airflow UI.
function parentRoute() {
  if (window.parent === window) return null;
  try {
    const path = window.parent.location.pathname;
    const match = path.match(/^(.*?\/plugin\/[^/]+)/);
    if (!match) return null;
    return { base: match[1], synced: !/\/dags\/[^/]+\/plugin\//.test(match[1]) };
  } catch (error) {
    return null;  // another origin: the frame's own address is all there is
  }
}

function readView() {
  const own = parseView(location.search);
  const route = parentRoute();
  if (route && !route.synced) {
    // A DAG tab: the UI's query string holds the view after a reload; the DAG id is ours.
    const outer = parseView(window.parent.location.search);
    if (Object.keys(outer).some((key) => key !== "dag_id")) return { ...outer, dag_id: own.dag_id };
  }
  return own;
}

function writeView(view, { push = false } = {}) {
  const search = viewSearch(view);
  if (search !== location.search) {
    const url = location.pathname + search;
    if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
  }
  mirrorView();  // also after Back in the frame: the UI's address follows
}

function mirrorView() {
  const route = parentRoute();
  if (!route) return;
  const outer = window.parent;
  const target = route.synced
    ? route.base + location.pathname + location.search
    : route.base + location.search;
  if (outer.location.pathname + outer.location.search === target) return;
  try {
    outer.history.replaceState(outer.history.state, "", target);  // keeps the UI router's own state
  } catch (error) {
    // the UI's address is not ours to change: the frame's own address still holds the view
  }
}

// ISO-8601 in UTC, as everything else on the page: 2026-11-24T00:00:00Z, or a date, a time
// without seconds, or without the Z. Null for an empty box; an Error saying what is wrong.
const ISO_INPUT = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$/;

function parseIsoInput(label, text) {
  const value = (text || "").trim();
  if (!value) return null;
  const match = value.match(ISO_INPUT);
  const when = match ? Date.UTC(+match[1], +match[2] - 1, +match[3], +(match[4] || 0), +(match[5] || 0), +(match[6] || 0)) : NaN;
  if (!match || Number.isNaN(when) || new Date(when).toISOString().slice(0, 10) !== value.slice(0, 10)) {
    throw new Error(`${label}: "${value}" is not a time in UTC such as 2026-11-24T00:00:00Z (or 2026-11-24)`);
  }
  return when;
}
