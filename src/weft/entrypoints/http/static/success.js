// Success page: shows the checkout's outcome; a paid checkout may still be confirming, so poll a few times.
(function () {
  "use strict";

  var POLL_DELAYS_MS = [1000, 2000, 3000, 4000, 5000, 5000];
  var DONE = ["completed", "complete", "active", "paid", "succeeded"];
  var WAITING = ["pending", "processing", "open"];

  var title = document.getElementById("success-title");
  var message = document.getElementById("status-message");
  var details = document.getElementById("details");
  var program = document.body.dataset.program || "us";

  function setText(id, text) {
    document.getElementById(id).textContent = text;
  }

  function showRow(rowId, valueId, text) {
    document.getElementById(rowId).hidden = !text;
    setText(valueId, text || "");
  }

  function cadence(paymentType) {
    if (paymentType === "monthly") { return "Monthly"; }
    if (paymentType === "one_time") { return "One-time"; }
    return "";
  }

  function tierName(tier) {
    if (tier === "free") { return "Free"; }
    if (tier === "custom") { return "Custom amount"; }
    return "$" + String(tier) + " tier";
  }

  function amountText(session) {
    if (session.tier === "free" || typeof session.amount !== "number") { return ""; }
    return "$" + session.amount.toLocaleString("en-US");
  }

  function showDetails(session) {
    setText("detail-tier", tierName(session.tier));
    showRow("amount-row", "detail-amount", amountText(session));
    showRow("cadence-row", "detail-cadence", session.tier === "free" ? "" : cadence(session.payment_type));
    showRow("email-row", "detail-email", session.email);
    showRow("phone-row", "detail-phone", session.phone);
    details.hidden = false;
    document.getElementById("test-banner").hidden = !session.test_mode;
  }

  // What happens with texts (welcome on its way, reply YES first, or none: opted out) comes from the server,
  // which knows the number's consent; the page only shows it.
  function showConfirmed(session) {
    title.textContent = session.title;
    message.textContent = session.tier === "free"
      ? "Thank you for joining."
      : "Thank you for your support. Your payment is confirmed.";
    showDetails(session);
    var next = document.getElementById("next-steps");
    next.textContent = session.next_steps;
    next.hidden = false;
    document.body.dataset.outcome = session.outcome;
  }

  function showWaiting(session, attempt) {
    title.textContent = "Thank you!";
    message.textContent = attempt < POLL_DELAYS_MS.length
      ? "Your payment is being confirmed. This usually takes a few seconds…"
      : "Your payment is still being confirmed. We'll text you once it's done; you can close this page.";
    showDetails(session);
  }

  function showProblem(session) {
    title.textContent = "Payment not completed";
    var text = session.status === "expired"
      ? "This checkout expired before it was paid. You can start again from the home page."
      : "We could not complete this payment (" + String(session.status) + "). No membership was charged.";
    message.textContent = text;
  }

  function handle(session, attempt) {
    if (DONE.indexOf(session.status) >= 0) {
      showConfirmed(session);
    } else if (WAITING.indexOf(session.status) >= 0) {
      showWaiting(session, attempt);
      if (attempt < POLL_DELAYS_MS.length) {
        window.setTimeout(function () { load(attempt + 1); }, POLL_DELAYS_MS[attempt]);
      }
    } else {
      showProblem(session);
    }
  }

  function userError(text) {
    var error = new Error(text);
    error.userMessage = text;
    return error;
  }

  function fail(text) {
    title.textContent = "Something went wrong";
    message.textContent = text;
  }

  function load(attempt) {
    var sessionId = new URLSearchParams(window.location.search).get("session_id");
    if (!sessionId) {
      fail("This link is missing its checkout reference.");
      return;
    }
    fetch("/api/stripe/session?session_id=" + encodeURIComponent(sessionId), { headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 404) { throw userError("We could not find that sign-up."); }
        if (!response.ok) { throw userError("We could not check your sign-up just now. Please refresh in a moment."); }
        return response.json();
      })
      .then(function (session) { handle(session, attempt); })
      .catch(function (error) {
        fail((error && error.userMessage) || "We could not reach " + program + ". Please refresh in a moment.");
      });
  }

  load(0);
})();
