// ByteTorrent peer dashboard: polls /api/torrents every second, keeps the last 60 s of
// rates per torrent, and draws the rate chart and the piece map on canvases. Text goes
// into the page only through textContent.
"use strict";

(function () {
  const csrf = document.body.dataset.csrf;
  const history = new Map(); // info hash -> [{t, down, up}]
  const cards = new Map(); // info hash -> card elements
  const WINDOW_MS = 60000;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function rate(bytesPerSecond) {
    const units = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
    let value = bytesPerSecond;
    let unit = 0;
    while (value >= 1024 && unit + 1 < units.length) {
      value /= 1024;
      unit++;
    }
    return (unit === 0 ? Math.round(value) : value.toFixed(1)) + " " + units[unit];
  }

  function size(bytes) {
    return rate(bytes).replace("/s", "");
  }

  async function act(hash, action) {
    const response = await fetch("/api/torrents/" + hash + "/" + action, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    if (!response.ok) alert(await response.text());
    refresh();
  }

  function sizeCanvas(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.floor(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.floor(canvas.clientHeight * ratio));
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    return { width, height, ratio };
  }

  function drawChart(canvas, points, now) {
    const { width, height, ratio } = sizeCanvas(canvas);
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const max = Math.max(1, ...points.map((p) => Math.max(p.down, p.up)));
    const pad = 4 * ratio;
    const x = (t) => width - ((now - t) / WINDOW_MS) * width;
    const y = (v) => height - pad - (v / max) * (height - 2 * pad - 14 * ratio);
    ctx.strokeStyle = "#e4e7ec";
    ctx.lineWidth = 1;
    for (let s = 0; s <= 60; s += 10) {
      const gx = Math.round(x(now - s * 1000)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(gx, 0);
      ctx.lineTo(gx, height);
      ctx.stroke();
    }
    for (const [key, colour] of [["down", "#1f6feb"], ["up", "#d97706"]]) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2 * ratio;
      ctx.beginPath();
      points.forEach((p, i) => {
        if (i === 0) ctx.moveTo(x(p.t), y(p[key]));
        else ctx.lineTo(x(p.t), y(p[key]));
      });
      ctx.stroke();
    }
    ctx.fillStyle = "#5c6675";
    ctx.font = 11 * ratio + "px system-ui, sans-serif";
    ctx.fillText("peak " + rate(max) + " · last 60 s", pad, 12 * ratio);
  }

  function drawPieces(canvas, map) {
    const { width, height } = sizeCanvas(canvas);
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const n = map.length;
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      const x0 = Math.floor((i * width) / n);
      const x1 = Math.floor(((i + 1) * width) / n);
      ctx.fillStyle = map[i] === "#" ? "#1a7f4b" : "#d5d9df";
      ctx.fillRect(x0, 0, Math.max(1, x1 - x0), height);
    }
  }

  function makeCard(t) {
    const card = el("section", null, "torrent");
    card.dataset.hash = t.info_hash;
    const head = el("div", null, "row");
    const title = el("h2", t.name);
    head.appendChild(title);
    const actions = el("div", null, "actions");
    const pause = el("button", "Pause");
    pause.className = "pause";
    pause.addEventListener("click", () =>
      act(t.info_hash, card.dataset.state === "Paused" ? "resume" : "pause")
    );
    const remove = el("button", "Remove", "danger remove");
    remove.addEventListener("click", () => {
      if (confirm("Stop and forget this torrent? Its files stay on disk.")) act(t.info_hash, "remove");
    });
    actions.append(pause, remove);
    head.appendChild(actions);
    card.appendChild(head);
    const path = el("div", null, "muted path");
    card.appendChild(path);
    const summary = el("div", null, "row");
    const pct = el("span", "", "pct");
    const state = el("span", "", "state");
    const bytes = el("span", "", "muted bytes");
    summary.append(pct, state, bytes);
    card.appendChild(summary);
    const bar = el("div", null, "progress");
    const fill = el("div");
    bar.appendChild(fill);
    card.appendChild(bar);
    const rates = el("div", null, "row rates");
    const down = el("span", "", "down");
    const up = el("span", "", "up");
    const totals = el("span", "", "muted");
    rates.append(down, up, totals);
    card.appendChild(rates);
    const chart = el("canvas", null, "chart");
    chart.setAttribute("aria-label", "download and upload rate over the last 60 seconds");
    card.appendChild(chart);
    card.appendChild(el("h3", "Pieces"));
    const pieces = el("canvas", null, "pieces");
    card.appendChild(pieces);
    const neighboursTitle = el("h3", "Neighbours");
    card.appendChild(neighboursTitle);
    const table = el("table", null, "neighbours");
    const thead = el("thead");
    const headRow = el("tr");
    for (const [label, cls] of [["Peer"], ["Address"], ["State"], ["Rate", "num"], ["In flight", "num"], ["Pieces", "num"]]) {
      headRow.appendChild(el("th", label, cls));
    }
    thead.appendChild(headRow);
    const tbody = el("tbody");
    table.append(thead, tbody);
    card.appendChild(table);
    const parts = { card, path, pct, state, bytes, fill, down, up, totals, chart, pieces, tbody, pause, neighboursTitle };
    cards.set(t.info_hash, parts);
    return card;
  }

  function update(parts, t, points, now) {
    const percent = (t.progress * 100).toFixed(1) + " %";
    parts.card.dataset.state = t.state;
    parts.path.textContent = t.path;
    parts.pct.textContent = percent;
    parts.state.textContent = t.error ? "Failed: " + t.error : t.state;
    parts.state.className = "state " + t.state;
    parts.bytes.textContent =
      size(t.bytes_have) + " of " + size(t.bytes_total) + " · " + t.pieces_have + " / " + t.pieces_total + " pieces";
    parts.fill.style.width = (t.progress * 100).toFixed(2) + "%";
    parts.down.textContent = "↓ " + rate(t.download_rate);
    parts.up.textContent = "↑ " + rate(t.upload_rate);
    parts.totals.textContent = "downloaded " + size(t.downloaded) + " · uploaded " + size(t.uploaded);
    parts.pause.textContent = t.state === "Paused" ? "Resume" : "Pause";
    drawChart(parts.chart, points, now);
    drawPieces(parts.pieces, t.piece_map);
    parts.neighboursTitle.textContent = "Neighbours (" + t.neighbours.length + ")";
    const rows = t.neighbours.map((n) => {
      const tr = el("tr");
      const fp = el("td");
      const code = el("code", n.fingerprint.slice(0, 16) + "…");
      code.title = n.fingerprint;
      fp.appendChild(code);
      tr.append(
        fp,
        el("td", n.addr),
        el("td", n.state),
        el("td", rate(n.rate), "num"),
        el("td", n.in_flight, "num"),
        el("td", n.pieces + " / " + t.pieces_total, "num")
      );
      return tr;
    });
    parts.tbody.replaceChildren(...rows);
  }

  async function refresh() {
    let list;
    try {
      const response = await fetch("/api/torrents", { cache: "no-store" });
      if (!response.ok) throw new Error(response.status + " " + (await response.text()));
      list = await response.json();
      document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      document.getElementById("status").textContent = "the peer does not answer: " + e;
      return;
    }
    const now = Date.now();
    const container = document.getElementById("torrents");
    const seen = new Set();
    for (const t of list) {
      seen.add(t.info_hash);
      let parts = cards.get(t.info_hash);
      if (!parts) {
        container.appendChild(makeCard(t));
        parts = cards.get(t.info_hash);
      }
      const points = history.get(t.info_hash) || [];
      points.push({ t: now, down: t.download_rate, up: t.upload_rate });
      while (points.length && now - points[0].t > WINDOW_MS) points.shift();
      history.set(t.info_hash, points);
      update(parts, t, points, now);
    }
    for (const [hash, parts] of cards) {
      if (!seen.has(hash)) {
        parts.card.remove();
        cards.delete(hash);
        history.delete(hash);
      }
    }
    document.getElementById("empty").hidden = list.length !== 0;
  }

  refresh();
  setInterval(refresh, 1000);
})();
