// The live dashboard: polls /api/v1/dashboard/* and redraws each panel in place (no reload, no CDN).
"use strict";
(function () {
  var API = "api/v1/";
  var FAST_MS = 3000, SLOW_MS = 10000;
  var state = { admin: false, polls: 0 };
  var SVGNS = "http://www.w3.org/2000/svg";

  function token() { return sessionStorage.getItem("lut_token") || ""; }
  function headers() { var t = token(); return t ? { Authorization: "Bearer " + t } : {}; }

  function get(path) {
    return fetch(API + path, { headers: headers(), cache: "no-store" }).then(function (r) {
      if (!r.ok) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          var e = new Error(r.status + ": " + (b.detail || r.statusText)); e.status = r.status; throw e;
        });
      }
      return r.json();
    });
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in (attrs || {})) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in (attrs || {})) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = String(text); }
    return e;
  }
  function row(cells) {
    var tr = el("tr");
    cells.forEach(function (c) { tr.appendChild(c instanceof Node ? wrap(c) : el("td", null, c)); });
    return tr;
  }
  function wrap(node) { var td = el("td"); td.appendChild(node); return td; }
  function fill(tbody, rows, cols, empty) {
    tbody.replaceChildren.apply(tbody, rows.length ? rows : [emptyRow(cols, empty)]);
  }
  function emptyRow(cols, text) { var tr = el("tr"); tr.appendChild(el("td", { colspan: cols, "class": "empty" }, text)); return tr; }
  function pct(x) { return x === null || x === undefined ? "-" : (100 * x).toFixed(1) + "%"; }
  function ms(x) { return x === null || x === undefined ? "-" : (x < 1 ? x.toFixed(3) : x.toFixed(2)) + " ms"; }
  function dur(s) {
    if (s === null || s === undefined) { return "unknown (nothing done in the last 10 min)"; }
    if (s === 0) { return "done"; }
    if (s < 90) { return Math.round(s) + " s"; }
    if (s < 5400) { return Math.round(s / 60) + " min"; }
    return (s / 3600).toFixed(1) + " h";
  }
  function ago(iso) {
    if (!iso) { return "-"; }
    var s = (Date.now() - Date.parse(iso)) / 1000;
    return s < 90 ? Math.max(0, Math.round(s)) + " s ago" : s < 5400 ? Math.round(s / 60) + " min ago" : iso.replace("T", " ").slice(0, 19);
  }
  function bar(frac) {
    var b = el("span", { "class": "bar" }), f = el("span"); f.style.width = (100 * frac).toFixed(1) + "%"; b.appendChild(f);
    var s = el("span"); s.appendChild(b); s.appendChild(document.createTextNode(pct(frac))); return s;
  }

  // -- panels ------------------------------------------------------------------------------------
  function drawOverview(d) {
    setText("n-measurements", d.measurements);
    setText("n-queued", d.totals.queued); setText("n-claimed", d.totals.claimed); setText("n-parked", d.totals.parked);
    fill(document.querySelector("#coverage tbody"), d.coverage.map(function (c) {
      var tr = row([c.space, c.resolution, c.target, c.error ? c.error : c.measured + "/" + c.total + (c.identities ? " (incl. " + c.identities + " identity skips)" : ""), bar(c.fraction)]);
      tr.dataset.key = c.space + "|" + c.resolution + "|" + c.target; tr.dataset.measured = c.measured;
      return tr;
    }), 5, "no space registered yet (lut register SPACE --target ID)");
    fill(document.querySelector("#queue tbody"), d.queue.map(function (q) {
      return row([q.target, q.queued, q.claimed, q.done, q.parked, q.done_per_min, dur(q.eta_s)]);
    }), 7, "no jobs");
  }

  function drawAgents(list) {
    setText("n-online", list.filter(function (a) { return a.online; }).length);
    fill(document.querySelector("#agents-table tbody"), list.map(function (a) {
      var fp = el("span", { "class": "mono", title: a.fingerprint ? JSON.stringify(a.fingerprint) : "" },
        a.fingerprint_digest ? a.fingerprint_digest.slice(0, 12) : "-");
      var job = a.jobs.length ? a.jobs.map(function (j) { return "#" + j.id + " " + (j.key || j.kind); }).join(", ") +
        (a.jobs_held > a.jobs.length ? " (+" + (a.jobs_held - a.jobs.length) + ")" : "") : "idle";
      var st = el("span", { "class": a.online ? "online" : "offline" }, a.online ? "online" : "offline");
      var tr = row([a.name, a.device_class || "-", st, ago(a.last_heartbeat), ago(a.last_post), fp, job]);
      tr.dataset.board = a.name; return tr;
    }), 7, "no agent has registered yet");
  }

  function drawParked(list) {
    document.querySelectorAll(".admin-only").forEach(function (e) { e.hidden = !state.admin || !list.length; });
    fill(document.querySelector("#parked-table tbody"), list.map(function (p) {
      var cells = [String(p.id), p.target, p.key || "(validate job)", p.attempts, el("span", null, p.error || ""), p.parked_at || "-"];
      var tr = row(cells); tr.children[4].className = "err";
      if (state.admin) {
        var b = el("button", { type: "button" }, "re-queue");
        b.addEventListener("click", function () { requeue([p.id]); });
        tr.appendChild(wrap(b));
      }
      return tr;
    }), 6, "no parked job");
  }

  function requeue(ids) {
    var body = ids ? { job_ids: ids } : {};
    fetch(API + "jobs/requeue", { method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, headers()),
      body: JSON.stringify(body) }).then(function (r) { return r.json().then(function (b) { return [r, b]; }); })
      .then(function (rb) {
        if (!rb[0].ok) { throw new Error(rb[0].status + ": " + (rb[1].detail || "refused")); }
        problem(null); fast();
      }).catch(function (e) { problem("re-queue failed: " + e.message); });
  }

  function scatter(points) {
    var W = 320, H = 260, P = 38;
    var vals = [];
    points.forEach(function (p) { vals.push(p.predicted_ms, p.measured_ms); });
    var lo = Math.min.apply(null, vals) * 0.85, hi = Math.max.apply(null, vals) * 1.15;
    function x(v) { return P + (v - lo) / (hi - lo) * (W - P - 8); }
    function y(v) { return H - P - (v - lo) / (hi - lo) * (H - P - 8); }
    var s = svg("svg", { width: W, height: H, "class": "scatter", role: "img", "aria-label": "predicted against measured" });
    // the +-10% band around measured == predicted
    s.appendChild(svg("polygon", { points: [[lo, lo * 1.1], [hi, hi * 1.1], [hi, hi * 0.9], [lo, lo * 0.9]].map(function (q) {
      return x(q[0]) + "," + y(q[1]); }).join(" "), fill: "#dbe7ff", "class": "band" }));
    s.appendChild(svg("line", { x1: x(lo), y1: y(lo), x2: x(hi), y2: y(hi), stroke: "#2457c5", "stroke-dasharray": "4 3" }));
    s.appendChild(svg("line", { x1: P, y1: H - P, x2: W - 8, y2: H - P, stroke: "#888" }));
    s.appendChild(svg("line", { x1: P, y1: 8, x2: P, y2: H - P, stroke: "#888" }));
    s.appendChild(svg("text", { x: W / 2, y: H - 6, "text-anchor": "middle" }, "measured (ms)"));
    s.appendChild(svg("text", { x: 10, y: H / 2, transform: "rotate(-90 10 " + H / 2 + ")", "text-anchor": "middle" }, "LUT sum (ms)"));
    s.appendChild(svg("text", { x: P, y: H - P + 14, "text-anchor": "middle" }, lo.toFixed(1)));
    s.appendChild(svg("text", { x: W - 8, y: H - P + 14, "text-anchor": "end" }, hi.toFixed(1)));
    points.forEach(function (p) {
      var inside = Math.abs(p.error) <= 0.10;
      var c = svg("circle", { cx: x(p.measured_ms), cy: y(p.predicted_ms), r: p.kind === "published" ? 5 : 3.5,
        fill: inside ? "#1a7f37" : "#b42318", "fill-opacity": 0.8, "class": "point" });
      c.appendChild(svg("title", {}, p.arch + ": " + ms(p.predicted_ms) + " vs " + ms(p.measured_ms) + " (" + pct(p.error) + ")"));
      s.appendChild(c);
    });
    return s;
  }

  function histogram(bins) {
    var W = 360, H = 260, P = 30, n = bins.length, bw = (W - 2 * P) / n;
    var top = Math.max.apply(null, bins.map(function (b) { return b.n; }).concat([1]));
    var s = svg("svg", { width: W, height: H, "class": "histogram", role: "img", "aria-label": "error histogram" });
    bins.forEach(function (b, i) {
      var h = (H - 2 * P) * b.n / top, inside = b.lo !== null && b.hi !== null && b.lo >= -0.1 && b.hi <= 0.1;
      var r = svg("rect", { x: P + i * bw + 1, y: H - P - h, width: bw - 2, height: h, fill: inside ? "#2457c5" : "#b54708", "class": "bin" });
      r.appendChild(svg("title", {}, (b.lo === null ? "< " + pct(b.hi) : b.hi === null ? ">= " + pct(b.lo) : pct(b.lo) + " .. " + pct(b.hi)) + ": " + b.n));
      s.appendChild(r);
    });
    s.appendChild(svg("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#888" }));
    s.appendChild(svg("text", { x: P, y: H - P + 14, "text-anchor": "start" }, "-20%"));
    s.appendChild(svg("text", { x: W / 2, y: H - P + 14, "text-anchor": "middle" }, "0"));
    s.appendChild(svg("text", { x: W - P, y: H - P + 14, "text-anchor": "end" }, "+20%"));
    s.appendChild(svg("text", { x: W / 2, y: H - 4, "text-anchor": "middle" }, "(LUT sum - measured) / measured"));
    return s;
  }

  function calibrationText(t) {
    var d = el("div", { "class": "calibration" });
    var s = t.summary || {};
    d.appendChild(el("p", null, "raw: " + (s.n || 0) + " architectures, median |error| " + pct(s.median_abs_error) +
      ", within +-10%: " + pct(s.within_10pct)));
    var c = t.calibration;
    if (!c) { d.appendChild(el("p", { "class": "note" }, "no calibration fitted (lut search uses the raw LUT sum)")); return d; }
    var cs = t.calibrated_summary || {};
    d.appendChild(el("p", null, "calibration in use: " + (c.model || "?") + "  a=" + Number(c.a).toFixed(4) +
      " b=" + Number(c.b || 0).toFixed(3) + (c.c ? " c=" + Number(c.c).toFixed(4) : "") + "; held out: median |error| " +
      pct(cs.median_abs_error) + ", within +-10%: " + pct(cs.within_10pct)));
    var st = el("p", { "class": c.stale ? "stale" : "fresh" }, c.stale ? "STALE: the LUT moved since the fit" +
      (c.drift !== null && c.drift !== undefined ? " (drift " + pct(c.drift) + ")" : "") + "; a refit is queued" :
      "current" + (c.drift !== null && c.drift !== undefined ? " (drift " + pct(c.drift) + ")" : ""));
    st.dataset.stale = c.stale ? "1" : "0";
    d.appendChild(st);
    return d;
  }

  function drawTruth(list) {
    var box = document.getElementById("truth-panels");
    box.replaceChildren.apply(box, list.length ? list.map(function (t) {
      var div = el("div", { "class": "panel-row", "data-key": t.space + "|" + t.resolution + "|" + t.target });
      div.appendChild(el("h4", null, t.space + " @ " + t.resolution + " on " + t.target));
      if (t.error) { div.appendChild(el("p", { "class": "err" }, t.error)); return div; }
      div.appendChild(scatter(t.points)); div.appendChild(histogram(t.histogram)); div.appendChild(calibrationText(t));
      return div;
    }) : [el("p", { "class": "empty" }, "no validation yet (lut register ... --validate published,random:20)")]);
  }

  function colour(v, lo, hi) {
    var f = hi > lo ? (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) : 0.5;
    var r = Math.round(255 * Math.min(1, 0.2 + 1.4 * f)), g = Math.round(220 * (1 - Math.abs(f - 0.45))), b = Math.round(255 * (1 - f));
    return "rgb(" + r + "," + g + "," + b + ")";
  }

  // rows x candidates in ms, log colour scale: grey = not measured yet, white = 0, mask[i][j] = blank
  function heatmap(rows, candidates, matrix, mask, aria) {
    var vals = [];
    matrix.forEach(function (r) { r.forEach(function (v) { if (v !== null && v > 0) { vals.push(v); } }); });
    var lo = vals.length ? Math.min.apply(null, vals) : 1, hi = vals.length ? Math.max.apply(null, vals) : 1;
    var C = Math.max(12, Math.min(28, Math.floor(900 / Math.max(1, candidates.length)))), L = 14, P = 110;
    var W = P + C * candidates.length + 10, H = 20 + L * matrix.length;
    var s = svg("svg", { width: W, height: H, role: "img", "aria-label": aria });
    candidates.forEach(function (c, j) {
      var t = svg("text", { x: P + j * C + C / 2, y: 12, "text-anchor": "middle" }, candidates.length > 30 ? "" : String(j));
      t.appendChild(svg("title", {}, c)); s.appendChild(t);
    });
    matrix.forEach(function (r, i) {
      s.appendChild(svg("text", { x: P - 6, y: 20 + i * L + L - 3, "text-anchor": "end" }, rows[i]));
      r.forEach(function (v, j) {
        if (mask && mask[i][j]) { return; }  // not a candidate of this row: left blank
        var fillc = v === null ? "#d0d4da" : v === 0 ? "#ffffff" : colour(v, lo, hi);
        var rect = svg("rect", { x: P + j * C, y: 20 + i * L, width: C - 1, height: L - 1, fill: fillc, "class": v === null ? "cell missing" : "cell" });
        rect.appendChild(svg("title", {}, rows[i] + ", " + candidates[j] + ": " + (v === null ? "not measured yet" : ms(v))));
        s.appendChild(rect);
      });
    });
    return s;
  }

  function drawHeatmaps(list) {
    var box = document.getElementById("heatmap-panels");
    box.replaceChildren.apply(box, list.length ? list.map(function (h) {
      var div = el("div", { "class": "panel-row heatmap", "data-key": h.space + "|" + h.resolution + "|" + h.target });
      div.appendChild(el("h4", null, h.space + " @ " + h.resolution + " on " + h.target + "  (LUT version " + h.lut_version +
        ", " + h.coverage.measured + "/" + h.coverage.total + " ops)"));
      div.appendChild(heatmap(h.matrix.map(function (_, i) { return "layer " + i; }), h.candidates, h.matrix, h.mask, "C(i,j) heatmap"));
      return div;
    }) : [el("p", { "class": "empty" }, "no chain space registered yet")]);
  }

  function drawCellHeatmaps(list) {
    var box = document.getElementById("cell-heatmap-panels");
    box.replaceChildren.apply(box, list.length ? list.map(function (h) {
      var div = el("div", { "class": "panel-row cell-heatmaps", "data-key": h.space + "|" + h.resolution + "|" + h.target });
      div.appendChild(el("h4", null, h.space + " @ " + h.resolution + " on " + h.target + (h.error ? "" : "  (LUT version " +
        h.lut_version + ", " + h.coverage.measured + "/" + h.coverage.total + " ops)")));
      if (h.error) { div.appendChild(el("p", { "class": "err" }, h.error)); return div; }
      div.appendChild(el("p", { "class": "note ops" }, "ops: " + h.ops.map(function (o, j) { return j + " " + o; }).join(", ")));
      h.types.forEach(function (t) {
        var fig = el("figure", { "class": "cell-type", "data-type": t.cell_type, "data-missing": t.missing });
        fig.appendChild(heatmap(h.edges, h.ops, t.matrix, null, t.cell_type + ": C(edge, op)"));
        fig.appendChild(el("figcaption", null, t.cell_type + ": C(edge, op) summed over its " + t.cells + " cell(s)" +
          (t.missing ? "; " + t.missing + (t.missing === 1 ? " entry" : " entries") + " not measured yet" : "")));
        div.appendChild(fig);
      });
      return div;
    }) : [el("p", { "class": "empty" }, "no cell space registered yet")]);
  }

  function drawFleet(list) {
    var box = document.getElementById("fleet-panels");
    box.replaceChildren.apply(box, list.length ? list.map(function (f) {
      var div = el("div", { "class": "panel-row fleet-class", "data-class": f.device_class });
      div.appendChild(el("h4", null, "device class " + f.device_class + " (" + f.targets.join(", ") + ")"));
      var t = el("table", { "class": "fleet-boards" }), hd = el("thead"), bd = el("tbody");
      hd.appendChild(row(["", "ops timed", "ops shared with peers", "median |deviation|", "ops off by > " + pct(f.tolerance)]));
      t.appendChild(hd);
      f.boards.forEach(function (b) {
        var tr = row([b.name, b.ops, b.compared, pct(b.median_abs_deviation), b.disagrees]); tr.dataset.board = b.name;
        if (b.disagrees) { tr.children[4].className = "stale"; }
        bd.appendChild(tr);
      });
      t.appendChild(bd); div.appendChild(t);
      var d = el("table", { "class": "disagreements" }), dh = el("thead"), db = el("tbody");
      dh.appendChild(row(["board", "target", "op", "board", "peers (median)", "deviation"]));
      d.appendChild(dh);
      fill(db, f.disagreements.map(function (x) {
        var tr = row([x.board, x.target, el("span", { "class": "mono" }, x.key), ms(x.board_ms), ms(x.peers_ms) + " (" + x.peers + ")",
          (x.deviation > 0 ? "+" : "") + pct(x.deviation)]);
        tr.dataset.board = x.board; return tr;
      }), 6, f.boards.length < 2 ? "one board in this class: nothing to compare" : "no board disagrees with its peers");
      d.appendChild(db);
      if (f.disagreements_total > f.disagreements.length) {
        div.appendChild(el("p", { "class": "note" }, "largest " + f.disagreements.length + " of " + f.disagreements_total + " disagreements"));
      }
      div.appendChild(d);
      return div;
    }) : [el("p", { "class": "empty" }, "no target measured yet")]);
  }

  // -- polling -----------------------------------------------------------------------------------
  function setText(id, v) { var e = document.getElementById(id); if (e.textContent !== String(v)) { e.textContent = String(v); } }
  function problem(text) { var p = document.getElementById("problem"); p.hidden = !text; p.textContent = text || ""; }

  function whoami() {
    return get("dashboard/session").then(function (s) {
      state.admin = s.admin;
      FAST_MS = 1000 * s.poll_s; SLOW_MS = Math.max(SLOW_MS, FAST_MS);
      setText("whoami", s.role ? "token: " + s.role : s.read_token_required ? "this server needs a token to read" : "anonymous (reads are open)");
      return s;
    });
  }

  function load(names) {
    var jobs = names.map(function (n) {
      var fn = { overview: drawOverview, agents: drawAgents, parked: drawParked, truth: drawTruth, heatmaps: drawHeatmaps, "cell-heatmaps": drawCellHeatmaps, fleet: drawFleet }[n];
      return get("dashboard/" + n).then(fn);
    });
    return Promise.all(jobs).then(function () {
      problem(null); state.polls += 1; document.body.dataset.polls = state.polls;
      setText("updated", "updated " + new Date().toLocaleTimeString());
    }).catch(function (e) {
      if (e.status === 401 || e.status === 403) { problem("reads need a valid token here (" + e.message + "): paste one above (lut token create --read)"); }
      else { problem("cannot update: " + e.message); }
      setText("updated", "last try " + new Date().toLocaleTimeString());
    });
  }
  var fastTimer = null, slowTimer = null;
  function fast() { clearTimeout(fastTimer); load(["overview", "agents", "parked"]).then(function () { fastTimer = setTimeout(fast, FAST_MS); }); }
  function slow() { clearTimeout(slowTimer); load(["truth", "heatmaps", "cell-heatmaps", "fleet"]).then(function () { slowTimer = setTimeout(slow, SLOW_MS); }); }
  function start() { whoami().catch(function () { setText("whoami", "this server needs a token to read"); }).then(function () { fast(); slow(); }); }

  document.getElementById("token-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var v = document.getElementById("token").value.trim();
    if (v) { sessionStorage.setItem("lut_token", v); } document.getElementById("token").value = "";
    start();
  });
  document.getElementById("forget").addEventListener("click", function () { sessionStorage.removeItem("lut_token"); start(); });
  document.getElementById("requeue-all").addEventListener("click", function () { requeue(null); });
  start();
})();
