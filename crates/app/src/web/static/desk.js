// casebot desk: the SLA board refreshes itself from /api/board. Everything
// from the server goes into the page as text (textContent), never as HTML.
"use strict";

(function () {
  const board = document.getElementById("board");
  if (!board) return;
  const every = Math.max(5, Number(board.dataset.refresh || 30)) * 1000;

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function render(data) {
    for (const [urgency, count] of Object.entries(data.counts)) {
      const n = document.querySelector('[data-count="' + urgency + '"]');
      if (n) n.textContent = String(count);
    }
    const body = document.getElementById("board-rows");
    const rows = document.createDocumentFragment();
    for (const c of data.cases) {
      const tr = document.createElement("tr");
      tr.className = "row-" + c.urgency;
      const badge = document.createElement("span");
      badge.className = "badge " + c.urgency;
      badge.textContent = c.urgency_label;
      cell(tr, "").appendChild(badge);
      const link = document.createElement("a");
      link.href = "/cases/" + encodeURIComponent(c.case_key);
      link.textContent = c.case_key;
      cell(tr, "").appendChild(link);
      cell(tr, c.priority);
      cell(tr, c.owner || "–");
      cell(tr, c.state);
      cell(tr, c.target || "–");
      cell(tr, c.left || "–", c.urgency);
      cell(tr, c.due || "paused");
      cell(tr, c.title || "");
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
    const stamp = document.getElementById("board-stamp");
    if (stamp) stamp.textContent = data.as_of;
  }

  async function refresh() {
    try {
      const response = await fetch("/api/board" + window.location.search, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        window.location.href = "/login?next=/board";
        return;
      }
      if (response.ok) render(await response.json());
    } catch (e) {
      // Keep the last board on screen; the next tick tries again.
    }
  }
  setInterval(refresh, every);
})();
