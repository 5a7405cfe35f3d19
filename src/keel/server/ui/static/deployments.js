// Keel web UI, a deployment's page: the time to the rollout's next step counts down, and
// with "Refresh every 5 s" ticked the page reloads to show the live split and figures.
// Plain JavaScript; only text is set.
"use strict";

const RELOAD_MS = 5000;

function inWords(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s`
    : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

function countdown() {
  const el = document.getElementById("next-step");
  if (!el) return;
  const due = Number(el.dataset.dueMs);
  if (!Number.isFinite(due)) return;
  const when = el.textContent;
  const tick = () => { el.textContent = `${when} (${inWords(due - Date.now())})`; };
  tick();
  setInterval(tick, 1000);
}

function autoRefresh() {
  // Opt-in, remembered per browser: a page that reloads under the reader's eyes by default
  // would lose their scroll position and selection.
  const box = document.getElementById("auto-refresh");
  if (!box) return;
  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    if (!box.checked) return;
    timer = setTimeout(() => {
      if (document.visibilityState === "visible") window.location.reload();
      else schedule(); // a hidden tab waits until it is looked at again
    }, RELOAD_MS);
  };
  box.checked = window.localStorage.getItem("keel.deployments.refresh") === "on";
  box.addEventListener("change", () => {
    window.localStorage.setItem("keel.deployments.refresh", box.checked ? "on" : "off");
    schedule();
  });
  schedule();
}

countdown();
autoRefresh();
