// The partners page's actions (api/admin/pages.py, docs/adr/0034): invite
// (shows TOKEN_A once), rotate a partner's token, unregister; each through
// the ops API with the session's CSRF token. No library.
"use strict";

(function () {
  const problem = document.getElementById("partner-problem");

  function say(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  async function call(method, url, csrf, body) {
    const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(url, {
      method: method, credentials: "same-origin", headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let reply = {};
    try { reply = await answer.json(); } catch (e) { reply = {}; }
    if (!answer.ok || reply.status_code !== 1000) {
      throw new Error(reply.status_message || "the server answered HTTP " + answer.status);
    }
    return reply.data;
  }

  const invite = document.getElementById("invite-form");
  if (invite) {
    invite.addEventListener("submit", async function (event) {
      event.preventDefault();
      say("");
      const f = invite.elements;
      const body = { country_code: f.country_code.value.trim().toUpperCase(),
        party_id: f.party_id.value.trim().toUpperCase(), role: f.role.value };
      if (f.partner_id.value.trim()) body.partner_id = f.partner_id.value.trim();
      const button = document.getElementById("invite-send");
      button.disabled = true;
      try {
        const data = await call("POST", "/ops/partners", invite.dataset.csrf, body);
        document.getElementById("token-a-partner").textContent = data.partner_id;
        document.getElementById("token-a-value").textContent = data.token_a;
        document.getElementById("token-a-url").textContent = data.versions_url;
        document.getElementById("token-a").hidden = false;
        invite.reset();
      } catch (e) {
        say("Not invited: " + e.message + ".");
      } finally {
        button.disabled = false;
      }
    });
  }

  const list = document.getElementById("partners");
  if (!list) return;
  list.addEventListener("click", async function (event) {
    const button = event.target.closest("button.rotate, button.unregister");
    if (!button) return;
    const id = button.dataset.partner;
    const actions = button.parentElement;
    const outcome = actions.querySelector(".outcome");
    const rotate = button.classList.contains("rotate");
    const localOnly = actions.querySelector(".local-only").checked;
    const question = rotate
      ? "Give " + id + " a new token to call us with? Their old one stops working once they have it."
      : "End the registration with " + id + (localOnly ? " without telling them" : "") + "? Nothing more is pushed to them, and they can no longer call us.";
    if (!window.confirm(question)) return;
    say("");
    button.disabled = true;
    try {
      const url = "/ops/partners/" + encodeURIComponent(id);
      if (rotate) {
        await call("POST", url + "/rotate", list.dataset.csrf);
        outcome.textContent = "Token rotated.";
      } else {
        await call("DELETE", url + (localOnly ? "?local_only=true" : ""), list.dataset.csrf);
        outcome.textContent = "Unregistered.";
        actions.closest("[data-partner]").dataset.status = "unregistered";
      }
    } catch (e) {
      say((rotate ? "Not rotated" : "Not unregistered") + " (" + id + "): " + e.message + ".");
    } finally {
      button.disabled = false;
    }
  });
})();
