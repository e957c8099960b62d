// Landing page: tier choice, contact dialog, checkout request. User data only ever goes into .value/.textContent.
(function () {
  "use strict";

  var PHONE_KEY = "checkoutPhoneNumber";
  var TOKEN_KEY = "checkoutLinkToken";
  var CHOICE_KEY = "checkoutTierChoice";
  var CHECKOUT_URL = "/api/stripe/create-checkout-session";
  var PHONE_SHAPE = /^\+?[0-9][0-9 ().-]{5,24}$/;

  var form = document.getElementById("tier-form");
  var customGroup = document.getElementById("custom-amount-group");
  var customInput = document.getElementById("custom-amount");
  var customError = document.getElementById("custom-amount-error");
  var cadenceGroup = document.getElementById("payment-type-group");
  var dialog = document.getElementById("contact-dialog");
  var contactForm = document.getElementById("contact-form");
  var emailInput = document.getElementById("contact-email");
  var phoneInput = document.getElementById("contact-phone");
  var summary = document.getElementById("contact-summary");
  var submitButton = document.getElementById("contact-submit");
  var alertRegion = document.getElementById("contact-alert");
  var continueButton = document.getElementById("continue");
  var joiningAs = document.getElementById("joining-as");
  var phoneField = document.getElementById("phone-field");
  var program = document.body.dataset.program || "us";
  var CENTS_MESSAGE = "Amounts are in whole dollars: enter {low} or {high}, not {text}";

  var bounds = {
    min: parseInt(form.dataset.minAmount, 10) || 1,
    max: parseInt(form.dataset.maxAmount, 10) || 1000,
    message: form.dataset.boundsMessage
  };
  var linkToken = null;

  function storage(kind) {
    try {
      return window[kind];
    } catch (e) {
      return null; // storage can be disabled (private mode, blocked cookies)
    }
  }

  function remember(kind, key, value) {
    var store = storage(kind);
    if (store) {
      try { store.setItem(key, value); } catch (e) { /* quota or disabled: the page still works */ }
    }
  }

  function recall(kind, key) {
    var store = storage(kind);
    return store ? store.getItem(key) : null;
  }

  // A raw "+" in a query string decodes to a space, so " 14155550123" means "+14155550123".
  function phoneFromQuery(params) {
    var raw = params.get("phone");
    if (raw === null) { return null; }
    var phone = /^ [0-9]/.test(raw) ? "+" + raw.slice(1) : raw;
    phone = phone.trim();
    return PHONE_SHAPE.test(phone) ? phone : null;
  }

  function readLink() {
    var params = new URLSearchParams(window.location.search);
    var phone = phoneFromQuery(params);
    if (phone) { remember("localStorage", PHONE_KEY, phone); }
    if (params.get("t")) { remember("sessionStorage", TOKEN_KEY, params.get("t")); }
    linkToken = params.get("t") || recall("sessionStorage", TOKEN_KEY);
    phoneInput.value = phone || recall("localStorage", PHONE_KEY) || "";
  }

  function selectedTier() {
    var checked = form.querySelector("input[name=tier]:checked");
    return checked ? checked.value : "free";
  }

  function paymentType() {
    var checked = form.querySelector("input[name=payment_type]:checked");
    return checked ? checked.value : "one_time";
  }

  function showError(element, input, message) {
    element.textContent = message;
    element.hidden = !message;
    if (input) { input.setAttribute("aria-invalid", message ? "true" : "false"); }
  }

  function updateTierFields() {
    var tier = selectedTier();
    customGroup.hidden = tier !== "custom";
    cadenceGroup.hidden = tier === "free";
    continueButton.textContent = tier === "free" ? "Join for free" : "Continue to payment";
    if (tier !== "custom") { showError(customError, customInput, ""); }
  }

  // The same rules as the server: "25", "$25", "1,000" and "25.00" are whole dollars; "12.50" is refused.
  function parseAmount(raw) {
    var text = raw.trim();
    var whole = /^\$?\s*([0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,9})(?:\.0{1,2})?$/.exec(text);
    if (whole) {
      var amount = parseInt(whole[1].replace(/,/g, ""), 10);
      return amount >= bounds.min && amount <= bounds.max ? { dollars: amount } : { error: bounds.message };
    }
    var cents = /^\$?\s*([0-9][0-9,]{0,12})\.([0-9]{1,2})$/.exec(text);
    if (cents && /^[0-9]+$/.test(cents[1].replace(/,/g, ""))) {
      var low = parseInt(cents[1].replace(/,/g, ""), 10);
      return { error: CENTS_MESSAGE.replace("{low}", low.toLocaleString("en-US"))
        .replace("{high}", (low + 1).toLocaleString("en-US")).replace("{text}", text) };
    }
    return { error: bounds.message };
  }

  function customAmount() {
    var parsed = parseAmount(customInput.value);
    return parsed.error ? null : parsed.dollars;
  }

  function validateAmount() {
    if (selectedTier() !== "custom") { return true; }
    var parsed = parseAmount(customInput.value);
    showError(customError, customInput, parsed.error || "");
    return !parsed.error;
  }

  function saveChoice() {
    remember("sessionStorage", CHOICE_KEY, JSON.stringify(
      { tier: selectedTier(), payment_type: paymentType(), amount: customInput.value }));
  }

  // The choice survives a reload and a cancelled checkout; a new visit (a new tab) starts on Free.
  function restoreChoice() {
    var saved = null;
    try { saved = JSON.parse(recall("sessionStorage", CHOICE_KEY) || "null"); } catch (e) { saved = null; }
    var tier = saved && form.querySelector("input[name=tier][value='" + String(saved.tier).replace(/[^a-z0-9]/g, "") + "']");
    (tier || form.querySelector("#tier-free")).checked = true;
    var cadence = saved && form.querySelector("#payment-" + (saved.payment_type === "monthly" ? "monthly" : "one-time"));
    if (cadence) { cadence.checked = true; }
    customInput.value = saved && typeof saved.amount === "string" ? saved.amount : "";
  }

  // "+1 415 ••• 0123": enough to recognise your number, not enough to read it off the screen.
  function maskedPhone(phone) {
    var digits = phone.replace(/[^0-9]/g, "");
    var last = digits.slice(-4);
    if (phone.charAt(0) === "+" && digits.charAt(0) === "1" && digits.length === 11) {
      return "+1 " + digits.slice(1, 4) + " ••• " + last;
    }
    if (phone.charAt(0) === "+") { return "+" + digits.slice(0, 2) + " ••• " + last; }
    return digits.length === 10 ? digits.slice(0, 3) + " ••• " + last : "••• " + last;
  }

  function showPhone(editing) {
    var phone = phoneInput.value.trim();
    var summarise = !editing && phone !== "";
    joiningAs.hidden = !summarise;
    phoneField.hidden = summarise;
    document.getElementById("joining-as-text").textContent = summarise ? "Joining as " + maskedPhone(phone) : "";
  }

  function changePhone() {
    showPhone(true);
    phoneInput.focus();
  }

  function choiceSummary() {
    var tier = selectedTier();
    if (tier === "free") { return "Free membership"; }
    var dollars = tier === "custom" ? customAmount() : parseInt(tier, 10);
    var cadence = paymentType() === "monthly" ? "monthly" : "one-time";
    return "$" + dollars.toLocaleString("en-US") + " " + cadence;
  }

  function clearContactErrors() {
    showError(document.getElementById("contact-email-error"), emailInput, "");
    showError(document.getElementById("contact-phone-error"), phoneInput, "");
    alertRegion.textContent = "";
  }

  function openDialog() {
    clearContactErrors();
    summary.textContent = choiceSummary();
    submitButton.textContent = selectedTier() === "free" ? "Join for free" : "Go to payment";
    if (!phoneInput.value) { phoneInput.value = recall("localStorage", PHONE_KEY) || ""; }
    showPhone(false);
    dialog.showModal();
    emailInput.focus();
  }

  function validateContact() {
    var emailOk = emailInput.value.trim() !== "" && emailInput.validity.valid;
    var phoneOk = phoneInput.value.trim() !== "";
    showError(document.getElementById("contact-email-error"), emailInput,
      emailOk ? "" : "Enter your email address, like name@example.org");
    showError(document.getElementById("contact-phone-error"), phoneInput,
      phoneOk ? "" : "Enter your mobile phone number");
    if (!phoneOk) { showPhone(true); }
    if (!emailOk) { emailInput.focus(); } else if (!phoneOk) { phoneInput.focus(); }
    return emailOk && phoneOk;
  }

  function payload() {
    var tier = selectedTier();
    var body = { tier: tier, email: emailInput.value.trim(), phone: phoneInput.value.trim(), token: linkToken };
    if (tier !== "free") { body.payment_type = paymentType(); }
    if (tier === "custom") { body.amount = customAmount(); }
    return body;
  }

  function showServerError(data) {
    var message = (data && typeof data.error === "string") ? data.error : "Something went wrong. Please try again.";
    var field = data && data.field;
    if (field === "email" || field === "phone") {
      if (field === "phone") { showPhone(true); }
      var input = field === "email" ? emailInput : phoneInput;
      showError(document.getElementById("contact-" + field + "-error"), input, message);
      input.focus();
    } else if (field === "amount") {
      dialog.close();
      showError(customError, customInput, message);
      customInput.focus();
    } else {
      alertRegion.textContent = message;
    }
  }

  function setBusy(busy) {
    submitButton.disabled = busy;
    contactForm.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function followResponse(response, data) {
    var target = response.ok && data ? (data.redirect || data.url) : null;
    if (target) {
      window.location.assign(target);
      return;
    }
    setBusy(false);
    showServerError(data);
  }

  function submitContact(event) {
    event.preventDefault();
    clearContactErrors();
    if (!validateContact()) { return; }
    remember("localStorage", PHONE_KEY, phoneInput.value.trim());
    setBusy(true);
    fetch(CHECKOUT_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(payload())
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        followResponse(response, data);
      });
    }).catch(function () {
      setBusy(false);
      alertRegion.textContent = "We could not reach " + program + ". Check your connection and try again.";
    });
  }

  function submitTier(event) {
    event.preventDefault();
    if (!validateAmount()) {
      customInput.focus();
      return;
    }
    openDialog();
  }

  form.addEventListener("change", function () { updateTierFields(); saveChoice(); });
  form.addEventListener("submit", submitTier);
  customInput.addEventListener("input", function () {
    saveChoice();
    if (!customError.hidden && customAmount() !== null) { showError(customError, customInput, ""); }
  });
  document.getElementById("change-phone").addEventListener("click", changePhone);
  contactForm.addEventListener("submit", submitContact);
  document.getElementById("contact-cancel").addEventListener("click", function () { dialog.close(); });
  dialog.addEventListener("close", function () {
    if (document.activeElement === document.body || dialog.contains(document.activeElement)) { continueButton.focus(); }
  });
  // Back from Stripe restores this page from the back/forward cache with the dialog still busy.
  window.addEventListener("pageshow", function (event) { if (event.persisted) { setBusy(false); } });

  readLink();
  restoreChoice();
  updateTierFields();
})();
