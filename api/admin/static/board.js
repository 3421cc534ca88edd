// The live EVSE status board (api/admin/pages.py, docs/adr/0033): the
// server renders the rows; this applies each status change the server
// streams (server-sent events) and keeps the counts in step. No library.
"use strict";

(function () {
  const table = document.getElementById("evses");
  if (!table) return;
  const body = table.tBodies[0];
  const empty = document.getElementById("empty");
  const live = document.getElementById("live");
  const wanted = {
    location: (table.dataset.location || "").toUpperCase(),
    party: (table.dataset.party || "").replace(/[-* ]/g, "").toUpperCase(),
    status: table.dataset.status || "",
  };

  function say(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  function bump(status, by) {
    const cell = document.querySelector('[data-count="' + status + '"]');
    if (cell) cell.textContent = String(Number(cell.textContent) + by);
  }

  function cell(label, text) {
    const td = document.createElement("td");
    td.dataset.label = label;
    td.textContent = text;
    return td;
  }

  function setStatus(row, status, lastUpdated) {
    const badge = row.querySelector(".status");
    badge.textContent = status;
    badge.className = "status status-" + status.toLowerCase();
    row.dataset.status = status;
    row.querySelector("time").textContent = lastUpdated;
    row.classList.remove("changed");
    void row.offsetWidth; // restart the highlight
    row.classList.add("changed");
  }

  function newRow(change) {
    const row = document.createElement("tr");
    row.dataset.key = change.evse_key;
    row.appendChild(cell("Location", change.location_id));
    row.appendChild(cell("EVSE", change.evse_uid));
    row.appendChild(cell("Party", change.country_code + "-" + change.party_id));
    const status = document.createElement("td");
    status.dataset.label = "Status";
    const badge = document.createElement("span");
    badge.className = "status";
    status.appendChild(badge);
    row.appendChild(status);
    const since = document.createElement("td");
    since.dataset.label = "Since";
    since.appendChild(document.createElement("time"));
    row.appendChild(since);
    return row;
  }

  function apply(change) {
    let row = body.querySelector('tr[data-key="' + CSS.escape(change.evse_key) + '"]');
    const shown = !wanted.status || wanted.status === change.status;
    if (row) {
      bump(row.dataset.status, -1);
      if (!shown) {
        row.remove();
      } else {
        setStatus(row, change.status, change.last_updated);
        bump(change.status, 1);
      }
    } else if (shown) {
      // The server only streams EVSEs of the board's location and party.
      row = newRow(change);
      body.appendChild(row);
      setStatus(row, change.status, change.last_updated);
      bump(change.status, 1);
    }
    const any = body.rows.length > 0;
    table.hidden = !any;
    empty.hidden = any;
  }

  const stream = new EventSource(table.dataset.stream);
  stream.addEventListener("open", function () {
    say("live", "Live: changes appear as they happen.");
  });
  stream.addEventListener("error", function () {
    say("offline", "Live updates interrupted; reconnecting…");
  });
  stream.addEventListener("evse", function (message) {
    apply(JSON.parse(message.data));
  });
  stream.addEventListener("reload", function () {
    // Changes were missed (a long disconnection): read the board afresh.
    stream.close();
    window.location.reload();
  });
  stream.addEventListener("signedout", function () {
    stream.close();
    say("offline", "Your session has ended. Sign in again to see live updates.");
  });
  window.addEventListener("beforeunload", function () { stream.close(); });
})();
