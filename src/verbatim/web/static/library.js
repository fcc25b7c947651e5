// The library: uploads with per-file progress, links, live job progress, bulk actions.
import { api, ApiError, csrfToken, toast } from "./common.js";

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

async function followJob(jobId, row) {
  for (;;) {
    const job = await api("GET", `/api/v1/jobs/${jobId}`);
    row.progress(Math.round(job.progress));
    row.state(job.status === "running" ? `${job.stage || "running"} ${Math.round(job.progress)}%` : job.status);
    if (["completed", "failed", "cancelled"].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function ingest(file) {
  const row = uploadRow(file.name);
  try {
    row.state("uploading");
    const audio = await sendFile(file, row);
    row.state(audio.is_duplicate ? "already in the library" : "uploaded");
    const started = await api("POST", `/api/v1/audio/${audio.id}/transcriptions`, transcribeOptions());
    row.li.dataset.audio = audio.id;
    row.progress(0);
    const job = await followJob(started.job_id, row);
    row.li.querySelector(".name").innerHTML = `<a href="/recordings/${audio.id}"></a>`;
    row.li.querySelector(".name a").textContent = file.name;
    row.state(job.status === "completed" ? "transcribed" : `${job.status}: ${job.error_message || ""}`);
    row.li.dataset.done = job.status;
  } catch (err) {
    row.state(`failed: ${err.message}`);
    row.li.dataset.done = "failed";
  }
}

function setupUpload() {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  const run = (files) => Promise.all([...files].map(ingest)).then(() => toast("All files done"));
  input.addEventListener("change", () => { run(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); run(e.dataTransfer.files); });
  document.getElementById("url-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const field = document.getElementById("url-input");
    const row = uploadRow(field.value);
    try {
      const job = await api("POST", "/api/v1/downloads", { url: field.value, transcribe: transcribeOptions() });
      field.value = "";
      const done = await followJob(job.id, row);
      row.state(done.status === "completed" ? "downloaded, transcribing" : `${done.status}: ${done.error_message || ""}`);
    } catch (err) {
      row.state(`failed: ${err.message}`);
    }
  });
}

/** Rows with a running job: poll the jobs API and update their badge and bar. */
function setupLiveJobs() {
  const badges = [...document.querySelectorAll("#library [data-job]")];
  if (!badges.length) return;
  const tick = async () => {
    let pending = 0;
    for (const badge of badges) {
      if (badge.dataset.final) continue;
      try {
        const job = await api("GET", `/api/v1/jobs/${badge.dataset.job}`);
        badge.textContent = job.status;
        badge.className = `badge ${job.status}`;
        const bar = badge.parentElement.querySelector("progress");
        if (bar) bar.value = job.progress;
        if (["completed", "failed", "cancelled"].includes(job.status)) { badge.dataset.final = "1"; bar?.remove(); }
        else pending += 1;
      } catch { badge.dataset.final = "1"; }
    }
    if (pending) setTimeout(tick, 1500);
  };
  setTimeout(tick, 1000);
}

function setupBulk() {
  const table = document.getElementById("library");
  const picks = () => [...table.querySelectorAll(".pick:checked")].map((c) => c.closest("tr"));
  const controls = ["bulk-delete", "bulk-collection", "bulk-collect", "bulk-format", "bulk-export"].map((id) => document.getElementById(id));
  const update = () => {
    const n = picks().length;
    document.getElementById("selected-count").textContent = `${n} selected`;
    controls.forEach((c) => { c.disabled = n === 0; });
  };
  table.addEventListener("change", (e) => {
    if (e.target.id === "select-all") table.querySelectorAll(".pick").forEach((c) => { c.checked = e.target.checked; });
    update();
  });
  document.getElementById("bulk-delete").addEventListener("click", async () => {
    const rows = picks();
    if (!confirm(`Delete ${rows.length} recording(s) and their transcripts?`)) return;
    const result = await api("POST", "/api/v1/audio/batch-delete", { ids: rows.map((r) => r.dataset.audio) });
    toast(`Deleted ${result.deleted?.length ?? rows.length}`);
    location.reload();
  });
  document.getElementById("bulk-collect").addEventListener("click", async () => {
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
