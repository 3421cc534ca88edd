// The chargers page's command form (api/admin/pages.py, docs/adr/0034):
// sends the command through the ops API with the session's CSRF token,
// then follows the command's state until the charger's result is decided.
// Polling one command for the minute or so it is open costs a read per
// second per waiting command, not per board; no library.
"use strict";

(function () {
  const form = document.getElementById("command-form");
  if (!form) return;
  const kind = document.getElementById("command-kind");
  const target = document.getElementById("command-target");
  const problem = document.getElementById("command-problem");
  const log = document.getElementById("command-log");
  const csrf = form.dataset.csrf;
  const GOOD = ["ACCEPTED", "CANCELED_RESERVATION"];

  // Show only the fields the chosen command takes.
  function fieldsFor() {
    form.querySelectorAll("[data-for]").forEach(function (label) {
      label.hidden = label.dataset.for.split(" ").indexOf(kind.value) < 0;
    });
  }
  kind.addEventListener("change", fieldsFor);
  fieldsFor();

  function value(name) {
    return (form.elements[name].value || "").trim();
  }

  function body() {
    const picked = target.options[target.selectedIndex];
    const at = {
      location_id: picked.dataset.location,
      evse_uid: picked.dataset.evse,
      connector_id: picked.dataset.connector,
    };
    switch (kind.value) {
      case "UNLOCK_CONNECTOR":
        return at;
      case "START_SESSION":
        return { location_id: at.location_id, evse_uid: at.evse_uid, connector_id: at.connector_id, token_uid: value("token_uid") };
      case "STOP_SESSION":
        return { session_id: value("session_id") };
      case "RESERVE_NOW": {
        const minutes = Number(value("minutes") || "15");
        const expiry = new Date(Date.now() + minutes * 60000).toISOString().replace(/\.\d+Z$/, "Z");
        // A reservation names the EVSE; OCPI's ReserveNow has no connector.
        return { location_id: at.location_id, evse_uid: at.evse_uid,
          token_uid: value("token_uid"), reservation_id: value("reservation_id"), expiry_date: expiry };
      }
      default:
        return { reservation_id: value("reservation_id") };
    }
  }

  function say(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  function td(label, text) {
    const cell = document.createElement("td");
    cell.dataset.label = label;
    cell.textContent = text;
    return cell;
  }

  function mark(cell, text, tone) {
    cell.textContent = text;
    cell.className = "command-result result-" + tone;
  }

  async function follow(id, cell) {
    const until = Date.now() + 10 * 60000;
    while (Date.now() < until) {
      await new Promise(function (done) { setTimeout(done, 1000); });
      let answer;
      try {
        answer = await fetch("/ops/commands/received/" + encodeURIComponent(id), {
          credentials: "same-origin", headers: { Accept: "application/json" },
        });
      } catch (e) {
        mark(cell, "Waiting (the server cannot be reached)…", "pending");
        continue;
      }
      if (answer.status === 401) { mark(cell, "Signed out: sign in again to see the result.", "bad"); return; }
      if (!answer.ok) continue; // not in the view yet, or a passing failure
      const doc = (await answer.json()).data || {};
      if (doc.result) {
        const words = (doc.result_message || []).map(function (m) { return m.text; }).join(" ");
        mark(cell, doc.result + (words ? " — " + words : ""), GOOD.indexOf(doc.result) >= 0 ? "ok" : "bad");
        cell.parentElement.dataset.result = doc.result;
        return;
      }
      const said = doc.charger_answer ? "charger said " + doc.charger_answer.result + "; deciding…" : "waiting for the charger…";
      mark(cell, said, "pending");
    }
    mark(cell, "No result after 10 minutes; see GET /ops/commands/received/" + id, "bad");
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    say("");
    const button = document.getElementById("command-send");
    button.disabled = true;
    try {
      const answer = await fetch("/ops/commands/given/" + kind.value, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify(body()),
      });
      let reply = {};
      try { reply = await answer.json(); } catch (e) { reply = {}; }
      if (!answer.ok || reply.status_code !== 1000) {
        say("Not sent: " + (reply.status_message || "the server answered HTTP " + answer.status) + ".");
        return;
      }
      const data = reply.data;
      const row = document.createElement("tr");
      row.dataset.command = data.command_id;
      row.appendChild(td("Sent", new Date().toISOString().slice(11, 19) + " UTC"));
      row.appendChild(td("Command", kind.value));
      const response = data.response;
      row.appendChild(td("Our answer", response.result + (response.message && response.message.length ? " — " + response.message.map(function (m) { return m.text; }).join(" ") : "")));
      const result = td("Charger's result", "");
      result.classList.add("command-result");
      row.appendChild(result);
      log.tBodies[0].prepend(row);
      log.hidden = false;
      if (response.result === "ACCEPTED") {
        mark(result, "waiting for the charger…", "pending");
        follow(data.command_id, result);
      } else {
        mark(result, "not sent to the charger", "bad");
      }
    } catch (e) {
      say("Not sent: the server cannot be reached. Try again.");
    } finally {
      button.disabled = false;
    }
  });
})();
