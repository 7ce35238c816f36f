/* errwire telemetry dashboard: renders status.json and polls it; no libraries, no network
   access beyond this page's own status.json. Every text goes in through textContent. */
(function () {
  "use strict";

  var POLL_MS = (parseFloat(document.body.getAttribute("data-poll-seconds")) || 3) * 1000;
  var PALETTE = ["#3056d3", "#12a594", "#e8590c", "#ae3ec9", "#f08c00", "#1c7ed6", "#d6336c", "#5c940d"];
  var DROP_PALETTE = ["#c92a2a", "#e8590c", "#f08c00", "#ae3ec9", "#862e9c", "#5f3dc4", "#a61e4d", "#495057", "#868e96"];
  var OTHER_COLOR = "#98a2b3";
  var CHART_SERIES = 7; // components drawn separately; the rest are drawn as "other"
  var COUNTERS = [
    ["captured", "Captured"],
    ["delivered", "Delivered", "good"],
    ["deduplicated", "Deduplicated"],
    ["rate_limited", "Rate limited"],
    ["sampled_out", "Sampled out"],
    ["spooled", "Spooled"],
    ["rejected", "Rejected", "bad"],
    ["failed", "Failed sends", "bad"],
    ["dropped_total", "Dropped", "bad"],
    ["internal_errors", "Internal errors", "bad"]
  ];
  var colorOf = {};
  var nextColor = 0;
  var latest = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        if (attrs[key] !== null && attrs[key] !== undefined) node.setAttribute(key, attrs[key]);
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    });
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function replace(node, children) {
    while (node.firstChild) node.removeChild(node.firstChild);
    children.forEach(function (child) { node.appendChild(child); });
  }

  function num(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function ago(ts, now) { return ts ? duration(now - ts) + " ago" : "–"; }

  function clock(ts) {
    var d = new Date(ts * 1000);
    return d.toLocaleTimeString("en-GB", { hour12: false });
  }

  function pill(text, kind, extra) {
    var attrs = { "class": "state state-" + kind };
    Object.keys(extra || {}).forEach(function (k) { attrs[k] = extra[k]; });
    return el("span", attrs, [text]);
  }

  function cell(label, children, cls) {
    return el("td", { "data-label": label, "class": cls || null }, children);
  }

  function emptyRow(columns, text) {
    return el("tr", null, [el("td", { colspan: String(columns), "class": "empty-row" }, [text])]);
  }

  function color(name) {
    if (name === "other") return OTHER_COLOR;
    if (!colorOf[name]) colorOf[name] = PALETTE[nextColor++ % PALETTE.length];
    return colorOf[name];
  }

  // ------------------------------------------------------------------ sections
  function renderHeader(data) {
    var state = $("state");
    state.setAttribute("data-state", data.state);
    state.textContent = data.state === "ok" ? "All good" : data.state === "warning"
      ? data.warnings.length + (data.warnings.length === 1 ? " warning" : " warnings") : "No data";
    $("updated").textContent = "updated " + clock(data.generated_at);
    $("outbox-path").textContent = data.outbox_path;
    $("empty-outbox").textContent = data.outbox_path;
    $("empty-text").textContent = data.empty_text;
    $("empty").hidden = data.state !== "empty";
  }

  function renderWarnings(data) {
    var box = $("warnings");
    replace(box, data.warnings.map(function (w) {
      return el("div", { "class": "warning", "data-kind": w.kind, role: "alert" }, [w.text]);
    }));
    box.hidden = data.warnings.length === 0;
  }

  function renderTotals(data) {
    var totals = data.totals;
    replace($("totals"), COUNTERS.map(function (c) {
      var value = totals[c[0]] || 0;
      var tone = c[2] === "bad" ? (value ? "bad" : null) : c[2] === "good" && value ? "good" : null;
      return el("div", { "class": "card", "data-counter": c[0], "data-tone": tone }, [
        el("span", { "class": "label" }, [c[1]]),
        el("span", { "class": "value" }, [num(value)])
      ]);
    }));
  }

  function renderDrops(data) {
    var dropped = data.totals.dropped;
    replace($("drops"), Object.keys(dropped).map(function (reason) {
      var n = dropped[reason];
      return el("li", { "data-reason": reason, "class": n ? null : "zero" }, [
        el("span", null, [reason.replace(/_/g, " ")]),
        el("strong", null, [num(n)])
      ]);
    }));
    var pending = data.outbox.pending;
    $("outbox-pending").textContent = pending === null ? "no outbox yet" : num(pending);
    var trend = $("outbox-trend");
    trend.hidden = !data.outbox.growing;
    trend.textContent = "growing";
  }

  function renderRuntimes(data, now) {
    var rows = data.runtimes.map(function (r) {
      var q = r.queue;
      var fill = el("span", { style: "width:" + Math.min(100, q.percent) + "%", "class": q.percent >= 80 ? "high" : null });
      var breaker = r.breaker;
      var detail = null;
      if (breaker.state === "open" && breaker.seconds_until_half_open !== null) {
        detail = "half-open in " + duration(breaker.seconds_until_half_open);
      } else if (breaker.consecutive_failures) {
        detail = breaker.consecutive_failures + " failing in a row";
      }
      var health = r.healthy ? [pill("ok", "ok")] : r.problems.map(function (p) {
        return el("span", { "class": "sub" }, [pill(p, p.indexOf("stale") === 0 ? "stale" : "bad")]);
      });
      return el("tr", { "data-runtime": r.runtime_id, "data-pid": String(r.pid) }, [
        cell("Process", [el("div", null, [
          el("strong", null, [r.host]),
          el("span", { "class": "sub" }, ["pid " + r.pid + " · " + (r.transport || "?") + (r.enabled ? "" : " · disabled")])
        ])]),
        cell("Heartbeat", [r.stale ? pill("stale " + duration(r.age_seconds), "stale") : el("span", null, [duration(r.age_seconds) + " ago"])]),
        cell("Queue", [el("div", null, [
          el("span", null, [num(q.depth) + " / " + num(q.capacity)]),
          el("div", { "class": "bar", title: q.percent + "% full" }, [fill])
        ])]),
        cell("Breaker", [el("div", null, [
          pill(breaker.state.replace("_", "-"), breaker.state, { "data-breaker": breaker.state }),
          detail ? el("span", { "class": "sub" }, [detail]) : null
        ])]),
        cell("Delivered", [num(r.delivered)], "num"),
        cell("Spooled", [num(r.spooled)], "num"),
        cell("Health", [el("div", null, health)])
      ]);
    });
    replace($("runtimes").tBodies[0], rows.length ? rows : [emptyRow(7, "No live runtime.")]);
  }

  function renderRecent(data, now) {
    var rows = data.recent.map(function (e) {
      var title = e.type || "message";
      var went = e.outcome + (e.destination ? " · " + e.destination : "");
      return el("tr", { "data-component": e.component || "" }, [
        cell("Last seen", [el("div", null, [
          el("span", null, [ago(e.last_seen, now)]),
          e.count > 1 ? el("span", { "class": "sub" }, ["first " + ago(e.first_seen, now)]) : null
        ])]),
        cell("Event", [el("div", null, [
          el("span", { "class": "level level-" + e.level }, [e.level || ""]),
          el("span", { "class": "event-type" }, [title]),
          el("span", { "class": "sub event-message" }, [e.message || ""])
        ])]),
        cell("Component", [el("div", null, [
          el("span", null, [e.component || "–"]),
          el("span", { "class": "sub" }, [e.category || ""])
        ])]),
        cell("Count", [num(e.count)], "num"),
        cell("Went to", [pill(went, e.outcome)])
      ]);
    });
    replace($("recent").tBodies[0], rows.length ? rows : [emptyRow(5, "No event yet.")]);
  }

  function renderComponents(data) {
    var rows = data.components.map(function (c) {
      return el("tr", { "data-component": c.name }, [
        cell("Component", [el("strong", null, [c.name])]),
        cell("Seen", [num(c.seen)], "num"),
        cell("Rate limited", [num(c.rate_limited)], "num"),
        cell("Tokens left", [c.tokens === null ? "–" : String(Math.floor(c.tokens))], "num"),
        cell("Limit", [c.limited ? pill("limiting now", "limited") : pill("ok", "ok")])
      ]);
    });
    replace($("components").tBodies[0], rows.length ? rows : [emptyRow(5, "No component yet.")]);
  }

  // ------------------------------------------------------------------ charts
  function chartSeries(series, limit) {
    var names = Object.keys(series).filter(function (n) { return n !== "other"; });
    names.sort(function (a, b) { return sum(series[b]) - sum(series[a]); });
    var kept = names.slice(0, limit);
    var rest = names.slice(limit).concat(series.other ? ["other"] : []);
    var out = kept.map(function (n) { return { name: n, values: series[n] }; });
    if (rest.length) {
      var folded = series[rest[0]].map(function () { return 0; });
      rest.forEach(function (n) { series[n].forEach(function (v, i) { folded[i] += v; }); });
      out.push({ name: "other", values: folded });
    }
    return out;
  }

  function sum(values) { return values.reduce(function (a, b) { return a + b; }, 0); }

  // The top of the y axis: twice a round step (1, 2, 5, 10, 20, ...), so the middle line is whole.
  function niceMax(value) {
    var half = Math.max(1, value / 2);
    var power = Math.pow(10, Math.floor(Math.log10(half)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= half) return 2 * steps[i] * power;
    return 20 * power;
  }

  function drawChart(container, layers, start, step, colorFn, label) {
    var width = Math.max(200, container.clientWidth);
    var height = Math.max(80, container.clientHeight);
    var left = 36, right = 6, top = 8, bottom = 20;
    var plotW = width - left - right, plotH = height - top - bottom;
    var minutes = layers.length ? layers[0].values.length : 60;
    var stacks = [];
    for (var i = 0; i < minutes; i++) {
      stacks.push(layers.reduce(function (acc, layer) { return acc + layer.values[i]; }, 0));
    }
    var total = sum(stacks);
    var max = niceMax(Math.max.apply(null, stacks.concat([0])));
    var root = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": label + ": " + total + " in the last hour" });
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH - f * plotH;
      root.appendChild(svg("line", { "class": "grid-line", x1: left, x2: width - right, y1: y, y2: y }));
      root.appendChild(svg("text", { "class": "axis", x: left - 6, y: y + 4, "text-anchor": "end" }, num(Math.round(f * max))));
    });
    var barW = plotW / minutes;
    for (var m = 0; m < minutes; m++) {
      var base = top + plotH;
      var parts = [];
      layers.forEach(function (layer) {
        var v = layer.values[m];
        if (!v) return;
        var h = (v / max) * plotH;
        base -= h;
        parts.push(layer.name + " " + v);
        root.appendChild(svg("rect", {
          x: (left + m * barW + barW * 0.12).toFixed(2), y: base.toFixed(2),
          width: Math.max(1, barW * 0.76).toFixed(2), height: Math.max(0.5, h).toFixed(2),
          fill: colorFn(layer.name)
        }));
      });
      if (parts.length) {
        var hit = svg("rect", { x: left + m * barW, y: top, width: barW, height: plotH, fill: "transparent" });
        hit.appendChild(svg("title", {}, clock(start + m * step) + " · " + parts.join(", ")));
        root.appendChild(hit);
      }
    }
    [[0, "−60 min", "start"], [minutes / 2, "−30 min", "middle"], [minutes, "now", "end"]].forEach(function (t) {
      root.appendChild(svg("text", { "class": "axis", x: left + t[0] * barW, y: height - 5, "text-anchor": t[2] }, t[1]));
    });
    if (!total) {
      root.appendChild(svg("text", { "class": "none", x: left + plotW / 2, y: top + plotH * 0.25 + 4, "text-anchor": "middle" }, "nothing in the last hour"));
    }
    replace(container, [root]);
    container.setAttribute("data-total", String(total));
  }

  function renderCharts(data) {
    var s = data.series;
    var layers = chartSeries(s.events, CHART_SERIES);
    drawChart($("events-chart"), layers, s.start, s.step, color, "Events per minute");
    replace($("events-legend"), layers.map(function (layer) {
      return el("li", null, [
        el("span", { "class": "swatch", style: "background:" + color(layer.name) }),
        layer.name + " (" + num(sum(layer.values)) + ")"
      ]);
    }));
    var reasons = Object.keys(s.dropped).sort();
    var dropLayers = reasons.map(function (r) { return { name: r, values: s.dropped[r] }; });
    drawChart($("drops-chart"), dropLayers, s.start, s.step, function (name) {
      return DROP_PALETTE[Math.max(0, reasons.indexOf(name)) % DROP_PALETTE.length];
    }, "Drops per minute");
  }

  function render(data) {
    latest = data;
    var now = data.generated_at;
    renderHeader(data);
    renderWarnings(data);
    renderTotals(data);
    renderDrops(data);
    renderCharts(data);
    renderRuntimes(data, now);
    renderRecent(data, now);
    renderComponents(data);
  }

  // ------------------------------------------------------------------ polling
  function showConnection(text) {
    var box = $("connection");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function poll() {
    fetch("status.json", { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          showConnection("Your session ended or you may no longer see this page: reload to log in again.");
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (data) { showConnection(null); render(data); }
      })
      .catch(function (error) {
        showConnection("Cannot reach the server (" + error.message + "); retrying every " + POLL_MS / 1000 + " s.");
      })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(function () { if (latest) renderCharts(latest); }, 150);
  });

  render(JSON.parse($("errwire-data").textContent));
  window.setTimeout(poll, POLL_MS);
})();
