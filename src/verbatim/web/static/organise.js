// Topics and voice profiles: create, rename, delete through the REST API.
import { api, toast } from "./common.js";

document.getElementById("new-topic")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  try {
    await api("POST", "/api/v1/topics", { name: f.name.value, description: f.description.value || null });
    location.reload();
  } catch (err) { toast(err.message); }
});

document.querySelectorAll(".profile-form").forEach((form) => {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = form.closest("[data-profile]").dataset.profile;
    try { await api("PATCH", `/api/v1/voice-profiles/${id}`, { name: form.name.value }); toast("Renamed"); }
    catch (err) { toast(err.message); }
  });
});

document.addEventListener("click", async (e) => {
  const topic = e.target.closest("[data-delete-topic]");
  const profile = e.target.closest("[data-delete-profile]");
  try {
    if (topic) {
      const row = topic.closest("[data-topic]");
      if (!confirm("Delete this topic and its assignments?")) return;
      await api("DELETE", `/api/v1/topics/${row.dataset.topic}`);
      row.remove();
    } else if (profile) {
      const card = profile.closest("[data-profile]");
      if (!confirm("Delete this voice profile?")) return;
      await api("DELETE", `/api/v1/voice-profiles/${card.dataset.profile}`);
      card.remove();
    }
  } catch (err) { toast(err.message); }
});
