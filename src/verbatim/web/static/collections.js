// Collections: create and delete; a collection's items reordered by drag and drop or keyboard.
import { api, toast } from "./common.js";

document.getElementById("new-collection")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const c = await api("POST", "/api/v1/collections", { name: e.target.name.value });
    location.href = `/collections/${c.id}`;
  } catch (err) { toast(err.message); }
});

document.addEventListener("click", async (e) => {
  const del = e.target.closest("[data-delete-collection]");
  if (!del) return;
  const card = del.closest("[data-collection]");
  if (!confirm("Delete this collection? Its recordings stay in the library.")) return;
  try { await api("DELETE", `/api/v1/collections/${card.dataset.collection}`); card.remove(); }
  catch (err) { toast(err.message); }
});

const list = document.getElementById("items");
// Reordering and removing only where the page offers them (not to a role that reads only).
if (list && "editable" in list.dataset) {
  const cid = list.dataset.collection;
  const items = () => [...list.querySelectorAll("li[data-transcription]")];
  const relabel = () => items().forEach((li, i) => {
    li.setAttribute("aria-label", `${li.querySelector("a").textContent}, position ${i + 1}`);
  });

  /** Tell the server where `li` now is (after its previous sibling, or before its next). */
  async function save(li) {
    const prev = li.previousElementSibling, next = li.nextElementSibling;
    const body = prev ? { after: prev.dataset.transcription } : { before: next.dataset.transcription };
    try {
      await api("POST", `/api/v1/collections/${cid}/items/${li.dataset.transcription}/move`, body);
      relabel();
      toast(`Moved to position ${items().indexOf(li) + 1}`);
    } catch (err) { toast(err.message); location.reload(); }
  }

  function move(li, direction) {
    const other = direction < 0 ? li.previousElementSibling : li.nextElementSibling;
    if (!other) return;
    if (direction < 0) other.before(li); else other.after(li);
    li.focus();
    save(li);
  }

  let dragged = null;
  list.addEventListener("dragstart", (e) => {
    dragged = e.target.closest("li");
    dragged.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", dragged.dataset.transcription);
  });
  list.addEventListener("dragover", (e) => {
    e.preventDefault();
    const over = e.target.closest("li[data-transcription]");
    if (!over || over === dragged) return;
    const r = over.getBoundingClientRect();
    if (e.clientY < r.top + r.height / 2) over.before(dragged); else over.after(dragged);
  });
  list.addEventListener("drop", (e) => { e.preventDefault(); });
  list.addEventListener("dragend", () => {
    if (!dragged) return;
    dragged.classList.remove("dragging");
    save(dragged);
    dragged = null;
  });
  list.addEventListener("keydown", (e) => {
    const li = e.target.closest("li[data-transcription]");
    if (!li || e.target !== li || !e.altKey) return;
    if (e.key === "ArrowUp") { e.preventDefault(); move(li, -1); }
    if (e.key === "ArrowDown") { e.preventDefault(); move(li, 1); }
  });
  list.addEventListener("click", async (e) => {
    const li = e.target.closest("li[data-transcription]");
    const button = e.target.closest("button");
    if (!li || !button) return;
    if (button.dataset.move) move(li, button.dataset.move === "up" ? -1 : 1);
    if (button.hasAttribute("data-remove")) {
      try { await api("DELETE", `/api/v1/collections/${cid}/items/${li.dataset.transcription}`); li.remove(); relabel(); }
      catch (err) { toast(err.message); }
    }
  });
}

document.getElementById("collection-export")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const cid = document.getElementById("items").dataset.collection;
  const formats = [...e.target.querySelectorAll("input[name=formats]:checked")].map((c) => c.value);
  const state = document.getElementById("export-state");
  try {
    const started = await api("POST", `/api/v1/collections/${cid}/exports`, { formats });
    state.textContent = "preparing…";
    for (;;) {
      const job = await api("GET", `/api/v1/jobs/${started.job_id}`);
      if (job.status === "completed") break;
      if (["failed", "cancelled"].includes(job.status)) throw new Error(job.error_message || job.status);
      state.textContent = `preparing… ${Math.round(job.progress)}%`;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const link = document.createElement("a");
    link.href = started.download_url;
    link.textContent = "Download the zip";
    link.id = "export-link";
    state.replaceChildren(link);
    link.focus();
  } catch (err) { state.textContent = `failed: ${err.message}`; }
});
