// The admin pages: views over the admin JSON API (/admin/api, docs/admin.md),
// logged in with the webmail's session cookie and its CSRF token.
const $ = (id) => document.getElementById(id);
let csrf = null;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null) node.append(child);
  return node;
}

function status(text, ok = true) {
  $("status").textContent = text;
  $("status").className = ok ? "ok" : "bad";
}

async function call(method, path, body) {
  const headers = {};
  if (csrf) headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const error = new Error(data.detail || `${answer.status}`);
    error.status = answer.status;
    throw error;
  }
  return data;
}

const api = (method, path, body) => call(method, `/admin/api${path}`, body);
const enc = encodeURIComponent;

async function act(what, action) {
  try {
    const result = await action();
    status(what);
    await refresh();
    return result;
  } catch (error) {
    status(`${what}: failed: ${error.message}`, false);
    return null;
  }
}

function button(label, name, onclick) {
  return el("button", { type: "button", "aria-label": name, onclick }, label);
}

// --- views ------------------------------------------------------------

async function showDomains() {
  const list = $("domain-list");
  list.replaceChildren();
  for (const domain of await api("GET", "/domains")) {
    list.append(el("li", {}, `${domain} `,
      button("Records", `Records of ${domain}`, () => showRecords(domain)),
      button("Check DNS", `Check DNS of ${domain}`, () => checkDomain(domain)),
      button("Rotate DKIM", `Rotate DKIM keys of ${domain}`, () =>
        act(`rotated the DKIM keys of ${domain}`, () => api("POST", `/dkim/${enc(domain)}/rotate`))),
      button("Remove", `Remove domain ${domain}`, () =>
        act(`removed ${domain}`, () => api("DELETE", `/domains/${enc(domain)}`)))));
  }
}

async function showRecords(domain) {
  const records = await api("GET", `/domains/${enc(domain)}/records`);
  $("domain-detail").textContent = `; publish for ${domain}\n${records.join("\n")}`;
}

async function checkDomain(domain) {
  status(`checking ${domain} ...`);
  try {
    const findings = await api("GET", `/domains/${enc(domain)}/check`);
    $("domain-detail").textContent = findings.map((f) => f.text).join("\n");
    status(`checked ${domain}`);
  } catch (error) {
    status(`check of ${domain} failed: ${error.message}`, false);
  }
}

async function showAccounts() {
  const rows = $("account-list");
  rows.replaceChildren();
  for (const a of await api("GET", "/accounts")) {
    const path = `/accounts/${enc(a.address)}`;
    rows.append(el("tr", {},
      el("td", {}, a.address), el("td", {}, String(a.used)),
      el("td", {}, a.quota ? String(a.quota) : "unlimited"),
      el("td", {}, a.admin ? "admin" : "user"),
      el("td", {}, a.disabled ? "disabled" : "active"),
      el("td", {},
        button("Reset password", `Reset password of ${a.address}`, () => {
          const password = prompt(`New password for ${a.address}`);
          if (password) act(`changed the password of ${a.address}`, () => api("PATCH", path, { password }));
        }),
        button("Set quota", `Set quota of ${a.address}`, () => {
          const quota = prompt(`Quota of ${a.address} in octets (0 = unlimited)`, String(a.quota));
          if (quota !== null) act(`set the quota of ${a.address}`, () => api("PATCH", path, { quota: Number(quota) }));
        }),
        button(a.disabled ? "Enable" : "Disable", `${a.disabled ? "Enable" : "Disable"} ${a.address}`, () =>
          act(`${a.disabled ? "enabled" : "disabled"} ${a.address}`, () => api("PATCH", path, { disabled: !a.disabled }))),
        button(a.admin ? "Revoke admin" : "Make admin", `${a.admin ? "Revoke admin role of" : "Make admin"} ${a.address}`, () =>
          act(`changed the role of ${a.address}`, () => api("PATCH", path, { admin: !a.admin }))),
        button("Remove", `Remove account ${a.address}`, () => {
          if (confirm(`Remove ${a.address} and all its mail?`)) act(`removed ${a.address}`, () => api("DELETE", path));
        }))));
  }
  const aliases = $("alias-list");
  aliases.replaceChildren();
  for (const alias of await api("GET", "/aliases")) {
    aliases.append(el("li", {}, `${alias.source} → ${alias.target} `,
      button("Remove", `Remove alias ${alias.source} to ${alias.target}`, () =>
        act(`removed alias ${alias.source}`,
          () => api("DELETE", `/aliases?source=${enc(alias.source)}&target=${enc(alias.target)}`)))));
  }
}

async function showDkim() {
  const rows = $("dkim-list");
  rows.replaceChildren();
  for (const k of await api("GET", "/dkim")) {
    rows.append(el("tr", {}, el("td", {}, k.domain), el("td", {}, k.selector),
      el("td", {}, k.algorithm), el("td", {}, k.active ? "active" : "retired")));
  }
}

async function showQueue() {
  const list = $("queue-list");
  list.replaceChildren();
  const entries = await api("GET", "/queue");
  if (!entries.length) list.append(el("li", {}, "The queue is empty."));
  for (const e of entries) {
    const to = e.recipients.map((r) => `${r.address} (${r.state}, ${r.attempts} attempts)`).join(", ");
    list.append(el("li", {}, `#${e.id} from <${e.mailFrom}> to ${to} `,
      button("Show", `Show queued message ${e.id}`, async () => {
        const shown = await api("GET", `/queue/${e.id}`);
        $("queue-detail").textContent = shown.header;
      }),
      button("Retry", `Retry queued message ${e.id}`, () => act(`retrying #${e.id}`, () => api("POST", `/queue/${e.id}/retry`))),
      e.recipients.some((r) => r.state === "held")
        ? button("Release", `Release queued message ${e.id}`, () => act(`released #${e.id}`, () => api("POST", `/queue/${e.id}/release`)))
        : button("Hold", `Hold queued message ${e.id}`, () => act(`held #${e.id}`, () => api("POST", `/queue/${e.id}/hold`))),
      button("Bounce", `Bounce queued message ${e.id}`, () => act(`bounced #${e.id}`, () => api("POST", `/queue/${e.id}/bounce`))),
      button("Delete", `Delete queued message ${e.id}`, () => act(`deleted #${e.id}`, () => api("DELETE", `/queue/${e.id}`)))));
  }
}

async function showLogs() {
  const failed = await api("GET", "/logins/failed?count=50");
  const recent = await api("GET", "/logs?count=100");
  const none = (answer) => (answer.file ? `nothing in ${answer.file}` : "no log file: set [log] file");
  $("failed-logins").textContent = failed.lines.join("\n") || none(failed);
  $("log-lines").textContent = recent.lines.join("\n") || none(recent);
}

async function showCertificates() {
  const rows = $("certificate-list");
  rows.replaceChildren();
  for (const c of await api("GET", "/certificates")) {
    rows.append(el("tr", {}, el("td", {}, c.name), el("td", {}, c.names.join(", ")),
      el("td", {}, c.selfSigned ? "self-signed" : c.issuer), el("td", {}, c.notAfter.slice(0, 10)),
      el("td", {}, String(Math.floor(c.daysLeft)))));
  }
}

async function refresh() {
  await Promise.all([showDomains(), showAccounts(), showDkim(), showQueue(), showLogs(), showCertificates()]);
}

// --- session ------------------------------------------------------------

function show(id) {
  for (const view of ["login", "refused", "app"]) $(view).hidden = view !== id;
}

async function start() {
  const me = await call("GET", "/webmail/session");
  csrf = me.csrf;
  if (!me.username) { show("login"); return; }
  try {
    await api("GET", "/me");
  } catch (error) {
    show(error.status === 403 ? "refused" : "login");
    return;
  }
  $("me").textContent = me.username;
  show("app");
  await refresh();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await call("POST", "/webmail/login", { username: form.get("username"), password: form.get("password") });
    await start();
  } catch (error) {
    alert(`Sign-in failed: ${error.message}`);
  }
});

$("signout").addEventListener("click", async () => {
  await call("POST", "/webmail/logout").catch(() => {});
  csrf = null;
  show("login");
});

$("domain-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const domain = new FormData(event.target).get("domain");
  const added = await act(`added ${domain}`, () => api("POST", "/domains", { domain }));
  if (added) {
    event.target.reset();
    $("domain-detail").textContent = `; publish for ${added.domain}\n${added.records.join("\n")}\n; ${added.notes.join("\n; ")}`;
  }
});

$("account-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {
    address: form.get("address"), password: form.get("password"),
    quota: Number(form.get("quota") || 0), admin: form.get("admin") === "on",
  };
  if (await act(`added ${body.address}`, () => api("POST", "/accounts", body))) event.target.reset();
});

$("alias-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { source: form.get("source"), target: form.get("target") };
  if (await act(`added alias ${body.source}`, () => api("POST", "/aliases", body))) event.target.reset();
});

$("queue-retry-all").addEventListener("click", () => act("all queued mail is due now", () => api("POST", "/queue/retry")));

start().catch((error) => status(`Error: ${error.message}`, false));
