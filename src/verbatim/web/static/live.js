// Live job progress from the server's event streams (decision 0018): `/api/v1/events` for every
// job of the active tenant (the library), `/api/v1/jobs/{id}/events` for one job (a recording).
// The cookie session rides along, so a plain EventSource works. Polling the jobs API is only
// the fallback for when a stream cannot be opened or is closed for good.
import { api } from "./common.js";

const FINAL = ["completed", "failed", "cancelled"];

/** Calls `onJob(job)` for every job event of the active tenant. `fallback(onJob)` is started
 * (once) when the stream fails; it must poll. Returns an object whose `.close()` stops it. */
export function tenantEvents(onJob, fallback) {
  return open("/api/v1/events", onJob, fallback);
}

/** One job's events until it ends; polls GET /api/v1/jobs/{id} when the stream fails. */
export function jobEvents(jobId, onJob) {
  return open(`/api/v1/jobs/${jobId}/events`, onJob, (emit, stopped) => pollJob(jobId, emit, stopped), true);
}

function open(url, onJob, fallback, untilFinal = false) {
  const state = { source: null, polling: false, closed: false };
  let failures = 0;
  const startFallback = () => {
    if (state.polling || state.closed) return;
    state.polling = true;
    state.source?.close();
    document.documentElement.dataset.liveMode = "polling";
    fallback(onJob, () => state.closed);
  };
  if (!("EventSource" in window)) { startFallback(); return close(state); }
  const source = new EventSource(url, { withCredentials: true });
  state.source = source;
  source.addEventListener("open", () => {
    failures = 0;
    document.documentElement.dataset.liveMode = "events";
  });
  source.addEventListener("job", (e) => {
    failures = 0;
    let job;
    try { job = JSON.parse(e.data); } catch { return; /* a malformed event is skipped */ }
    // A job's own stream ends with its final state: close it rather than let the browser
    // reconnect to hear that there is nothing more.
    if (untilFinal && isFinal(job)) { state.closed = true; source.close(); }
    onJob(job);
  });
  source.addEventListener("error", () => {
    if (state.closed) return;
    // CLOSED: the server refused the stream (not an EventSource answer) — it will not retry.
    // Otherwise the browser reconnects by itself with Last-Event-ID; after a few failed
    // tries in a row, poll instead.
    failures += 1;
    if (source.readyState === EventSource.CLOSED || failures >= 3) startFallback();
  });
  return close(state);
}

function close(state) {
  return { close: () => { state.closed = true; state.source?.close(); } };
}

/** The fallback for one job: GET it every 1.5 s until it ends. */
export async function pollJob(jobId, emit, stopped = () => false) {
  while (!stopped()) {
    let job;
    try { job = await api("GET", `/api/v1/jobs/${jobId}`); }
    catch { return; }
    emit(job);
    if (FINAL.includes(job.status)) return;
    await new Promise((r) => setTimeout(r, 1500));
  }
}

export const isFinal = (job) => FINAL.includes(job.status);
