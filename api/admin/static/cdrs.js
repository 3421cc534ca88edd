// The CDRs page's credit action (api/admin/pages.py, docs/adr/0034):
// POST /ops/cdrs/{id}/credit with the session's CSRF token, after asking;
// the answer (the Credit CDR) is shown on the row. No library.
"use strict";

(function () {
  const table = document.getElementById("cdrs");
  if (!table) return;
  const csrf = table.dataset.csrf;
  const problem = document.getElementById("credit-problem");

  function say(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  table.addEventListener("click", async function (event) {
    const button = event.target.closest("button.credit");
    if (!button) return;
    const id = button.dataset.cdr;
    if (!window.confirm("Issue a Credit CDR for " + id + "? It goes to the eMSP and cannot be undone.")) return;
    say("");
    button.disabled = true;
    try {
      const answer = await fetch("/ops/cdrs/" + encodeURIComponent(id) + "/credit", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
      });
      let reply = {};
      try { reply = await answer.json(); } catch (e) { reply = {}; }
      if (!answer.ok || reply.status_code !== 1000) {
        say("Not credited: " + (reply.status_message || "the server answered HTTP " + answer.status) + ".");
        button.disabled = false;
        return;
      }
      const credit = reply.data;
      const cell = button.parentElement;
      const row = cell.parentElement;
      row.dataset.credited = "yes";
      const total = credit.total_cost ? credit.total_cost.excl_vat + " " + credit.currency : "";
      cell.textContent = "credited by " + credit.id + (total ? " (" + total + ")" : "");
    } catch (e) {
      say("Not credited: the server cannot be reached. Try again.");
      button.disabled = false;
    }
  });
})();
