// Kopilka's small helpers for every area. Loaded after htmx; no inline scripts are
// allowed by the pages' Content-Security-Policy, so behaviour hangs on data attributes.
(function () {
  "use strict";

  // <form data-confirm="Really?">: ask before submitting (refunds, voids, revocations).
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f instanceof HTMLFormElement && f.dataset.confirm && !window.confirm(f.dataset.confirm)) {
      ev.preventDefault();
    }
  }, true);

  // <button data-copy="#id">: copy an element's text (a key shown once).
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("[data-copy]");
    if (!b) return;
    var el = document.querySelector(b.dataset.copy);
    if (el && navigator.clipboard) navigator.clipboard.writeText(el.textContent.trim());
  });

  // <div class="chart" data-chart="#json-id">: a uPlot chart from a JSON block
  // {"lang", "tz", "x_label", "x": [unix seconds...], "series": [{"label", "values"}...]};
  // dates are written in the page's language and the programme's time zone.
  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var src = document.querySelector(el.dataset.chart);
      if (!src) return;
      var d = JSON.parse(src.textContent);
      var colors = ["#1f6feb", "#e8590c", "#2f9e44", "#9c36b5"];
      var day = new Intl.DateTimeFormat(d.lang, { day: "numeric", month: "short", timeZone: d.tz });
      var full = new Intl.DateTimeFormat(d.lang, { dateStyle: "medium", timeZone: d.tz });
      var opts = {
        width: Math.max(300, el.clientWidth),
        height: 260,
        series: [{ label: d.x_label, value: function (u, v) { return v == null ? "" : full.format(new Date(v * 1000)); } }].concat(d.series.map(function (s, i) {
          return { label: s.label, stroke: colors[i % colors.length], width: 2, fill: i === 0 ? "rgba(31,111,235,0.08)" : undefined };
        })),
        axes: [{ values: function (u, splits) { return splits.map(function (v) { return day.format(new Date(v * 1000)); }); } }, { size: 60 }],
        scales: { x: { time: true } },
      };
      el.dataset.drawn = "1";
      new uPlot(opts, [d.x].concat(d.series.map(function (s) { return s.values; })), el);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (ev) { drawCharts(ev.target); });

  // <input type="file" data-file-into="#id" [data-as="base64"]>: put the chosen file into
  // a form field (a CSV as text, an image as base64), so that the form posts it as an
  // ordinary field with its CSRF token.
  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!(input instanceof HTMLInputElement) || !input.dataset.fileInto || !input.files || !input.files[0]) return;
    var into = document.querySelector(input.dataset.fileInto);
    if (!into) return;
    var r = new FileReader();
    if (input.dataset.as === "base64") {
      r.onload = function () { into.value = String(r.result).replace(/^data:[^,]*,/, ""); };
      r.readAsDataURL(input.files[0]);
    } else {
      r.onload = function () { into.value = String(r.result); };
      r.readAsText(input.files[0]);
    }
  });
})();
