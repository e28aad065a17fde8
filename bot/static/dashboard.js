/* The supervisor dashboard: draws its charts as inline SVG from the page's JSON, and refreshes it. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var REFRESH_MS = 30000;
  var root = document.getElementById("dashboard");
  var source = document.getElementById("dashboard-data");
  if (!root || !source) return;

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return Math.round(seconds) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    var h = Math.floor(seconds / 3600), m = Math.round((seconds % 3600) / 60);
    return h + " h" + (m ? " " + m + " min" : "");
  }

  // Horizontal bars, one row per item: label on the left, value at the end of the bar.
  function bars(items) {
    var row = 26, labelW = 190, width = 520, barW = width - labelW - 50;
    var max = Math.max.apply(null, items.map(function (i) { return i.value; }).concat([1]));
    var svg = el("svg", {viewBox: "0 0 " + width + " " + (items.length * row + 4), role: "img", class: "bars"});
    var total = items.reduce(function (s, i) { return s + i.value; }, 0);
    svg.appendChild(el("title", {}, items.map(function (i) { return i.label + ": " + i.value; }).join(", ")));
    items.forEach(function (item, n) {
      var y = n * row + 2, w = item.value ? Math.max(2, barW * item.value / max) : 0;
      svg.appendChild(el("text", {x: labelW - 8, y: y + 16, class: "label", "text-anchor": "end"}, item.label));
      svg.appendChild(el("rect", {x: labelW, y: y + 3, width: barW, height: row - 8, class: "track", rx: 3}));
      if (w) svg.appendChild(el("rect", {x: labelW, y: y + 3, width: w, height: row - 8, class: "bar bar-" + item.key, rx: 3}));
      svg.appendChild(el("text", {x: labelW + w + 6, y: y + 16, class: "value"}, String(item.value)));
    });
    if (!total) {
      var empty = document.createElement("p");
      empty.className = "muted small";
      empty.textContent = "Nothing yet.";
      return empty;
    }
    return svg;
  }

  // Columns per day: conversations, with that day's handoffs drawn inside them.
  function daily(days) {
    var width = 1080, height = 220, top = 18, bottom = 34, left = 36;
    var plotH = height - top - bottom, step = (width - left) / Math.max(days.length, 1), colW = Math.min(44, step * 0.7);
    var max = Math.max.apply(null, days.map(function (d) { return d.conversations; }).concat([4]));
    var nice = Math.ceil(max / 4) * 4;
    var svg = el("svg", {viewBox: "0 0 " + width + " " + height, role: "img", class: "daily"});
    svg.appendChild(el("title", {}, days.map(function (d) {
      return d.label + ": " + d.conversations + " conversations, " + d.handoffs + " handoffs";
    }).join("; ")));
    for (var g = 0; g <= 4; g++) {
      var gy = top + plotH - plotH * g / 4;
      svg.appendChild(el("line", {x1: left, x2: width, y1: gy, y2: gy, class: "grid"}));
      svg.appendChild(el("text", {x: left - 6, y: gy + 4, class: "axis", "text-anchor": "end"}, String(nice * g / 4)));
    }
    days.forEach(function (d, n) {
      var x = left + n * step + (step - colW) / 2;
      var h = plotH * d.conversations / nice, hh = plotH * d.handoffs / nice;
      svg.appendChild(el("rect", {x: x, y: top + plotH - h, width: colW, height: h, class: "col", rx: 2}));
      svg.appendChild(el("rect", {x: x + colW * 0.2, y: top + plotH - hh, width: colW * 0.6, height: hh, class: "col-handoff", rx: 2}));
      if (d.conversations) {
        svg.appendChild(el("text", {x: x + colW / 2, y: top + plotH - h - 4, class: "value", "text-anchor": "middle"}, String(d.conversations)));
      }
      svg.appendChild(el("text", {x: x + colW / 2, y: height - 12, class: "axis", "text-anchor": "middle"}, d.label));
    });
    var legend = el("g", {class: "legend"});
    legend.appendChild(el("rect", {x: width - 250, y: 0, width: 12, height: 12, class: "col"}));
    legend.appendChild(el("text", {x: width - 232, y: 10}, "conversations"));
    legend.appendChild(el("rect", {x: width - 130, y: 0, width: 12, height: 12, class: "col-handoff"}));
    legend.appendChild(el("text", {x: width - 112, y: 10}, "handoffs"));
    svg.appendChild(legend);
    return svg;
  }

  function render(data) {
    root.querySelectorAll("[data-now]").forEach(function (node) {
      var key = node.getAttribute("data-now"), value = data.now[key];
      node.textContent = key === "longest_wait" ? duration(value) : String(value);
    });
    root.querySelectorAll("[data-period]").forEach(function (panel) {
      var period = data[panel.getAttribute("data-period")];
      panel.querySelectorAll("[data-figure]").forEach(function (node) {
        var key = node.getAttribute("data-figure");
        node.textContent = key === "median_wait" ? duration(period[key]) : String(period[key]);
      });
      panel.querySelectorAll("[data-chart]").forEach(function (box) {
        box.replaceChildren(bars(period[box.getAttribute("data-chart")]));
      });
    });
    var dailyBox = root.querySelector('[data-chart="daily"]');
    if (dailyBox) dailyBox.replaceChildren(daily(data.daily));
    var updated = document.getElementById("dash-updated");
    if (updated) updated.textContent = "updated " + new Date().toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  }

  function refresh() {
    fetch(root.getAttribute("data-source"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () { /* keep the last figures; the next refresh tries again */ })
      .then(function () { window.setTimeout(refresh, REFRESH_MS); });
  }

  render(JSON.parse(source.textContent));
  window.setTimeout(refresh, REFRESH_MS);
})();
