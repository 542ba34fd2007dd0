// lockd dashboard, forecast panel (issue 18): who changed which files without
// claiming them, and whether their branches would merge. Its own file and its
// own elements (#forecast-section): the rest of the page is app.js's.
// Re-read every 2 s; textContent only: names and paths are data.
"use strict";

(function () {
  const panel = () => document.querySelector("#forecast");

  function node(tag, cls, ...children) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    for (const c of children) n.append(c instanceof Node ? c : String(c));
    return n;
  }

  function names(repo) {
    return new Map(repo.peers.map((p) => [p.peer_id, p.name]));
  }

  function repoBlock(repo) {
    const who = names(repo);
    const name = (id) => who.get(id) || id;
    const block = node("div", "forecast-repo", node("h3", "", repo.repo));
    const list = node("ul", "forecast-list");
    for (const o of repo.overlaps) {
      list.append(node("li", "overlap",
        node("strong", "", name(o.a) + " × " + name(o.b)),
        " both changed " + o.paths.slice(0, 5).join(", ") + (o.count > 5 ? " …" : "")));
    }
    for (const v of repo.verdicts) {
      const text = v.conflict
        ? "would conflict in " + (v.paths.join(", ") || "(files not named)")
        : (v.note || "merges cleanly");
      list.append(node("li", v.conflict ? "verdict conflict" : "verdict clean",
        node("strong", "", name(v.a) + " × " + name(v.b)), " " + text));
    }
    for (const p of repo.peers) {
      const count = p.paths.length + (p.more || 0);
      list.append(node("li", "activity",
        node("strong", "", p.name), ` ${count} changed file${count === 1 ? "" : "s"}` +
        (p.branch ? " on " + p.branch : "")));
    }
    block.append(list);
    return block;
  }

  async function load() {
    try {
      const resp = await fetch("/dashboard/api/forecast", { credentials: "same-origin" });
      if (!resp.ok) return;
      const data = await resp.json();
      const repos = data.repos.filter((r) => r.peers.length);
      panel().replaceChildren(...repos.map(repoBlock));
      document.querySelector("#forecast-section").hidden = repos.length === 0;
    } catch (err) {
      // the main page reports a lost broker; this panel just waits for the next round
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    load();
    setInterval(load, 2000);
  });
})();
