// herald console. The token lives in the `session` variable only: never in
// localStorage, sessionStorage or a cookie, so reloading the page signs out
// and no other site can make the browser send it. Every string from the API
// is written with textContent, never as HTML.
"use strict";

(function () {
  const POLL_MS = 1000;

  // session is the signed-in state: token, role ("admin" or "app") and,
  // for an api_key, its app.
  let session = null;
  let pollTimer = null;
  let pollGen = 0; // bumped at each sign-in and sign-out: a stale poll stops
  let lastStats = null; // the previous reading, for rates

  const $ = (id) => document.getElementById(id);

  // api calls herald with the session's token and resolves to
  // {status, body}; body is the decoded JSON or null.
  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + session.token };
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const res = await fetch(path, { method, headers, body: payload, cache: "no-store", credentials: "omit" });
    const text = await res.text();
    let json = null;
    if (text) {
      try { json = JSON.parse(text); } catch (e) { json = null; }
    }
    return { status: res.status, body: json };
  }

  const appPath = (app) => "/v1/apps/" + encodeURIComponent(app);

  function currentApp() {
    return session.role === "app" ? session.app : $("current-app").value;
  }

  // show writes a result line: ok text, or herald's error code and message.
  function show(el, res, okText) {
    el.replaceChildren();
    el.classList.remove("error", "ok");
    if (res === null) return;
    if (res.status < 400) {
      el.classList.add("ok");
      el.textContent = okText;
      return;
    }
    el.classList.add("error");
    const err = (res.body && res.body.error) || { code: "http_" + res.status, message: "no error body" };
    const code = document.createElement("code");
    code.className = "code";
    code.textContent = err.code;
    el.append("Error ", code, ": " + err.message + " (HTTP " + res.status + ")");
  }

  function showText(el, text, isError) {
    el.classList.remove("error", "ok");
    el.classList.add(isError ? "error" : "ok");
    el.textContent = text;
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function fillTable(table, rows) {
    table.tBodies[0].replaceChildren(...rows);
  }

  function mustApp(resultEl) {
    const app = currentApp();
    if (!app) {
      showText(resultEl, "Choose an app first.", true);
      return null;
    }
    return app;
  }

  // --- sign in and out

  async function signIn(ev) {
    ev.preventDefault();
    const token = $("signin-token").value.trim();
    const app = $("signin-app").value.trim();
    const out = $("signin-result");
    if (!token) {
      showText(out, "Enter a token.", true);
      $("signin-token").focus();
      return;
    }
    session = { token, role: null, app: null };
    let res = await api("GET", "/v1/stats");
    if (res.status === 200) {
      session.role = "admin";
    } else if (app) {
      res = await api("GET", appPath(app) + "/stats");
      if (res.status === 200) {
        session.role = "app";
        session.app = app;
      }
    }
    if (!session.role) {
      session = null;
      show(out, res.status === 200 ? null : res);
      if (!app && res.status === 401) {
        out.append(" — for an api_key, give its app id too.");
      }
      return;
    }
    $("signin-token").value = "";
    out.replaceChildren();
    enter();
  }

  function enter() {
    document.body.classList.toggle("admin", session.role === "admin");
    $("who").textContent = session.role === "admin" ? "Signed in as admin" : "Signed in to app " + session.app;
    $("signin").hidden = true;
    $("signed-in").hidden = false;
    $("signout").hidden = false;
    $("apps").hidden = session.role !== "admin";
    $("nav-apps").hidden = session.role !== "admin";
    const sel = $("current-app");
    sel.disabled = session.role !== "admin";
    if (session.role === "app") {
      const o = document.createElement("option");
      o.value = o.textContent = session.app;
      sel.replaceChildren(o);
      refreshCerts();
    } else {
      refreshApps();
    }
    lastStats = null;
    poll(++pollGen);
    $("main").focus();
  }

  function signOut() {
    session = null;
    lastStats = null;
    pollGen++;
    clearTimeout(pollTimer);
    pollTimer = null;
    // Leave nothing of the previous session on the page.
    for (const id of ["new-key-value", "create-app-result", "upload-result", "p8-result", "certs-result", "user-result", "message-result", "live-result"]) {
      $(id).replaceChildren();
    }
    // The upload forms may hold a password or a private key.
    $("upload-form").reset();
    $("p8-form").reset();
    for (const t of document.querySelectorAll("table")) fillTable(t, []);
    $("new-key").hidden = true;
    $("user-view").hidden = true;
    $("message-view").hidden = true;
    $("signed-in").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    $("who").textContent = "Signed out";
    $("signin-token").focus();
  }

  // --- apps (admin)

  async function refreshApps(select) {
    const res = await api("GET", "/v1/apps");
    if (res.status !== 200) {
      show($("create-app-result"), res);
      return;
    }
    const apps = res.body.apps;
    fillTable($("apps-table"), apps.map((a) => {
      const tr = document.createElement("tr");
      tr.append(cell(a.app_id), cell(a.created_at));
      return tr;
    }));
    const sel = $("current-app");
    const keep = select || sel.value;
    sel.replaceChildren(...apps.map((a) => {
      const o = document.createElement("option");
      o.value = o.textContent = a.app_id;
      return o;
    }));
    if (keep && apps.some((a) => a.app_id === keep)) sel.value = keep;
    refreshCerts();
  }

  async function createApp(ev) {
    ev.preventDefault();
    const id = $("create-app-id").value.trim();
    const out = $("create-app-result");
    $("new-key").hidden = true;
    $("new-key-value").replaceChildren();
    const res = await api("POST", "/v1/apps", { app_id: id });
    show(out, res, "Created app " + id + ".");
    if (res.status !== 201) return;
    $("new-key-value").textContent = res.body.api_key;
    $("new-key").hidden = false;
    $("create-app-id").value = "";
    refreshApps(id);
  }

  // --- certificates

  async function upload(ev) {
    ev.preventDefault();
    const out = $("upload-result");
    const app = mustApp(out);
    if (!app) return;
    const file = $("upload-file").files[0];
    const form = new FormData();
    if (file) form.append("file", file, file.name);
    form.append("password", $("upload-password").value);
    form.append("environment", $("upload-env").value);
    form.append("name", $("upload-name").value);
    const res = await api("POST", appPath(app) + "/certificates", form);
    show(out, res, res.status === 201 ? "Uploaded: business_id " + res.body.business_id + ", topic " + res.body.topic + ", expires " + res.body.not_after + "." : "");
    if (res.status === 201) {
      $("upload-password").value = "";
      refreshCerts();
    }
  }

  // The key id Apple puts in a .p8's file name: AuthKey_<key id>.p8.
  const keyIDInName = (name) => {
    const m = /^AuthKey_([A-Z0-9]{10})\.p8$/.exec(name);
    return m ? m[1] : "";
  };

  // p8FileChosen fills the key id from the file's name when it is empty.
  function p8FileChosen() {
    const file = $("p8-file").files[0];
    const id = file ? keyIDInName(file.name) : "";
    if (id && !$("p8-keyid").value.trim()) $("p8-keyid").value = id;
  }

  // uploadP8 posts a .p8 as JSON: the key comes from the chosen file,
  // read here, or from the text area.
  async function uploadP8(ev) {
    ev.preventDefault();
    const out = $("p8-result");
    const app = mustApp(out);
    if (!app) return;
    const file = $("p8-file").files[0];
    let key = $("p8-key").value;
    if (file) {
      try {
        key = await file.text();
      } catch (e) {
        showText(out, "Could not read " + file.name + ": " + e, true);
        return;
      }
    }
    const body = {
      type: "p8",
      name: $("p8-name").value,
      environment: $("p8-env").value,
      team_id: $("p8-team").value.trim(),
      key_id: $("p8-keyid").value.trim(),
      topic: $("p8-topic").value.trim(),
      key,
    };
    const res = await api("POST", appPath(app) + "/certificates", body);
    show(out, res, res.status === 201 ? "Uploaded token key: business_id " + res.body.business_id + ", team " + res.body.team_id +
      ", key " + res.body.key_id + ", topic " + res.body.topic + ", environment " + res.body.environment + "." : "");
    if (res.status === 201) {
      // Drop the private key from the page once herald has it.
      $("p8-key").value = "";
      $("p8-file").value = "";
      refreshCerts();
    }
  }

  async function refreshCerts() {
    const out = $("certs-result");
    const app = currentApp();
    if (!app) {
      fillTable($("certs-table"), []);
      return;
    }
    const res = await api("GET", appPath(app) + "/certificates");
    if (res.status !== 200) {
      show(out, res);
      return;
    }
    out.replaceChildren();
    fillTable($("certs-table"), res.body.certificates.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.businessId = String(c.business_id);
      const p8 = c.type === "p8";
      // A .p12 has expires_in_days from herald; a .p8 does not expire.
      const days = p8 ? null : c.expires_in_days;
      const del = document.createElement("button");
      del.type = "button";
      del.textContent = "Delete";
      del.setAttribute("aria-label", "Delete certificate " + c.business_id + " (" + c.name + ")");
      del.addEventListener("click", () => deleteCert(app, c));
      const actions = document.createElement("td");
      actions.append(del);
      tr.append(cell(c.business_id), cell(c.name), cell(c.type, "type"), cell(c.environment), cell(c.topic),
        cell(p8 ? c.team_id + " / " + c.key_id : "", "ids"), cell(p8 ? "never" : c.not_after),
        cell(p8 ? "" : days, "days" + (days !== null && days !== undefined && days < 30 ? " warn" : "")),
        cell(c.last_error || "", c.last_error ? "warn" : ""), actions);
      return tr;
    }));
  }

  async function deleteCert(app, c) {
    if (!window.confirm("Delete certificate " + c.business_id + " (" + c.name + ")? Devices bound to it stop getting pushes.")) return;
    const res = await api("DELETE", appPath(app) + "/certificates/" + c.business_id);
    show($("certs-result"), res, "Deleted certificate " + c.business_id + ".");
    refreshCerts();
  }

  // --- users and messages

  async function lookUpUser(ev) {
    ev.preventDefault();
    const out = $("user-result");
    const app = mustApp(out);
    if (!app) return;
    const id = $("user-id").value.trim();
    const res = await api("GET", appPath(app) + "/users/" + encodeURIComponent(id));
    $("user-view").hidden = res.status !== 200;
    show(out, res, "User " + id + ": " + (res.body && res.body.devices ? res.body.devices.length : 0) + " device(s).");
    if (res.status !== 200) return;
    const u = res.body;
    $("user-nickname").textContent = u.nickname || "(none)";
    $("user-badge").textContent = String(u.badge);
    fillTable($("user-devices"), u.devices.map((d) => {
      const tr = document.createElement("tr");
      tr.append(cell(d.business_id), cell(d.token, "token"), cell(d.state));
      return tr;
    }));
  }

  async function lookUpMessage(ev) {
    ev.preventDefault();
    const out = $("message-result");
    const app = mustApp(out);
    if (!app) return;
    const id = $("message-id").value.trim();
    const res = await api("GET", appPath(app) + "/messages/" + encodeURIComponent(id));
    $("message-view").hidden = res.status !== 200;
    show(out, res, "Message " + id + ".");
    if (res.status !== 200) return;
    $("message-state").textContent = res.body.state;
    fillTable($("message-pushes"), res.body.pushes.map((p) => {
      const tr = document.createElement("tr");
      tr.append(cell(p.user_id), cell(p.token, "token"), cell(p.status), cell(p.apns_id), cell(p.reason));
      return tr;
    }));
  }

  // --- live figures

  function rate(now, prev, field, dt) {
    if (!prev || dt <= 0) return null;
    return Math.max(0, (now[field] - prev[field]) / dt);
  }

  const fmtRate = (r) => (r === null ? "–" : r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en"));

  // poll reads the stats once a second; it reschedules itself, so a slow
  // answer never stacks requests.
  async function poll(gen) {
    if (!session || gen !== pollGen) return;
    const out = $("live-result");
    let res;
    try {
      res = session.role === "admin" ? await api("GET", "/v1/stats") : await api("GET", appPath(session.app) + "/stats");
    } catch (e) {
      res = { status: 0, body: { error: { code: "network", message: String(e) } } };
    }
    if (!session || gen !== pollGen) return;
    if (res.status === 200) {
      out.replaceChildren();
      render(res.body);
    } else {
      show(out, res);
    }
    pollTimer = setTimeout(() => poll(gen), POLL_MS);
  }

  function render(stats) {
    const apps = session.role === "admin" ? stats.apps : [stats];
    const now = { time: Date.parse(stats.time), apps: new Map(apps.map((a) => [a.app_id, a])) };
    const dt = lastStats ? (now.time - lastStats.time) / 1000 : 0;
    let total = null, errors = null;
    const rows = apps.map((a) => {
      const prev = lastStats && lastStats.apps.get(a.app_id);
      const r = rate(a, prev, "pushes_sent", dt);
      const f = rate(a, prev, "pushes_failed", dt);
      if (r !== null) total = (total || 0) + r + f;
      if (f !== null) errors = (errors || 0) + f;
      const tr = document.createElement("tr");
      tr.dataset.app = a.app_id;
      tr.append(cell(a.app_id), cell(r === null ? "–" : fmtRate(r + f), "rate"), cell(fmtRate(f), "errors"),
        cell(a.queue_depth), cell(a.pushes_sent), cell(a.pushes_failed), cell(a.circuits_open, a.circuits_open > 0 ? "warn" : ""));
      return tr;
    });
    fillTable($("live-table"), rows);
    $("live-rate").textContent = fmtRate(total);
    $("live-errors").textContent = fmtRate(errors);
    if (session.role === "admin") {
      $("live-queue").textContent = stats.queue_depth.toLocaleString("en");
      $("live-unsettled").textContent = stats.unsettled.toLocaleString("en");
      $("live-inflight").textContent = stats.inflight.toLocaleString("en");
    }
    lastStats = now;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("create-app-form").addEventListener("submit", createApp);
    $("upload-form").addEventListener("submit", upload);
    $("p8-form").addEventListener("submit", uploadP8);
    $("p8-file").addEventListener("change", p8FileChosen);
    $("certs-refresh").addEventListener("click", refreshCerts);
    $("current-app").addEventListener("change", refreshCerts);
    $("user-form").addEventListener("submit", lookUpUser);
    $("message-form").addEventListener("submit", lookUpMessage);
    $("signin-token").focus();
  });
})();
