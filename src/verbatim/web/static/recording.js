// The recording page: player-synced transcript, seeking, keyboard, speakers, topics,
// collections, versions, and editing turns in place.
//
// The highlight runs on requestAnimationFrame: each frame finds the current word by binary
// search over the words' start times and moves one class between two spans. The DOM is never
// rebuilt while playing; frame intervals and the work per frame are kept for measurement
// (window.verbatimPlayer.stats()).
import { api, clock, toast } from "./common.js";
import { isFinal, jobEvents } from "./live.js";

const root = document.getElementById("recording");
const media = document.getElementById("media");
const transcript = document.getElementById("transcript");
const tid = root.dataset.transcription;
const RATES = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];

let spans = [];
let starts = new Float64Array(0);
let current = -1;
let currentTurn = null;
let running = false;
let lastFrame = 0;
const follow = document.getElementById("follow") || { checked: false };
const gaps = [];   // ms between frames while playing (last 2000)
const work = [];   // ms of our work per frame (last 2000)

function indexWords() {
  if (!transcript) return;
  spans = transcript.getElementsByTagName("span");
  spans = Array.prototype.filter.call(spans, (s) => s.dataset.s !== undefined);
  starts = new Float64Array(spans.length);
  for (let i = 0; i < spans.length; i++) starts[i] = parseFloat(spans[i].dataset.s);
  current = -1;
}

/** The last word starting at or before t (-1 before the first). */
function wordAt(t) {
  let lo = 0, hi = starts.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid] <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

function push(list, value) { list.push(value); if (list.length > 2000) list.shift(); }

function highlight() {
  const i = wordAt(media.currentTime);
  if (i === current) return;
  if (current >= 0 && spans[current]) spans[current].classList.remove("now");
  current = i;
  if (i < 0) return;
  const span = spans[i];
  span.classList.add("now");
  const turn = span.closest(".turn");
  const newTurn = turn !== currentTurn;
  if (newTurn) {
    currentTurn?.classList.remove("active");
    turn?.classList.add("active");
    currentTurn = turn;
  }
  // Reading a position forces layout: only when the turn changes, and now and then within a
  // long turn, rather than for every word.
  if ((newTurn || i % 16 === 0) && follow.checked) {
    const r = span.getBoundingClientRect();
    if (r.top < 120 || r.bottom > innerHeight - 40) span.scrollIntoView({ block: "center" });
  }
}

function frame(now) {
  const t0 = performance.now();
  if (lastFrame) push(gaps, now - lastFrame);
  lastFrame = now;
  highlight();
  push(work, performance.now() - t0);
  if (!media.paused && !media.ended) requestAnimationFrame(frame);
  else { running = false; lastFrame = 0; }
}

function startLoop() {
  if (running) return;
  running = true;
  requestAnimationFrame(frame);
}

window.verbatimPlayer = {
  stats: () => ({ gaps: [...gaps], work: [...work], words: starts.length }),
  currentWord: () => current,
  startOf: (i) => starts[i],
};

function seek(t, play = true) {
  media.currentTime = Math.max(0, t);
  highlight();
  if (play) media.play().catch(() => {});
}

function setRate(step) {
  const at = RATES.indexOf(media.playbackRate);
  const next = RATES[Math.min(RATES.length - 1, Math.max(0, (at < 0 ? 2 : at) + step))];
  media.playbackRate = next;
  document.getElementById("speed").textContent = `${next}×`;
}

function turnStarts() {
  return [...transcript.querySelectorAll(".turn")].map((t) => parseFloat(t.querySelector(".time").dataset.seek));
}

function jumpTurn(direction) {
  const list = turnStarts();
  const t = media.currentTime;
  if (direction > 0) { const n = list.find((s) => s > t + 0.05); if (n !== undefined) seek(n, !media.paused); }
  else {
    const before = list.filter((s) => s < t - 1);
    seek(before.length ? before[before.length - 1] : 0, !media.paused);
  }
}

function setupPlayer() {
  media.addEventListener("play", startLoop);
  media.addEventListener("seeked", highlight);
  media.addEventListener("ratechange", () => { document.getElementById("speed").textContent = `${media.playbackRate}×`; });
  transcript?.addEventListener("click", (e) => {
    const span = e.target.closest(".words span");
    if (span && !span.closest(".editing")) { seek(parseFloat(span.dataset.s)); return; }
    const time = e.target.closest("[data-seek]");
    if (time) seek(parseFloat(time.dataset.seek));
  });
  // The places the engines disagreed (reconciled transcripts) play from their start.
  document.getElementById("agreement-spans")?.addEventListener("click", (e) => {
    const time = e.target.closest("[data-seek]");
    if (time) seek(parseFloat(time.dataset.seek));
  });
  document.addEventListener("keydown", (e) => {
    const tag = e.target.tagName;
    if (["INPUT", "TEXTAREA", "SELECT", "AUDIO", "VIDEO"].includes(tag) || e.target.isContentEditable) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key;
    // A focused (low-agreement) word: Enter seeks to it, as a click does.
    if (key === "Enter" && tag === "SPAN" && e.target.closest(".words")) { e.preventDefault(); e.target.click(); return; }
    if (key === " " || key === "k") {
      if (tag === "BUTTON" && key === " ") return;
      e.preventDefault();
      if (media.paused) media.play().catch(() => {}); else media.pause();
    } else if (key === "j" || key === "ArrowLeft") { e.preventDefault(); seek(media.currentTime - 5, !media.paused); }
    else if (key === "l" || key === "ArrowRight") { e.preventDefault(); seek(media.currentTime + 5, !media.paused); }
    else if (key === "[") setRate(-1);
    else if (key === "]") setRate(1);
    else if (key === "n") jumpTurn(1);
    else if (key === "p") jumpTurn(-1);
  });
  // ?t=SECONDS (a search result): start playing there.
  const t = parseFloat(new URLSearchParams(location.search).get("t"));
  if (!Number.isNaN(t)) {
    const go = () => {
      media.currentTime = t;
      highlight();
      media.play().catch(() => {
        const note = document.getElementById("autoplay-note");
        note.hidden = false;
        note.textContent = `Press play to start at ${clock(t)}`;
      });
    };
    if (media.readyState >= 1) go(); else media.addEventListener("loadedmetadata", go, { once: true });
  }
}

// --- speakers, topics, collections, versions -------------------------------------------------

const speakerNames = JSON.parse(document.getElementById("speaker-data")?.textContent || "{}");

function setupSpeakers() {
  document.querySelectorAll(".speaker-form").forEach((form) => {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const label = form.closest("li").dataset.label;
      const name = form.display_name.value.trim();
      try {
        const s = await api("PATCH", `/api/v1/transcriptions/${tid}/speakers/${encodeURIComponent(label)}`, {
          display_name: name || null,
          save_voice: Boolean(form.save_voice?.checked && name),
        });
        speakerNames[label] = s.name;
        document.querySelectorAll(`.who[data-label="${CSS.escape(label)}"]`).forEach((el) => { el.textContent = s.name; });
        toast(form.save_voice?.checked && name ? `Saved ${s.name} and their voice` : `Renamed to ${s.name}`);
      } catch (err) { toast(err.message); }
    });
  });
}

function setupTopics() {
  document.getElementById("topics")?.addEventListener("click", async (e) => {
    const button = e.target.closest("[data-assign]");
    if (!button) return;
    const li = button.closest("li");
    try {
      const a = await api("PUT", `/api/v1/transcriptions/${tid}/topics/${li.dataset.topic}`, { status: button.dataset.assign });
      const badge = li.querySelector(".badge");
      badge.textContent = a.status;
      badge.className = `badge ${a.status}`;
    } catch (err) { toast(err.message); }
  });
}

function setupCollections() {
  document.getElementById("collect-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const select = document.getElementById("collect-select");
    try {
      await api("POST", `/api/v1/collections/${select.value}/items`, { transcription_id: tid });
      toast(`Added to ${select.selectedOptions[0].textContent}`);
    } catch (err) { toast(err.code === "already_in_collection" ? "Already in that collection" : err.message); }
  });
}

function setupVersions() {
  document.getElementById("recording").addEventListener("click", async (e) => {
    const button = e.target.closest("[data-diff]");
    if (!button) return;
    const to = Number(button.dataset.diff);
    const box = document.getElementById("diff");
    try {
      const diff = await api("GET", `/api/v1/transcriptions/${tid}/versions/diff?from=${to - 1}&to=${to}`);
      box.replaceChildren();
      const h = document.createElement("h3");
      h.textContent = `v${to - 1} → v${to}`;
      box.append(h);
      if (!diff.changes.length) box.append("Only speakers or timings changed.");
      for (const change of diff.changes) {
        const p = document.createElement("p");
        for (const w of change.words) {
          const el = document.createElement(w.op === "delete" ? "del" : w.op === "insert" ? "ins" : "span");
          el.textContent = `${w.text} `;
          p.append(el);
        }
        box.append(p);
      }
    } catch (err) { toast(err.message); }
  });
}

function addVersion(version, summary) {
  root.dataset.version = version;
  let list = document.getElementById("versions");
  if (!list) {
    document.getElementById("versions-empty")?.remove();
    list = document.createElement("ol");
    list.id = "versions"; list.className = "versions"; list.reversed = true;
    const diff = document.createElement("div"); diff.id = "diff"; diff.className = "diff";
    document.getElementById("ver-h").after(list, diff);
  }
  const li = document.createElement("li");
  li.dataset.version = version;
  li.innerHTML = `<strong>v${version}</strong> edit · just now <div class="hint"></div><button type="button" class="small ghost" data-diff="${version}">Changes</button>`;
  li.querySelector(".hint").textContent = summary;
  list.prepend(li);
}

// --- editing ------------------------------------------------------------------------------

function wordsHtml(words, fallback, start) {
  const p = document.createDocumentFragment();
  const list = words.length ? words : [{ start, word: fallback }];
  list.forEach((w, i) => {
    const span = document.createElement("span");
    span.dataset.s = Number(w.start).toFixed(3);
    span.textContent = String(w.word).trim();
    p.append(span);
    if (i < list.length - 1) p.append(" ");
  });
  return p;
}

function openEditor(turn) {
  const template = document.getElementById("editor-template");
  if (!template || turn.classList.contains("editing")) return; // no editor for a read-only role
  turn.classList.add("editing");
  const words = turn.querySelector(".words");
  const original = [...words.querySelectorAll("span")].map((s) => s.textContent).join(" ");
  const form = template.content.firstElementChild.cloneNode(true);
  const area = form.querySelector("textarea");
  area.value = original;
  area.id = `edit-${turn.dataset.index}`;
  form.querySelector("label").htmlFor = area.id;
  const select = form.querySelector(".editor-speaker");
  const labels = Object.keys(speakerNames);
  if (labels.length) {
    select.hidden = false;
    select.id = `edit-spk-${turn.dataset.index}`;
    form.querySelectorAll("label")[1].htmlFor = select.id;
    for (const label of labels) {
      const o = new Option(speakerNames[label], label, false, label === turn.dataset.speaker);
      select.append(o);
    }
  }
  words.hidden = true;
  words.after(form);
  area.focus();
  const close = () => { form.remove(); words.hidden = false; turn.classList.remove("editing"); };
  const base = () => (root.dataset.version ? Number(root.dataset.version) : undefined);
  const index = Number(turn.dataset.index);
  const reloadAt = () => {
    const url = new URL(location.href);
    url.searchParams.set("t", media.currentTime.toFixed(2));
    location.replace(url);
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { base_version: base() };
    if (area.value.trim() !== original.trim()) body.text = area.value;
    if (labels.length && select.value !== turn.dataset.speaker) body.speaker = select.value;
    if (body.text === undefined && body.speaker === undefined) { close(); return; }
    try {
      const result = await api("PATCH", `/api/v1/transcriptions/${tid}/segments/${index}`, body);
      const seg = result.segments[0];
      words.replaceChildren(wordsHtml(seg.words, seg.text, seg.start));
      if (seg.speaker) {
        turn.dataset.speaker = seg.speaker;
        const who = turn.querySelector(".who");
        who.dataset.label = seg.speaker;
        who.textContent = seg.speaker_name;
        const colour = [...document.querySelectorAll("#speakers li")].find((li) => li.dataset.label === seg.speaker)?.className;
        turn.className = turn.className.replace(/spk-\d/, colour || "spk-0");
      }
      close();
      indexWords();
      addVersion(result.version, `turn ${index} edited`);
      toast(`Saved as version ${result.version}`);
    } catch (err) {
      toast(err.code === "version_conflict" ? "Someone else edited this transcript: reloading" : err.message);
      if (err.code === "version_conflict") setTimeout(reloadAt, 1200);
    }
  });
  form.addEventListener("click", async (e) => {
    const act = e.target.closest("[data-act]")?.dataset.act;
    if (!act) return;
    if (act === "cancel") { close(); return; }
    try {
      if (act === "split") {
        if (area.value.trim() !== original.trim()) { toast("Save the text first, then split"); return; }
        const before = area.value.slice(0, area.selectionStart);
        const tokens = before.split(/\s+/).filter(Boolean);
        const wordIndex = /\s$/.test(before) || !before ? tokens.length : tokens.length - 1;
        await api("POST", `/api/v1/transcriptions/${tid}/segments/${index}/split`, { word_index: wordIndex, base_version: base() });
      } else if (act === "merge") {
        await api("POST", `/api/v1/transcriptions/${tid}/segments/${index}/merge`, { base_version: base() });
      }
      reloadAt();
    } catch (err) { toast(err.message); }
  });
  form.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { close(); turn.querySelector(".edit").focus(); }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
}

function setupEditing() {
  transcript?.addEventListener("click", (e) => {
    const button = e.target.closest(".edit");
    if (button) openEditor(button.closest(".turn"));
  });
}

// --- not transcribed yet -------------------------------------------------------------------

function setupPending() {
  document.getElementById("transcribe")?.addEventListener("click", async () => {
    try { await api("POST", `/api/v1/audio/${root.dataset.audio}/transcriptions`, {}); location.reload(); }
    catch (err) { toast(err.message); }
  });
  if (tid && ["pending", "running"].includes(root.dataset.status)) {
    const bar = document.getElementById("job-progress");
    const stage = document.getElementById("job-stage");
    if (root.dataset.job) {
      // The job's own event stream; it polls the job only if the stream fails (live.js).
      jobEvents(root.dataset.job, (job) => {
        const p = Math.round(job.progress ?? 0);
        if (bar) { bar.value = p; bar.textContent = `${p}%`; }
        if (stage) stage.textContent = job.status === "running" ? `${job.stage || "running"} ${p}%` : job.status;
        if (isFinal(job)) location.reload();
      });
      return;
    }
    const poll = async () => {
      const t = await api("GET", `/api/v1/transcriptions/${tid}?segments_limit=0`);
      if (t.status !== root.dataset.status && !["pending", "running"].includes(t.status)) location.reload();
      else setTimeout(poll, 2000);
    };
    setTimeout(poll, 2000);
  }
}

indexWords();
setupPlayer();
setupSpeakers();
setupTopics();
setupCollections();
setupVersions();
setupEditing();
setupPending();
// For the page-speed test: when the transcript became usable (words indexed, handlers on).
window.verbatimReady = performance.now();
