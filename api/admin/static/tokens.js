// The tokens page's policy form (api/admin/pages.py, docs/adr/0034): PUT
// /ops/tokens/{uid}/policy?type= with the session's CSRF token, then the
// page is read again to show the policy as recorded. No library.
"use strict";

(function () {
  const table = document.getElementById("tokens");
  if (!table) return;
  const csrf = table.dataset.csrf;
  const problem = document.getElementById("policy-problem");

  table.addEventListener("submit", async function (event) {
    const form = event.target.closest("form.policy-form");
    if (!form) return;
    event.preventDefault();
    problem.hidden = true;
    const body = { state: form.elements.state.value };
    const expires = form.elements.expires_at.value;
    if (expires) body.expires_at = (expires.length === 16 ? expires + ":00" : expires) + "Z";
    const places = form.elements.location_ids.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    if (places.length) body.location_ids = places;
    const url = "/ops/tokens/" + encodeURIComponent(form.dataset.uid) + "/policy?type=" + encodeURIComponent(form.dataset.type);
    try {
      const answer = await fetch(url, {
        method: "PUT", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify(body),
      });
      let reply = {};
      try { reply = await answer.json(); } catch (e) { reply = {}; }
      if (!answer.ok || reply.status_code !== 1000) {
        problem.textContent = "Policy not set: " + (reply.status_message || "the server answered HTTP " + answer.status) + ".";
        problem.hidden = false;
        return;
      }
      window.location.reload();
    } catch (e) {
      problem.textContent = "Policy not set: the server cannot be reached. Try again.";
      problem.hidden = false;
    }
  });
})();
