// Live tag values on the dashboard: the page is complete without this
// script; it only refreshes the numbers every two seconds from the API.
(function () {
  "use strict";
  var cells = document.querySelectorAll("[data-tag]");
  if (!cells.length) return;
  function fmt(v) {
    if (v === null || v === undefined) return "—";
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  function refresh() {
    fetch("/api/v1/tags", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (tags) {
        if (!tags) return;
        tags.forEach(function (t) {
          var el = document.querySelector('[data-tag="' + CSS.escape(t.name) + '"]');
          if (!el) return;
          el.className = "tag " + t.quality;
          // A text tag shows its text, like the server-rendered page.
          el.querySelector(".value").firstChild.nodeValue =
            typeof t.text === "string" ? t.text : fmt(t.value);
          var q = el.querySelector(".quality");
          if (q) q.textContent = t.quality;
        });
      })
      .catch(function () {});
  }
  setInterval(refresh, 2000);
})();
