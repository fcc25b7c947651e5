// The library: uploads with per-file progress, links, live job progress, bulk actions.
import { api, ApiError, csrfToken, toast } from "./common.js";
import { isFinal, tenantEvents } from "./live.js";

const list = document.getElementById("uploads");

const transcribeOptions = () =>
  (document.getElementById("detect-speakers")?.checked ? { mode: "dialogue" } : {});

function uploadRow(name) {
  const li = document.createElement("li");
  li.innerHTML = `<span class="name"></span><progress max="100" value="0"></progress><span class="state">waiting</span>`;
  li.querySelector(".name").textContent = name;
  list.append(li);
  return {
    li,
    progress: (p) => { li.querySelector("progress").value = p; },
    state: (s) => { li.querySelector(".state").textContent = s; },
  };
}

/** POST the file with XMLHttpRequest: fetch() cannot report upload progress. */
function sendFile(file, row) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/audio");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) row.progress(Math.round((e.loaded / e.total) * 100)); };
    xhr.onload = () => (xhr.status < 300 ? resolve(xhr.response) : reject(new ApiError(xhr.status, xhr.response)));
    xhr.onerror = () => reject(new Error("network error"));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// --- direct upload (presigned, multipart in parallel, resumable) ---------------------------

const DIRECT_FROM = Number(document.getElementById("dropzone")?.dataset.directFrom || 0);
const PARALLEL_PARTS = 3;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** PUT a blob to a presigned URL, reporting bytes sent. Rejects with .retry on network errors
 * and 5xx answers (worth another try), without it on other refusals. */
function put(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status < 300) { onProgress(blob.size); resolve(); return; }
      const err = new Error(`storage answered ${xhr.status}`);
      err.retry = xhr.status >= 500;
      reject(err);
    };
    xhr.onerror = () => { const err = new Error("network error"); err.retry = true; reject(err); };
    xhr.send(blob);
  });
}

async function putWithRetry(url, blob, onProgress, tries = 6) {
  for (let attempt = 1; ; attempt++) {
    try { return await put(url, blob, onProgress); }
    catch (err) {
      onProgress(0);
      if (!err.retry || attempt >= tries) throw err;
      await sleep(Math.min(8000, 400 * 2 ** attempt));
    }
  }
}

/** A large file straight to storage. The upload's id is remembered (per file name, size and
 * date), so choosing the same file again after a failure or a reload resumes it: the server
 * says which parts it is missing, and only those are sent. */
async function directUpload(file, row) {
  const key = `verbatim-upload:${file.name}:${file.size}:${file.lastModified}`;
  let upload = null;
  const saved = localStorage.getItem(key);
  if (saved) {
    try { upload = await api("GET", `/api/v1/uploads/${saved}`); } catch { upload = null; }
    if (upload && upload.status !== "pending") upload = null;
  }
  if (!upload) {
    upload = await api("POST", "/api/v1/uploads", { filename: file.name, size: file.size, content_type: file.type || null });
    localStorage.setItem(key, upload.id);
  }
  const sent = new Map();
  const progress = () => row.progress(Math.round(([...sent.values()].reduce((a, b) => a + b, 0) / file.size) * 100));
  const parts = upload.multipart
    ? upload.multipart.parts.map((p) => ({ ...p, offset: (p.part_number - 1) * upload.multipart.part_size }))
    : [{ part_number: 1, size: file.size, url: upload.url, offset: 0 }];
  const send = async (todo) => {
    const queue = [...todo];
    const worker = async () => {
      for (let part = queue.shift(); part; part = queue.shift()) {
        const blob = file.slice(part.offset, part.offset + part.size);
        await putWithRetry(part.url, blob, (n) => { sent.set(part.part_number, n); progress(); });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, queue.length) }, worker));
  };
  let todo = parts;
  if (saved && upload.multipart) {
    // Resuming: ask what is missing by trying to complete.
    try {
      const audio = await api("POST", upload.complete_url, {});
      localStorage.removeItem(key);
      return audio;
    } catch (err) {
      if (err.code !== "upload_incomplete") throw err;
      const missing = new Set(err.body?.error?.details?.missing_parts || parts.map((p) => p.part_number));
      parts.filter((p) => !missing.has(p.part_number)).forEach((p) => sent.set(p.part_number, p.size));
      todo = parts.filter((p) => missing.has(p.part_number));
    }
  }
  row.state(`uploading ${parts.length > 1 ? `${parts.length} parts` : "directly"}`);
  await send(todo);
  row.state("checking");
  const audio = await api("POST", upload.complete_url, {});
  localStorage.removeItem(key);
  return audio;
}

// --- live progress: one event stream for the page, polling only when it fails ---------------

const latest = new Map(); // job id -> its newest state
const waiting = new Map(); // job id -> [callbacks]

function dispatch(job) {
  latest.set(job.id, job);
  (waiting.get(job.id) || []).forEach((cb) => cb(job));
  updateBadge(job);
}

/** Fallback: poll every job the page is following, until each has ended. */
async function pollAll(emit, stopped) {
  while (!stopped()) {
    const ids = new Set([...waiting.keys(), ...[...document.querySelectorAll("#library [data-job]")].map((b) => b.dataset.job)]);
    for (const id of ids) {
      if (latest.has(id) && isFinal(latest.get(id))) continue;
      try { emit(await api("GET", `/api/v1/jobs/${id}`)); } catch { latest.set(id, { id, status: "failed" }); }
    }
    await new Promise((r) => setTimeout(r, 1500));
  }
}

/** Resolves with the job's final state; `onChange` sees every state on the way. */
function followJob(jobId, row) {
  return new Promise((resolve) => {
    const seen = (job) => {
      row.progress(Math.round(job.progress ?? 0));
      row.state(job.status === "running" ? `${job.stage || "running"} ${Math.round(job.progress ?? 0)}%` : job.status);
      if (isFinal(job)) { waiting.delete(jobId); resolve(job); }
    };
    waiting.set(jobId, [...(waiting.get(jobId) || []), seen]);
    // The stream may have told us about this job before we asked.
    if (latest.has(jobId)) seen(latest.get(jobId));
  });
}

async function ingest(file) {
  const row = uploadRow(file.name);
  try {
    row.state("uploading");
    const audio = DIRECT_FROM && file.size >= DIRECT_FROM ? await directUpload(file, row) : await sendFile(file, row);
    row.state(audio.is_duplicate ? "already in the library" : "uploaded");
    const started = await api("POST", `/api/v1/audio/${audio.id}/transcriptions`, transcribeOptions());
    row.li.dataset.audio = audio.id;
    row.progress(0);
    const job = await followJob(started.job_id, row);
    row.li.querySelector(".name").innerHTML = `<a href="/recordings/${audio.id}"></a>`;
    row.li.querySelector(".name a").textContent = file.name;
    row.state(job.status === "completed" ? "transcribed" : `${job.status}: ${job.error_message || job.error_code || ""}`);
    row.li.dataset.done = job.status;
  } catch (err) {
    row.state(`failed: ${err.message}`);
    row.li.dataset.done = "failed";
  }
}

function setupUpload() {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  // A role that reads only (a viewer) gets no upload controls: nothing to set up.
  if (!zone || !input || !list) return;
  const run = (files) => Promise.all([...files].map(ingest)).then(() => toast("All files done"));
  input.addEventListener("change", () => { run(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); run(e.dataTransfer.files); });
  document.getElementById("url-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const field = document.getElementById("url-input");
    const row = uploadRow(field.value);
    try {
      const job = await api("POST", "/api/v1/audio/downloads", { url: field.value, transcribe: transcribeOptions() });
      field.value = "";
      const done = await followJob(job.id, row);
      row.state(done.status === "completed" ? "downloaded, transcribing" : `${done.status}: ${done.error_message || done.error_code || ""}`);
    } catch (err) {
      row.state(`failed: ${err.message}`);
    }
  });
}

/** A row's badge and bar follow its job's events. */
function updateBadge(job) {
  const badge = document.querySelector(`#library [data-job="${job.id}"]`);
  if (!badge || badge.dataset.final) return;
  badge.textContent = job.status;
  badge.className = `badge ${job.status}`;
  const bar = badge.parentElement.querySelector("progress");
  if (bar) bar.value = job.progress ?? 0;
  if (isFinal(job)) { badge.dataset.final = "1"; bar?.remove(); }
}

function setupLiveJobs() {
  tenantEvents(dispatch, pollAll);
}

function setupBulk() {
  const table = document.getElementById("library");
  const picks = () => [...table.querySelectorAll(".pick:checked")].map((c) => c.closest("tr"));
  // Delete and add-to-collection are left out of the page for a role that reads only.
  const controls = ["bulk-delete", "bulk-collection", "bulk-collect", "bulk-format", "bulk-export"]
    .map((id) => document.getElementById(id))
    .filter(Boolean);
  const update = () => {
    const n = picks().length;
    document.getElementById("selected-count").textContent = `${n} selected`;
    controls.forEach((c) => { c.disabled = n === 0; });
  };
  table.addEventListener("change", (e) => {
    if (e.target.id === "select-all") table.querySelectorAll(".pick").forEach((c) => { c.checked = e.target.checked; });
    update();
  });
  document.getElementById("bulk-delete")?.addEventListener("click", async () => {
    const rows = picks();
    if (!confirm(`Delete ${rows.length} recording(s) and their transcripts?`)) return;
    const result = await api("POST", "/api/v1/audio/batch-delete", { ids: rows.map((r) => r.dataset.audio) });
    toast(`Deleted ${result.deleted?.length ?? rows.length}`);
    location.reload();
  });
  document.getElementById("bulk-collect")?.addEventListener("click", async () => {
    const collection = document.getElementById("bulk-collection").value;
    if (!collection) { toast("Make a collection first"); return; }
    let added = 0;
    for (const row of picks()) {
      if (!row.dataset.transcription) continue;
      try { await api("POST", `/api/v1/collections/${collection}/items`, { transcription_id: row.dataset.transcription }); added += 1; }
      catch (err) { if (err.code !== "already_in_collection") toast(err.message); }
    }
    toast(`Added ${added} to the collection`);
  });
  document.getElementById("bulk-export").addEventListener("click", () => {
    const format = document.getElementById("bulk-format").value;
    // One download per transcript; the browser saves each under the server's file name.
    picks().filter((r) => r.dataset.transcription).forEach((row, i) => {
      setTimeout(() => {
        const a = document.createElement("a");
        a.href = `/api/v1/transcriptions/${row.dataset.transcription}/export?format=${format}`;
        a.download = "";
        document.body.append(a); a.click(); a.remove();
      }, i * 300);
    });
  });
  update();
}

setupUpload();
setupLiveJobs();
setupBulk();
