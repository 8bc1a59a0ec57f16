// policylab: keyboard shortcuts for the labelling and adjudication pages.
// Every choice has a key (shown in <kbd> beside it); typing in a text field is never hijacked.
(function () {
  "use strict";
  var started = Date.now();

  function form() { return document.getElementById("label-form"); }
  function skipForm() { return document.getElementById("skip-form"); }
  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && el.type !== "radio" && el.type !== "checkbox"));
  }
  function pick(container, key) {
    var input = container && container.querySelector('input[data-key="' + key + '"]');
    if (input) { input.checked = true; input.dispatchEvent(new Event("change", { bubbles: true })); }
    return !!input;
  }
  function filterRules() {
    var select = document.getElementById("category");
    var rules = document.querySelectorAll("#rules .rule");
    if (!select) { return; }
    var cat = select.value;
    rules.forEach(function (rule) {
      var owner = rule.getAttribute("data-category") || "";
      var related = !cat || owner === cat || cat.indexOf(owner + ".") === 0 || owner.indexOf(cat + ".") === 0;
      rule.classList.toggle("other", !related && !rule.querySelector("input").checked);
    });
  }
  function updateGuide() {
    var select = document.getElementById("category");
    var frame = document.getElementById("guide");
    if (!select || !frame || !select.dataset.guide) { return; }
    var url = select.dataset.guide + (select.value ? "?category=" + encodeURIComponent(select.value) +
      "#cat-" + encodeURIComponent(select.value) : "");
    if (frame.getAttribute("src") !== url) { frame.setAttribute("src", url); }
  }
  function submit(f) {
    if (!f) { return; }
    var d = f.querySelector('input[name="duration_ms"]');
    if (d) { d.value = String(Date.now() - started); }
    if (f.reportValidity()) { f.requestSubmit(); }
  }
  function openSkip(show) {
    var s = skipForm();
    if (!s) { return; }
    s.hidden = !show;
    var first = s.querySelector("input");
    if (show && first) { first.focus(); }
  }
  function init() {
    started = Date.now();
    filterRules();
    var select = document.getElementById("category");
    if (select) {
      select.addEventListener("change", function () { filterRules(); updateGuide(); });
    }
    var open = document.getElementById("skip-open");
    if (open) { open.addEventListener("click", function () { openSkip(true); }); }
    var cancel = document.getElementById("skip-cancel");
    if (cancel) { cancel.addEventListener("click", function () { openSkip(false); }); }
    if (document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();
    }
  }

  document.addEventListener("keydown", function (e) {
    var f = form();
    if (!f || e.altKey || e.metaKey) { return; }
    var el = document.activeElement;
    var skipping = skipForm() && !skipForm().hidden;
    if (e.key === "Escape") {
      if (skipping) { openSkip(false); }
      if (el && el.blur) { el.blur(); }
      e.preventDefault();
      return;
    }
    if (e.key === "Enter") {
      if (el && el.tagName === "TEXTAREA" && !e.ctrlKey) { return; }
      if (el && el.tagName === "BUTTON") { return; }
      e.preventDefault();
      submit(skipping ? skipForm() : f);
      return;
    }
    if (typing(el) || e.ctrlKey) { return; }
    var key = e.key.toLowerCase();
    if (skipping) {
      if (pick(skipForm(), key)) { e.preventDefault(); }
      return;
    }
    var handled = true;
    if (pick(document.getElementById("behavior"), key)) {
      // behaviour: 1 / 2 / 3
    } else if (pick(document.getElementById("violation"), key)) {
      // violation: v / n
    } else if (pick(document.getElementById("confidence"), key)) {
      // confidence: l / m / h
    } else if (key === "c" && document.getElementById("category")) {
      document.getElementById("category").focus();
    } else if (key === "r") {
      var rule = document.querySelector("#rules .rule:not(.other) input");
      if (rule) { rule.focus(); }
    } else if (key === "t" && document.getElementById("rationale")) {
      document.getElementById("rationale").focus();
    } else if (key === "s" && skipForm()) {
      openSkip(true);
    } else if (key === "g") {
      var work = document.querySelector(".work");
      if (work) { work.classList.toggle("guide-hidden"); }
    } else if (key === "?") {
      var help = document.getElementById("help");
      if (help) { help.hidden = !help.hidden; }
    } else {
      handled = false;
    }
    if (handled) { e.preventDefault(); }
  });

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSwap", init);
})();
