// ByteTorrent tracker site: the piece availability picture and the live cluster table.
// Plain JavaScript, no build step; text goes into the page only through textContent.
"use strict";

(function () {
  const page = document.body.dataset.page;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }

  // Colour of a piece held by `count` peers when the best-held piece has `max`.
  function pieceColour(count, max) {
    if (count === 0) return "#c9ccd1";
    const t = max <= 1 ? 1 : (count - 1) / (max - 1);
    const light = Math.round(72 - 40 * t);
    return "hsl(152, 62%, " + light + "%)";
  }

  function drawAvailability(canvas, availability) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.floor(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.floor(canvas.clientHeight * ratio));
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const n = availability.length;
    if (n === 0) {
      ctx.fillStyle = "#c9ccd1";
      ctx.fillRect(0, 0, width, height);
      return;
    }
    const max = availability.reduce((a, b) => Math.max(a, b), 0);
    if (n <= width) {
      // One rectangle per piece.
      for (let i = 0; i < n; i++) {
        const x0 = Math.floor((i * width) / n);
        const x1 = Math.floor(((i + 1) * width) / n);
        ctx.fillStyle = pieceColour(availability[i], max);
        ctx.fillRect(x0, 0, Math.max(1, x1 - x0), height);
      }
    } else {
      // Several pieces per column: show the rarest, so a missing piece is never hidden.
      for (let x = 0; x < width; x++) {
        const from = Math.floor((x * n) / width);
        const to = Math.max(from + 1, Math.floor(((x + 1) * n) / width));
        let rarest = Infinity;
        for (let i = from; i < to; i++) rarest = Math.min(rarest, availability[i]);
        ctx.fillStyle = pieceColour(rarest, max);
        ctx.fillRect(x, 0, 1, height);
      }
    }
    const missing = availability.filter((c) => c === 0).length;
    canvas.setAttribute(
      "aria-label",
      n + " pieces; the best-held piece has " + max + " copies; " + missing + " pieces nobody holds"
    );
    canvas.dataset.drawn = "true";
    const legend = document.getElementById("availability-legend");
    if (legend) {
      legend.textContent =
        "Most copies of a piece: " + max + " · pieces nobody holds: " + missing + " of " + n;
    }
  }

  function startTorrentPage() {
    const canvas = document.getElementById("availability");
    if (!canvas) return;
    const url = "/api/torrents/" + encodeURIComponent(canvas.dataset.hash);
    let last = null;
    async function refresh() {
      try {
        const details = await getJson(url);
        last = details.availability;
        drawAvailability(canvas, last);
      } catch (e) {
        canvas.dataset.error = String(e);
      }
    }
    refresh();
    setInterval(refresh, 5000);
    window.addEventListener("resize", () => {
      if (last) drawAvailability(canvas, last);
    });
  }

  function renderCluster(data) {
    const tbody = document.querySelector("#cluster tbody");
    if (!tbody) return;
    const rows = data.nodes.map((node) => {
      const tr = el("tr");
      tr.dataset.node = node.id;
      if (!node.up) tr.className = "down";
      tr.appendChild(el("td", node.id + (node.this_node ? " (this node)" : "")));
      tr.appendChild(el("td", node.name));
      tr.appendChild(el("td", node.peer_addr));
      tr.appendChild(el("td", node.role, "member"));
      const health = el("td", null, "health");
      const badge = el("span", node.up ? "up" : "down", node.up ? "up" : "down");
      if (node.error) badge.title = node.error;
      health.appendChild(badge);
      tr.appendChild(health);
      const role = el("td", null, "role");
      if (node.status && node.status.is_leader) role.appendChild(el("strong", "leader"));
      else role.textContent = node.status ? "follower" : "—";
      tr.appendChild(role);
      const believed = node.status && node.status.leader !== null ? node.status.leader : "—";
      tr.appendChild(el("td", believed));
      tr.appendChild(el("td", node.status ? node.status.decided : "—", "num"));
      tr.appendChild(el("td", node.status ? node.status.applied : "—", "num"));
      return tr;
    });
    tbody.replaceChildren(...rows);
    const line = document.getElementById("leader-line");
    const leaders = data.nodes.filter((n) => n.status && n.status.is_leader).map((n) => n.id);
    if (line) {
      line.replaceChildren();
      if (leaders.length === 0) {
        line.textContent =
          "No node leads right now: the cluster is electing a leader or cannot reach a majority.";
      } else if (leaders.length === 1) {
        line.appendChild(document.createTextNode("Node "));
        const span = el("span", leaders[0]);
        span.id = "leader";
        line.appendChild(span);
        line.appendChild(document.createTextNode(" leads."));
      } else {
        line.textContent =
          "Nodes " + leaders.join(", ") + " each believe they lead (a leader change is under way).";
      }
    }
    const updated = document.getElementById("cluster-updated");
    if (updated) updated.textContent = "Updated " + new Date().toLocaleTimeString() + "; every two seconds.";
  }

  function startClusterPage() {
    async function refresh() {
      try {
        renderCluster(await getJson("/api/cluster"));
      } catch (e) {
        const updated = document.getElementById("cluster-updated");
        if (updated) updated.textContent = "This node did not answer: " + e;
      }
    }
    setInterval(refresh, 2000);
  }

  if (page === "torrent") startTorrentPage();
  if (page === "cluster") startClusterPage();
})();
