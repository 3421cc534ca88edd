// The billing pages' actions (api/admin/billing.py, docs/adr/0034): each
// calls the ops API with the session's CSRF token, as a script would; the
// refusal is shown in words. A corporation's and an invoice's page read the
// write path's state, so after a write the page reloads to show it, with a
// line saying what was done (kept in sessionStorage across the reload).
// No library.
"use strict";

(function () {
  const DONE = "ocpi-hub-billing-done";

  function show(id, text) {
    const el = document.getElementById(id);
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }

  async function call(method, url, csrf, body) {
    const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let answer;
    try {
      answer = await fetch(url, {
        method: method, credentials: "same-origin", headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Error("the server cannot be reached; try again");
    }
    let reply = {};
    try { reply = await answer.json(); } catch (e) { reply = {}; }
    if (!answer.ok || reply.status_code !== 1000) {
      if (answer.status === 403 && !reply.status_message) throw new Error("your role may not do this");
      throw new Error(reply.status_message || "the server answered HTTP " + answer.status);
    }
    return reply.data;
  }

  function reloadSaying(text) {
    try { window.sessionStorage.setItem(DONE, text); } catch (e) { /* private mode: no line */ }
    window.location.reload();
  }

  // What the previous action did, shown once after its reload.
  try {
    const said = window.sessionStorage.getItem(DONE);
    if (said) {
      window.sessionStorage.removeItem(DONE);
      show("billing-outcome", said);
    }
  } catch (e) { /* no storage: nothing to show */ }

  // --- a corporation: status, members -------------------------------------------------
  const corp = document.getElementById("corporation-actions");
  if (corp) {
    const csrf = corp.dataset.csrf;
    const base = "/ops/corporations/" + encodeURIComponent(corp.dataset.corporation);
    const reason = document.getElementById("status-reason");

    async function setStatus(status, done, button) {
      show("billing-problem", "");
      if (button) button.disabled = true;
      const body = { status: status };
      if (reason && reason.value.trim()) body.reason = reason.value.trim();
      try {
        await call("POST", base + "/status", csrf, body);
        reloadSaying(done);
      } catch (e) {
        show("billing-problem", "Not changed: " + e.message + ".");
        if (button) button.disabled = false;
      }
    }

    corp.addEventListener("click", function (event) {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.classList.contains("set-status")) {
        const suspend = button.dataset.status === "SUSPENDED";
        const question = suspend
          ? "Suspend " + corp.dataset.name + "? Its members' tokens stop authorizing until it is reinstated."
          : "Reinstate " + corp.dataset.name + "? Its members' tokens authorize again.";
        if (!window.confirm(question)) return;
        setStatus(button.dataset.status, suspend ? "Suspended." : "Reinstated.", button);
      } else if (button.id === "close-start") {
        // Closing cannot be undone: a step of its own, on the page.
        document.getElementById("close-confirm").hidden = false;
        document.getElementById("close-yes").focus();
      } else if (button.id === "close-no") {
        document.getElementById("close-confirm").hidden = true;
      } else if (button.id === "close-yes") {
        setStatus("CLOSED", "Closed for good.", button);
      }
    });

    const invite = document.getElementById("invite-form");
    if (invite) {
      invite.addEventListener("submit", async function (event) {
        event.preventDefault();
        show("billing-problem", "");
        const f = invite.elements;
        const body = { name: f.name.value.trim(), email: f.email.value.trim() };
        if (f.cost_centre.value.trim()) body.cost_centre = f.cost_centre.value.trim();
        if (f.rfid_uid.value.trim()) body.rfid_uid = f.rfid_uid.value.trim();
        const button = document.getElementById("invite-send");
        button.disabled = true;
        try {
          const member = await call("POST", base + "/members", csrf, body);
          reloadSaying("Invited " + member.name + " <" + member.email + ">: the e-mail goes out in a moment.");
        } catch (e) {
          show("billing-problem", "Not invited: " + e.message + ".");
          button.disabled = false;
        }
      });
    }

    const members = document.getElementById("members");
    if (members) {
      members.addEventListener("click", async function (event) {
        const button = event.target.closest("button.reinvite");
        if (!button) return;
        const row = button.closest("tr");
        if (!window.confirm("Invite " + row.dataset.email + " again? The link sent before stops working.")) return;
        show("billing-problem", "");
        button.disabled = true;
        try {
          await call("POST", base + "/members/" + encodeURIComponent(button.dataset.member) + "/invitation", csrf);
          reloadSaying("Invited " + row.dataset.email + " again: a new link goes out in a moment.");
        } catch (e) {
          show("billing-problem", "Not invited again: " + e.message + ".");
          button.disabled = false;
        }
      });
    }
  }

  // --- closing a month ----------------------------------------------------------------
  const closing = document.getElementById("close-month");
  if (closing) {
    const form = document.getElementById("close-form");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      show("close-outcome", "");
      show("close-problem", "");
      const month = form.elements.month.value.trim();
      if (!window.confirm("Close " + month + "? Every corporation with something to bill gets its invoice, numbered; this is done once.")) return;
      const button = document.getElementById("close-send");
      button.disabled = true;
      try {
        const r = await call("POST", "/ops/billing/months/" + encodeURIComponent(month) + "/close", closing.dataset.csrf);
        let text = r.month + " is closed: ";
        text += r.invoices === 1 ? "1 invoice" : r.invoices + " invoices";
        if (r.numbers.length) text += " (" + r.numbers.join(", ") + ")";
        text += ".";
        if (r.nothing_to_bill) text += " " + r.nothing_to_bill + " corporation(s) had nothing to bill.";
        if (r.skipped_later) text += " " + r.skipped_later + " already invoiced for a later month.";
        show("close-outcome", text);
      } catch (e) {
        show("close-problem", "Not closed: " + e.message + ".");
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- an invoice: paid, void, e-mail again ---------------------------------------------
  const inv = document.getElementById("invoice-actions");
  if (inv) {
    const csrf = inv.dataset.csrf;
    const base = "/ops/invoices/" + encodeURIComponent(inv.dataset.invoice);

    const paid = document.getElementById("paid-form");
    if (paid) {
      paid.addEventListener("submit", async function (event) {
        event.preventDefault();
        show("billing-problem", "");
        const body = {};
        if (paid.elements.paid_on.value) body.paid_on = paid.elements.paid_on.value;
        if (paid.elements.reference.value.trim()) body.reference = paid.elements.reference.value.trim();
        const button = document.getElementById("paid-send");
        button.disabled = true;
        try {
          const invoice = await call("POST", base + "/paid", csrf, body);
          reloadSaying("Marked paid on " + invoice.paid_on + ".");
        } catch (e) {
          show("billing-problem", "Not marked paid: " + e.message + ".");
          button.disabled = false;
        }
      });
    }

    const voiding = document.getElementById("void-form");
    if (voiding) {
      voiding.addEventListener("submit", async function (event) {
        event.preventDefault();
        if (!window.confirm("Void this invoice? It keeps its number, and its charges go on the next invoice.")) return;
        show("billing-problem", "");
        const button = document.getElementById("void-send");
        button.disabled = true;
        try {
          await call("POST", base + "/void", csrf, { reason: voiding.elements.reason.value.trim() });
          reloadSaying("Voided.");
        } catch (e) {
          show("billing-problem", "Not voided: " + e.message + ".");
          button.disabled = false;
        }
      });
    }
  }

  // Sending an invoice's e-mail again: offered only when the app serves it.
  const resend = document.getElementById("resend");
  if (resend) {
    const holder = document.getElementById("invoice-actions");
    resend.addEventListener("click", async function () {
      if (!window.confirm("Send this invoice's e-mail to the billing address again?")) return;
      show("billing-problem", "");
      resend.disabled = true;
      try {
        await call("POST", "/ops/invoices/" + encodeURIComponent(holder.dataset.invoice) + "/mail", holder.dataset.csrf);
        reloadSaying("The e-mail is on its way again.");
      } catch (e) {
        show("billing-problem", "Not sent: " + e.message + ".");
        resend.disabled = false;
      }
    });
  }
})();
