/* refit dashboard: live rows from /api/v1/events, buttons without a page change. No framework. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  var tbody = document.getElementById("rows");
  var csrf = document.querySelector("meta[name=csrf]");
  function say(text) { if (live) live.textContent = text; }
  function rowOf(name) {
    var rows = tbody ? tbody.querySelectorAll("tr[data-name]") : [];
    for (var i = 0; i < rows.length; i++) if (rows[i].getAttribute("data-name") === name) return rows[i];
    return null;
  }
  function refresh() {
    if (!tbody) return;
    fetch("/ui/rows" + location.search, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("rows: HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString("<table><tbody>" + html + "</tbody></table>", "text/html");
      var fresh = doc.querySelector("tbody");
      if (fresh) tbody.replaceChildren.apply(tbody, Array.prototype.slice.call(fresh.childNodes));
      document.body.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function (e) { say(e.message); });
  }
  function step(d) {
    var name = d.container || d.model || "";
    var row = rowOf(name);
    if (row) {
      var st = row.querySelector(".status");
      if (st) { st.className = "status s-busy"; st.textContent = d.step; }
    }
    say((d.kind || "") + " " + name + ": " + d.step);
  }
  if (tbody && window.EventSource) {
    var es = new EventSource("/api/v1/events");
    es.addEventListener("pass", function (m) {
      var d = JSON.parse(m.data);
      say("operation " + d.operation + " (" + d.kind + "): " + d.state + (d.error ? ": " + d.error : ""));
      if (d.state !== "running") refresh();
    });
    es.addEventListener("step", function (m) { step(JSON.parse(m.data)); });
    es.addEventListener("container", function (m) {
      var d = JSON.parse(m.data);
      say((d.container || d.model || "") + ": " + (d.outcome || "done") + (d.error ? ": " + d.error : ""));
      refresh();
    });
    es.addEventListener("dropped", refresh);
  }
  /* Buttons: confirm the destructive ones, post, and say the answer here; the stream shows the rest. */
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (!f.classList || !f.classList.contains("act")) return;
    var q = f.getAttribute("data-confirm"), b = ev.submitter;
    var body = new URLSearchParams(new FormData(f));
    if (b && b.name === "do") {   /* a row's button: do=ACTION:NAME, its question from the page's q-ACTION */
      var i = b.value.indexOf(":"), m = document.querySelector('meta[name="q-' + b.value.slice(0, i) + '"]');
      body.set("do", b.value);
      q = m ? m.content.replace("%s", b.value.slice(i + 1)) : null;
    }
    if (q && !window.confirm(q)) { ev.preventDefault(); return; }
    ev.preventDefault();
    if (q) body.set("confirm", "yes");
    fetch(f.getAttribute("action"), { method: "POST", credentials: "same-origin", body: body,
                      headers: { "Accept": "application/json" } }).then(function (r) {
      return r.json().then(function (j) { return [r.status, j]; });
    }).then(function (a) {
      var j = a[1];
      if (j.error) say("refused: " + j.error);
      else if (j.operation) say("operation " + j.operation + " queued");
      else if (j.rollout) location.assign("/ui/fleet");
      else if (j.released) { say(j.released.length ? "released " + j.released.join(", ") : "no hold to release"); refresh(); }
      else if (typeof j.paused === "boolean") { say(j.paused ? "updates paused" : "updates resumed"); location.reload(); }
    }).catch(function (e) { say(e.message); });
  });
  if (csrf && !csrf.content) say("no CSRF token: log in again");
})();
