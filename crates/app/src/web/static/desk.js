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
      cell(tr, c.state_label);
      cell(tr, c.target_label || "–");
      cell(tr, c.left || "–", c.urgency);
      cell(tr, c.due);
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

// The draft editor's text modules: "::name" followed by a space or Enter
// is replaced by the module, rendered for this draft by the server; the
// list under the editor inserts one at the cursor. Text only.
(function () {
  const body = document.getElementById("body");
  const list = document.getElementById("snippets");
  if (!body || !list) return;
  let modules = {};

  function insert(text, from, to) {
    body.setRangeText(text, from, to, "end");
    body.focus();
  }

  body.addEventListener("keyup", function (event) {
    if (event.key !== " " && event.key !== "Enter") return;
    const upto = body.selectionStart;
    const before = body.value.slice(0, upto);
    const match = /::([A-Za-z0-9_-]+)[ \n]$/.exec(before);
    if (!match || !(match[1] in modules)) return;
    insert(modules[match[1]], upto - match[0].length, upto);
  });

  fetch("/api/drafts/" + encodeURIComponent(list.dataset.draft) + "/snippets", {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  })
    .then(function (response) {
      return response.ok ? response.json() : [];
    })
    .then(function (snippets) {
      for (const s of snippets) {
        const li = document.createElement("li");
        const code = document.createElement("code");
        code.textContent = "::" + s.name;
        li.appendChild(code);
        if (s.text !== null && s.text !== undefined) {
          modules[s.name] = s.text;
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = list.dataset.insert || "insert";
          button.addEventListener("click", function () {
            insert(s.text, body.selectionStart, body.selectionEnd);
          });
          li.append(" ", button, " ");
          const preview = document.createElement("span");
          preview.className = "muted";
          preview.textContent = s.text.length > 80 ? s.text.slice(0, 80) + "…" : s.text;
          li.appendChild(preview);
        } else {
          const why = document.createElement("span");
          why.className = "muted";
          why.textContent = " (" + (list.dataset.unusable || "not for this draft") + ": " + s.error + ")";
          li.appendChild(why);
        }
        list.appendChild(li);
      }
    })
    .catch(function () {});
})();
