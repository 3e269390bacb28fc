// The webmail: views that render state held here, over JMAP (jmap.js).
import { Jmap, getJson, login, logout, postJson, whenSessionLost, whoami } from "./jmap.js";
import { RichEditor, autocomplete, dropFiles } from "./compose.js";
import { parseSearch } from "./search.js";

const PAGE = 50;
const WINDOW = 500; // most items the list holds at once (scrolling adds pages up to it)
const ROLE_ORDER = ["inbox", "drafts", "sent", "archive", "junk", "trash"];
const $ = (id) => document.getElementById(id);

const state = {
  me: null, jmap: null, source: null,
  mailboxes: [], mailboxId: null, search: null,
  position: 0, total: 0, emails: [], open: null, draftId: null, reply: null,
  selected: new Set(), conversations: false, threadSizes: {}, identities: [], prefs: {},
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null) node.append(child);
  return node;
}

function status(text) { $("status").textContent = text; }

function failed(error) { status(`Error: ${error.message}`); }

function who(addresses) {
  return (addresses || []).map((a) => a.name || a.email).join(", ");
}

function whoFull(addresses) {
  return (addresses || []).map((a) => (a.name ? `${a.name} <${a.email}>` : a.email)).join(", ");
}

function parseAddresses(text) {
  return text.split(/[,;]/).map((s) => s.trim()).filter(Boolean).map((part) => {
    const match = /^(.*?)\s*<([^>]+)>$/.exec(part);
    return match ? { name: match[1].replace(/^"|"$/g, "") || null, email: match[2].trim() } : { name: null, email: part };
  });
}

function shortDate(iso) {
  const when = new Date(iso);
  const now = new Date();
  return when.toDateString() === now.toDateString()
    ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : when.toLocaleDateString();
}

const byRole = (role) => state.mailboxes.find((m) => m.role === role);
const label = (box) => (box.role === "inbox" ? "Inbox" : box.name);

// --- login -----------------------------------------------------------------

async function start() {
  try {
    state.me = await whoami();
  } catch (error) {
    state.me = null;
  }
  if (state.me) await enter();
  else showLogin();
}

function showLogin() {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-form").elements.username.focus();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  $("login-error").textContent = "";
  try {
    state.me = await login(form.elements.username.value, form.elements.password.value);
    form.reset();
    await enter();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

function signedOut(message) {
  if (state.source) state.source.close();
  Object.assign(state, { me: null, jmap: null, source: null, open: null, emails: [] });
  $("messages").replaceChildren();
  showPane(null);
  showLogin();
  $("login-error").textContent = message;
}

$("signout").addEventListener("click", async () => {
  try { await logout(); } catch (error) { failed(error); }
  signedOut("");
});

whenSessionLost(() => { if (state.me) signedOut("Your session ended: sign in again."); });

async function enter() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = state.me.username;
  state.jmap = await Jmap.open();
  await Promise.all([loadPrefs(), loadIdentities(), loadMailboxes()]);
  state.mailboxId = byRole("inbox")?.id || state.mailboxes[0]?.id;
  await showMailbox(state.mailboxId);
  listen();
}

function listen() {
  state.source = state.jmap.listen(onPush);
  state.source.onreopen = () => { if (state.jmap) listen(); };
  document.body.dataset.live = "connecting";
  state.source.addEventListener("open", () => { document.body.dataset.live = "open"; });
}

// --- live updates ------------------------------------------------------------

let refreshing = null;
function onPush() {
  // Coalesce a burst of changes into one refresh.
  if (refreshing) return;
  refreshing = setTimeout(async () => {
    refreshing = null;
    try {
      await loadMailboxes();
      await loadList();
    } catch (error) { failed(error); }
  }, 100);
}

// --- mailboxes ---------------------------------------------------------------

async function loadMailboxes() {
  const got = await state.jmap.one("Mailbox/get", {
    properties: ["name", "role", "parentId", "sortOrder", "unreadEmails", "totalEmails"],
  });
  state.mailboxes = asTree(got.list);
  renderMailboxes();
}

/** The mailboxes in tree order: each after its parent, siblings by role,
 * sortOrder and name; each with its depth and its path ("Work / 2026"). */
function asTree(list) {
  const rank = (m) => (m.role && ROLE_ORDER.includes(m.role) ? ROLE_ORDER.indexOf(m.role) : 99);
  const order = (a, b) => rank(a) - rank(b) || a.sortOrder - b.sortOrder || a.name.localeCompare(b.name);
  const ids = new Set(list.map((m) => m.id));
  const children = new Map();
  for (const box of list) {
    const parent = box.parentId && ids.has(box.parentId) ? box.parentId : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(box);
  }
  const out = [];
  const visit = (parent, depth, prefix) => {
    for (const box of (children.get(parent) || []).sort(order)) {
      box.depth = depth;
      box.path = prefix + label(box);
      out.push(box);
      visit(box.id, depth + 1, box.path + " / ");
    }
  };
  visit(null, 0, "");
  return out;
}

function renderMailboxes() {
  $("mailboxes").replaceChildren(...state.mailboxes.map((box) => {
    const link = el("a", {
      href: "#", "aria-current": !state.search && box.id === state.mailboxId ? "page" : null,
      onclick: (event) => { event.preventDefault(); showMailbox(box.id).catch(failed); },
    }, el("span", {}, label(box)));
    if (box.unreadEmails) link.append(el("span", { class: "count" }, ` ${box.unreadEmails}`));
    if (box.depth) link.title = box.path;
    return el("li", { class: box.depth ? `depth-${Math.min(box.depth, 4)}` : "" }, link);
  }));
  // A push may redraw this while the user is choosing: keep the choice.
  const target = $("move-target");
  const chosen = target.value;
  target.replaceChildren(...state.mailboxes.map((box) => el("option", { value: box.id }, box.path)));
  if (chosen && state.mailboxes.some((box) => box.id === chosen)) target.value = chosen;
  const bulkChosen = $("bulk-target").value;
  $("bulk-target").replaceChildren(...state.mailboxes.map((box) => el("option", { value: box.id }, box.path)));
  if (bulkChosen && state.mailboxes.some((box) => box.id === bulkChosen)) $("bulk-target").value = bulkChosen;
  renderFolderChoices();
}

async function showMailbox(id) {
  state.mailboxId = id;
  state.search = null;
  freshList();
  $("search").value = "";
  renderMailboxes();
  const box = state.mailboxes.find((m) => m.id === id);
  $("list-title").textContent = box ? box.path : "Messages";
  await loadList();
}

// --- the message list --------------------------------------------------------

function currentFilter() {
  return state.search || { inMailbox: state.mailboxId };
}

/** One slice of the current list: [position, position + limit). */
async function fetchSlice(position, limit) {
  const out = await state.jmap.call([
    ["Email/query", {
      accountId: state.jmap.accountId, filter: currentFilter(),
      sort: [{ property: "receivedAt", isAscending: false }],
      position, limit, calculateTotal: true,
      collapseThreads: state.conversations,
    }, "q"],
    ["Email/get", {
      accountId: state.jmap.accountId, "#ids": { resultOf: "q", name: "Email/query", path: "/ids" },
      properties: ["threadId", "mailboxIds", "keywords", "from", "to", "subject", "preview", "receivedAt", "hasAttachment"],
    }, "g"],
    ...(state.conversations ? [["Thread/get", {
      accountId: state.jmap.accountId, "#ids": { resultOf: "g", name: "Email/get", path: "/list/*/threadId" },
    }, "t"]] : []),
  ]);
  return {
    total: out.q.total ?? out.g.list.length,
    emails: out.g.list,
    sizes: Object.fromEntries((out.t?.list || []).map((t) => [t.id, t.emailIds.length])),
  };
}

/** Load the list again: the window shown (the first page, and what
 * scrolling down added to it) from state.position. */
async function loadList() {
  const started = performance.now();
  // A list scrolled to its end stays whole: what arrived meanwhile is added
  // (up to a page more) rather than pushing the oldest shown out.
  const atEnd = state.emails.length > 0 && state.position + state.emails.length >= state.total;
  const want = Math.max(PAGE, state.emails.length + (atEnd ? PAGE : 0));
  const slice = await fetchSlice(state.position, Math.min(want, WINDOW));
  state.total = slice.total;
  state.emails = slice.emails;
  state.threadSizes = slice.sizes;
  const shown = new Set(state.emails.map((e) => e.id));
  for (const id of state.selected) if (!shown.has(id)) state.selected.delete(id);
  renderList();
  document.body.dataset.listMs = String(Math.round(performance.now() - started));
  if (state.emails.length && endInView()) loadMore();
}

/** Start the list afresh (another mailbox, search or grouping): one page. */
function freshList() {
  state.position = 0;
  state.emails = [];
  state.selected.clear();
}

// Infinite scroll: when the end of the list comes into view, the next page
// is added to it, up to WINDOW items; past that, "Older" moves on.
let loadingMore = false;
async function loadMore() {
  const next = state.position + state.emails.length;
  if (loadingMore || !state.jmap || next >= state.total || state.emails.length >= WINDOW) return;
  loadingMore = true;
  try {
    const slice = await fetchSlice(next, PAGE);
    const have = new Set(state.emails.map((e) => e.id));
    state.emails.push(...slice.emails.filter((e) => !have.has(e.id)));
    Object.assign(state.threadSizes, slice.sizes);
    state.total = slice.total;
    renderList();
  } catch (error) { failed(error); return; } finally { loadingMore = false; }
  // Still at the end (a tall screen): the observer will not say so again.
  if (endInView()) loadMore();
}

function endInView() {
  const end = $("more").getBoundingClientRect().top;
  return end < window.innerHeight && end <= $("list-pane").getBoundingClientRect().bottom;
}
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && state.emails.length) loadMore();
}).observe($("more"));

function renderList() {
  const items = state.emails.map((email) => {
    const unread = !email.keywords.$seen;
    const flagged = email.keywords.$flagged;
    const sender = who(email.from) || "(no sender)";
    const marks = `${flagged ? "★ " : ""}${email.hasAttachment ? "📎 " : ""}`;
    const size = state.conversations ? state.threadSizes[email.threadId] || 1 : 1;
    const button = el("button", { type: "button", onclick: () => openEmail(email.id).catch(failed) },
      el("span", { class: "from" }, `${marks}${sender}${size > 1 ? ` (${size})` : ""}`),
      el("span", { class: "date" }, shortDate(email.receivedAt)),
      el("span", { class: "subject" }, email.subject || "(no subject)"),
      el("span", { class: "preview" }, email.preview || ""));
    const pick = el("input", {
      type: "checkbox", "aria-label": `Select: ${email.subject || "(no subject)"}`,
      onchange: (event) => { if (event.target.checked) state.selected.add(email.id); else state.selected.delete(email.id); renderBulk(); },
    });
    pick.checked = state.selected.has(email.id);
    const item = el("li", { class: unread ? "unread" : "", "aria-current": state.open?.id === email.id ? "true" : null }, pick, button);
    if (unread) button.setAttribute("aria-description", "unread");
    return item;
  });
  $("messages").replaceChildren(...items);
  const last = Math.min(state.position + state.emails.length, state.total);
  $("range").textContent = state.total ? `${state.position + 1}–${last} of ${state.total}` : "No messages";
  $("newer").disabled = state.position === 0;
  $("older").disabled = last >= state.total;
  renderBulk();
}

// --- a selection, and what can be done to it ---------------------------------

function renderBulk() {
  const count = state.selected.size;
  $("bulk").hidden = count === 0;
  $("bulk-count").textContent = `${count} selected`;
  const inJunk = !state.search && state.mailboxId === byRole("junk")?.id;
  document.querySelector('[data-bulk="junk"]').hidden = inJunk;
  document.querySelector('[data-bulk="notjunk"]').hidden = !inJunk;
  const all = $("select-all");
  all.checked = count > 0 && count === state.emails.length;
  all.indeterminate = count > 0 && count < state.emails.length;
}

$("select-all").addEventListener("change", (event) => {
  state.selected = new Set(event.target.checked ? state.emails.map((e) => e.id) : []);
  renderList();
});

/** The ids the chosen list items stand for: in conversation view, every
 * message of each chosen conversation. */
async function expandThreads(emailIds) {
  if (!state.conversations) return emailIds;
  const threadIds = [...new Set(state.emails.filter((e) => emailIds.includes(e.id)).map((e) => e.threadId))];
  if (!threadIds.length) return emailIds;
  const got = await state.jmap.one("Thread/get", { ids: threadIds });
  return [...new Set(got.list.flatMap((t) => t.emailIds))];
}

/** Do one of the message actions to some emails; the status line says what was done. */
async function act(ids, action, target = null) {
  const junkBox = byRole("junk");
  const inbox = byRole("inbox");
  const trash = byRole("trash");
  const move = (box, more = {}) => ({ mailboxIds: { [box.id]: true }, ...more });
  let patch;
  let said;
  switch (action) {
    case "read": patch = { "keywords/$seen": true }; said = "Marked read."; break;
    case "unread": patch = { "keywords/$seen": null }; said = "Marked unread."; break;
    case "flag": patch = { "keywords/$flagged": true }; said = "Flagged."; break;
    case "unflag": patch = { "keywords/$flagged": null }; said = "Flag removed."; break;
    case "archive":
      if (!byRole("archive")) throw new Error("there is no Archive mailbox");
      patch = move(byRole("archive")); said = "Moved to Archive."; break;
    case "junk":
      if (!junkBox) throw new Error("there is no Junk mailbox");
      patch = move(junkBox, { "keywords/$junk": true, "keywords/$notjunk": null }); said = "Moved to Junk."; break;
    case "notjunk":
      patch = move(inbox, { "keywords/$junk": null, "keywords/$notjunk": true }); said = "Moved to Inbox."; break;
    case "move": {
      const box = state.mailboxes.find((m) => m.id === target);
      patch = move(box); said = `Moved to ${box.path}.`; break;
    }
    case "delete": {
      const single = ids.length === 1 && state.open?.id === ids[0];
      const inTrash = Boolean(trash) && (single ? Boolean(state.open.mailboxIds[trash.id]) : !state.search && state.mailboxId === trash.id);
      if (trash && !inTrash) { patch = move(trash); said = "Moved to Trash."; break; }
      await checked(await state.jmap.one("Email/set", { destroy: ids }), ids, "destroyed");
      return "Deleted for good.";
    }
    default: throw new Error(`no such action: ${action}`);
  }
  const update = Object.fromEntries(ids.map((id) => [id, patch]));
  await checked(await state.jmap.one("Email/set", { update }), ids, "updated");
  return said;
}

async function checked(out, ids, what) {
  const failures = out[`not${what[0].toUpperCase()}${what.slice(1)}`] || {};
  const first = Object.values(failures)[0];
  if (first) throw new Error(first.description || first.type);
  return ids;
}

for (const button of document.querySelectorAll("[data-bulk]")) {
  button.addEventListener("click", async () => {
    const chosen = [...state.selected];
    if (!chosen.length) return;
    try {
      const ids = await expandThreads(chosen);
      const said = await act(ids, button.dataset.bulk, $("bulk-target").value);
      const n = ids.length;
      status(`${said.replace(/\.$/, "")}: ${n} message${n === 1 ? "" : "s"}.`);
      state.selected.clear();
      if (state.open && ids.includes(state.open.id) && button.dataset.bulk !== "read" && button.dataset.bulk !== "flag") {
        state.open = null;
        $("reader").hidden = true;
      }
      await loadMailboxes();
      await loadList();
      $("list-title").focus();
    } catch (error) { failed(error); }
  });
}

$("newer").addEventListener("click", () => {
  state.position = Math.max(0, state.position - PAGE);
  state.emails = [];
  loadList().catch(failed);
});
$("older").addEventListener("click", () => {
  state.position += Math.max(PAGE, state.emails.length);
  state.emails = [];
  loadList().catch(failed);
});

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.search = parseSearch($("search").value, state.mailboxes);
  freshList();
  $("list-title").textContent = state.search ? "Search results" : "Inbox";
  if (!state.search) state.mailboxId = byRole("inbox")?.id;
  renderMailboxes();
  loadList().catch(failed);
});

// --- reading -----------------------------------------------------------------

async function openEmail(id) {
  const email = (await state.jmap.one("Email/get", {
    ids: [id],
    properties: ["threadId", "mailboxIds", "keywords", "from", "to", "cc", "replyTo", "subject",
      "sentAt", "receivedAt", "messageId", "inReplyTo", "references", "attachments", "textBody", "bodyValues"],
    fetchTextBodyValues: true, maxBodyValueBytes: 256 * 1024,
  })).list[0];
  if (!email) { status("That message is gone."); return; }
  state.open = email;
  showPane("reader");
  $("explain-panel").hidden = true;
  $("explain").setAttribute("aria-expanded", "false");
  $("move-box").hidden = true;
  $("r-subject").textContent = email.subject || "(no subject)";
  $("r-meta").textContent = `From ${whoFull(email.from)} to ${whoFull(email.to)}${email.cc?.length ? ", cc " + whoFull(email.cc) : ""} — ${new Date(email.sentAt || email.receivedAt).toLocaleString()}`;
  const trusted = imagesAllowedFrom(email);
  $("r-body").src = `/webmail/message/${encodeURIComponent(id)}/body${trusted ? "?images=1" : ""}`;
  $("r-attachments").replaceChildren(...(email.attachments || []).map((part) => el("li", {},
    el("a", { href: state.jmap.downloadUrl(part.blobId, part.name, part.type), download: part.name || "attachment" },
      `${part.name || "attachment"} (${Math.ceil(part.size / 1024)} KB)`))));
  renderList();
  $("flag").setAttribute("aria-pressed", String(Boolean(email.keywords.$flagged)));
  const inJunk = Boolean(byRole("junk") && email.mailboxIds[byRole("junk").id]);
  $("junk").hidden = inJunk;
  $("notjunk").hidden = !inJunk;
  const info = await (await fetch(`/webmail/message/${encodeURIComponent(id)}`, { credentials: "same-origin" })).json();
  $("r-images").hidden = trusted || !info.blockedImages;
  if (!email.keywords.$seen) {
    await state.jmap.one("Email/set", { update: { [id]: { "keywords/$seen": true } } });
  }
  await showThread(email);
}

// Conversation view: the open message's whole thread, oldest first, each
// body in its own sandboxed frame.
async function showThread(email) {
  const section = $("thread");
  $("r-body").hidden = false;
  if (!state.conversations) { section.hidden = true; return; }
  const out = await state.jmap.call([
    ["Thread/get", { accountId: state.jmap.accountId, ids: [email.threadId] }, "t"],
    ["Email/get", {
      accountId: state.jmap.accountId, "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" },
      properties: ["from", "receivedAt", "keywords", "subject"],
    }, "g"],
  ]);
  const others = out.g.list;
  if (others.length < 2) { section.hidden = true; return; }
  const unread = others.filter((e) => !e.keywords.$seen).map((e) => e.id);
  if (unread.length) {
    await state.jmap.one("Email/set", { update: Object.fromEntries(unread.map((i) => [i, { "keywords/$seen": true }])) });
  }
  $("thread-list").replaceChildren(...others.map((one) => {
    const sender = who(one.from) || "(no sender)";
    const when = new Date(one.receivedAt).toLocaleString();
    return el("li", { "aria-current": one.id === email.id ? "true" : null },
      el("button", { type: "button", onclick: () => openEmail(one.id).catch(failed) }, `${sender}, ${when}`),
      el("iframe", { sandbox: "", title: `Message from ${sender}, ${when}`, referrerpolicy: "no-referrer",
        src: `/webmail/message/${encodeURIComponent(one.id)}/body` }));
  }));
  section.hidden = false;
  $("r-body").hidden = true; // each message of the thread has its own frame
}

$("conversations").addEventListener("change", (event) => {
  state.conversations = event.target.checked;
  freshList();
  saveSettings({ conversations: state.conversations });
  loadList().catch(failed);
});

// Senders whose remote images load without asking, kept in this browser only.
const TRUSTED = "mailstack.images-from";
function trustedSenders() {
  try { return new Set(JSON.parse(localStorage.getItem(TRUSTED) || "[]")); } catch { return new Set(); }
}
function imagesAllowedFrom(email) {
  const sender = email.from?.[0]?.email?.toLowerCase();
  return Boolean(sender) && trustedSenders().has(sender);
}
$("trust-sender").addEventListener("click", () => {
  const sender = state.open.from?.[0]?.email?.toLowerCase();
  if (sender) {
    const senders = trustedSenders();
    senders.add(sender);
    localStorage.setItem(TRUSTED, JSON.stringify([...senders]));
  }
  $("show-images").click();
});

$("show-images").addEventListener("click", () => {
  $("r-body").src = `/webmail/message/${encodeURIComponent(state.open.id)}/body?images=1`;
  $("r-images").hidden = true;
});

async function moveOpen(mailboxId) {
  closeReader(await act([state.open.id], "move", mailboxId));
}

function closeReader(message) {
  state.open = null;
  $("reader").hidden = true;
  status(message);
  $("list-title").setAttribute("tabindex", "-1");
  $("list-title").focus(); // not left in a hidden toolbar
  loadMailboxes().then(loadList).catch(failed);
}

async function actOnOpen(action) {
  try {
    closeReader(await act([state.open.id], action));
  } catch (error) { failed(error); }
}

$("archive").addEventListener("click", () => actOnOpen("archive"));
$("delete").addEventListener("click", () => actOnOpen("delete"));
$("junk").addEventListener("click", () => actOnOpen("junk"));
$("notjunk").addEventListener("click", () => actOnOpen("notjunk"));

$("move").addEventListener("click", () => {
  const box = $("move-box");
  box.hidden = !box.hidden;
  $("move").setAttribute("aria-expanded", String(!box.hidden));
  if (!box.hidden) $("move-target").focus();
});
$("move-go").addEventListener("click", () => moveOpen($("move-target").value).catch(failed));

$("flag").addEventListener("click", async () => {
  const flagged = !state.open.keywords.$flagged;
  try {
    await state.jmap.one("Email/set", { update: { [state.open.id]: { "keywords/$flagged": flagged || null } } });
    state.open.keywords.$flagged = flagged;
    $("flag").setAttribute("aria-pressed", String(flagged));
    status(flagged ? "Flagged." : "Flag removed.");
  } catch (error) { failed(error); }
});

$("unread").addEventListener("click", async () => {
  try {
    await state.jmap.one("Email/set", { update: { [state.open.id]: { "keywords/$seen": null } } });
    closeReader("Marked unread.");
  } catch (error) { failed(error); }
});

// --- keyboard shortcuts (Gmail's): c r a f e # / j k ---------------------------

function openByOffset(step) {
  const at = state.emails.findIndex((email) => email.id === state.open?.id);
  const next = state.emails[at === -1 ? 0 : at + step];
  if (next) openEmail(next.id).then(() => {
    document.querySelector('#messages li[aria-current="true"] button')?.focus();
  }).catch(failed);
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || $("app").hidden) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) {
    if (event.key === "Escape" && !$("composer").hidden) $("discard").click();
    return;
  }
  const reading = !$("reader").hidden && state.open;
  const actions = {
    c: () => $("compose").click(),
    "/": () => $("search").focus(),
    j: () => openByOffset(1),
    k: () => openByOffset(-1),
    r: reading && (() => $("reply").click()),
    a: reading && (() => $("reply-all").click()),
    f: reading && (() => $("forward").click()),
    e: reading && (() => $("archive").click()),
    "#": reading && (() => $("delete").click()),
  };
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
});

// --- preferences: theme and conversations (the node keeps them), identities ---

function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

async function loadPrefs() {
  state.prefs = await getJson("/webmail/settings");
  state.conversations = Boolean(state.prefs.conversations);
  $("conversations").checked = state.conversations;
  applyTheme(state.prefs.theme);
}

function saveSettings(change) {
  return postJson("/webmail/settings", change).then((prefs) => { state.prefs = prefs; }).catch(failed);
}

async function loadIdentities() {
  const list = (await state.jmap.one("Identity/get", {})).list;
  const me = state.me.username.toLowerCase();
  // The account's own identity first: it is the default From.
  const rank = (i) => (i.email.toLowerCase() === me && !i.mayDelete ? 0 : 1);
  state.identities = list.sort((a, b) => rank(a) - rank(b) || a.email.localeCompare(b.email));
  const text = (i) => (i.name ? `${i.name} <${i.email}>` : i.email);
  for (const select of [$("compose-form").elements.from, $("prefs-form").elements.identity]) {
    const chosen = select.value;
    select.replaceChildren(...state.identities.map((i) => el("option", { value: i.id }, text(i))));
    if (state.identities.some((i) => i.id === chosen)) select.value = chosen;
  }
}

const identity = (id) => state.identities.find((i) => i.id === id) || state.identities[0];

function fillPrefs() {
  const form = $("prefs-form");
  const chosen = identity(form.elements.identity.value);
  form.elements.name.value = chosen?.name || "";
  form.elements.signature.value = chosen?.textSignature || "";
  form.elements.theme.value = state.prefs.theme || "auto";
}

$("prefs-form").elements.identity.addEventListener("change", fillPrefs);

$("prefs-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const chosen = identity(form.elements.identity.value);
  try {
    const out = await state.jmap.one("Identity/set", { update: { [chosen.id]: {
      name: form.elements.name.value.trim(), textSignature: form.elements.signature.value,
    } } });
    const refused = out.notUpdated?.[chosen.id];
    if (refused) throw new Error(refused.description || refused.type);
    state.prefs = await postJson("/webmail/settings", { theme: form.elements.theme.value });
    applyTheme(state.prefs.theme);
    await loadIdentities();
    status("Preferences saved.");
  } catch (error) { failed(error); }
});

// --- settings: the addresses one sends as (RFC 8621 §6 Identity/set) ----------

$("identity-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const email = form.elements.email.value.trim();
  try {
    // The server says whether this account may send as it (an address or
    // alias of its own): forbiddenFrom otherwise.
    const out = await state.jmap.one("Identity/set", { create: { i: { email, name: form.elements.name.value.trim() } } });
    const refused = out.notCreated?.i;
    if (refused) throw new Error(refused.description || refused.type);
    form.reset();
    await loadIdentities();
    status(`You can now send as ${email}.`);
  } catch (error) { failed(error); }
});

$("remove-identity").addEventListener("click", async () => {
  const chosen = identity($("prefs-form").elements.identity.value);
  if (!chosen) return;
  if (!chosen.mayDelete) { status(`${chosen.email} is the account's own address: it stays.`); return; }
  try {
    const out = await state.jmap.one("Identity/set", { destroy: [chosen.id] });
    const refused = out.notDestroyed?.[chosen.id];
    if (refused) throw new Error(refused.description || refused.type);
    await loadIdentities();
    fillPrefs();
    status(`You no longer send as ${chosen.email}.`);
  } catch (error) { failed(error); }
});

// --- settings: the vacation responder (RFC 8621 §8) ---------------------------

function showPane(id) {
  for (const pane of ["reader", "composer", "settings-pane"]) $(pane).hidden = pane !== id;
}

$("settings").addEventListener("click", async () => {
  try {
    const [vacation] = (await state.jmap.one("VacationResponse/get", { ids: ["singleton"] })).list;
    const form = $("vacation-form");
    form.elements.enabled.checked = Boolean(vacation?.isEnabled);
    form.elements.from.value = vacation?.fromDate?.slice(0, 10) || "";
    form.elements.to.value = vacation?.toDate?.slice(0, 10) || "";
    form.elements.subject.value = vacation?.subject || "";
    form.elements.body.value = vacation?.textBody || "";
    await loadIdentities();
    fillPrefs();
    showPane("settings-pane");
    form.elements.enabled.focus();
  } catch (error) { failed(error); }
});

$("vacation-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const day = (value) => (value ? `${value}T00:00:00Z` : null);
  try {
    const out = await state.jmap.one("VacationResponse/set", { update: { singleton: {
      isEnabled: form.elements.enabled.checked,
      fromDate: day(form.elements.from.value), toDate: day(form.elements.to.value),
      subject: form.elements.subject.value || null, textBody: form.elements.body.value || null,
    } } });
    if (out.notUpdated?.singleton) throw new Error(out.notUpdated.singleton.description || out.notUpdated.singleton.type);
    status(form.elements.enabled.checked ? "Vacation responder on." : "Vacation responder off.");
  } catch (error) { failed(error); }
});

// --- folders: made and removed with Mailbox/set -------------------------------

function renderFolderChoices() {
  const mine = state.mailboxes.filter((box) => !box.role);
  const form = $("folder-form");
  const chosen = form.elements.victim.value;
  form.elements.victim.replaceChildren(
    ...mine.map((box) => el("option", { value: box.id }, box.path)));
  if (chosen && mine.some((box) => box.id === chosen)) form.elements.victim.value = chosen;
  const parent = form.elements.parent.value;
  form.elements.parent.replaceChildren(
    el("option", { value: "" }, "(top level)"),
    ...state.mailboxes.map((box) => el("option", { value: box.id }, box.path)));
  if (parent && state.mailboxes.some((box) => box.id === parent)) form.elements.parent.value = parent;
  $("delete-folder").disabled = mine.length === 0;
  $("rename-folder").disabled = mine.length === 0;
}

$("folder-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = event.target.elements.name.value.trim();
  const parentId = event.target.elements.parent.value || null;
  try {
    const out = await state.jmap.one("Mailbox/set", { create: { box: { name, parentId } } });
    if (!out.created?.box) throw new Error(out.notCreated?.box?.description || "the folder was not made");
    event.target.elements.name.value = "";
    await loadMailboxes();
    const made = state.mailboxes.find((box) => box.id === out.created.box.id);
    status(`Folder ${made ? made.path : name} created.`);
  } catch (error) { failed(error); }
});

$("rename-folder").addEventListener("click", async () => {
  const form = $("folder-form");
  const box = state.mailboxes.find((m) => m.id === form.elements.victim.value);
  const name = form.elements.rename.value.trim();
  if (!box || !name) { status("Choose a folder and give its new name."); return; }
  try {
    const out = await state.jmap.one("Mailbox/set", { update: { [box.id]: { name } } });
    if (out.notUpdated?.[box.id]) throw new Error(out.notUpdated[box.id].description || out.notUpdated[box.id].type);
    form.elements.rename.value = "";
    await loadMailboxes();
    if (state.mailboxId === box.id) $("list-title").textContent = name;
    status(`Folder ${box.name} renamed ${name}.`);
  } catch (error) { failed(error); }
});

$("delete-folder").addEventListener("click", async () => {
  const select = $("folder-form").elements.victim;
  const box = state.mailboxes.find((m) => m.id === select.value);
  if (!box) return;
  if (!window.confirm(`Delete the folder ${box.name} and the ${box.totalEmails} messages in it?`)) return;
  try {
    const out = await state.jmap.one("Mailbox/set", { destroy: [box.id], onDestroyRemoveEmails: true });
    if (!out.destroyed?.includes(box.id)) throw new Error(out.notDestroyed?.[box.id]?.description || "the folder was not deleted");
    if (state.mailboxId === box.id) state.mailboxId = byRole("inbox")?.id;
    await loadMailboxes();
    status(`Folder ${box.name} deleted.`);
  } catch (error) { failed(error); }
});

// --- explain this message ----------------------------------------------------

$("explain").addEventListener("click", async () => {
  const panel = $("explain-panel");
  if (!panel.hidden) {
    panel.hidden = true;
    $("explain").setAttribute("aria-expanded", "false");
    return;
  }
  try {
    const response = await fetch(`/webmail/message/${encodeURIComponent(state.open.id)}/explain`, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const found = await response.json();
    const path = found.hops.length
      ? el("ol", {}, ...found.hops.map((hop) => el("li", { class: hop.tls ? "tls" : "plain" }, hop.sentence)))
      : el("p", {}, "The message does not say how it travelled.");
    const checks = found.checks.length
      ? el("ul", {}, ...found.checks.map((check) => el("li", {}, check.sentence)))
      : el("p", {}, "This server recorded no SPF, DKIM or DMARC result for it.");
    const total = found.totalDelay === null ? null
      : el("p", {}, `From the first hop to the last: ${found.totalDelay < 1 ? "under a second" : `${Math.round(found.totalDelay)} s`}.`);
    panel.replaceChildren(...[
      el("h3", {}, "How this message reached you"), path, total,
      el("h3", {}, "Who vouches for the sender"), checks].filter(Boolean));
    panel.hidden = false;
    $("explain").setAttribute("aria-expanded", "true");
  } catch (error) { failed(error); }
});

// --- compose -----------------------------------------------------------------

function quote(email) {
  const text = (email.textBody || []).map((p) => email.bodyValues?.[p.partId]?.value || "").join("\n");
  return text.split("\n").map((line) => `> ${line}`).join("\n");
}

function signature(identityId) {
  const text = identity(identityId)?.textSignature;
  return text ? `\n\n-- \n${text}` : "";
}

const editor = new RichEditor({
  toggle: $("rich-toggle"), toolbar: $("format"), box: $("rich"), plain: $("compose-form").elements.body,
});

const lookup = async (text) => (await getJson(`/webmail/contacts?q=${encodeURIComponent(text)}`)).contacts;
autocomplete($("compose-form").elements.to, $("suggest-to"), lookup);
autocomplete($("compose-form").elements.cc, $("suggest-cc"), lookup);

function renderAttached() {
  const names = [...(state.reply?.attachments || []).map((a) => a.name || "attachment"),
    ...[...$("compose-form").elements.files.files].map((f) => f.name)];
  $("attached").replaceChildren(...names.map((name) => el("li", {}, name)));
}
dropFiles($("composer"), $("compose-form").elements.files, renderAttached);

function openComposer({ to = "", cc = "", subject = "", body = "", reply = null } = {}) {
  const form = $("compose-form");
  editor.reset();
  form.reset();
  form.elements.from.value = state.identities[0]?.id || "";
  form.elements.to.value = to;
  form.elements.cc.value = cc;
  form.elements.subject.value = subject;
  form.elements.body.value = signature(form.elements.from.value) + body;
  form.dataset.identity = form.elements.from.value;
  state.reply = reply;
  state.draftId = null;
  uploaded = new Map();
  renderAttached();
  clearTimeout(autosave);
  showPane("composer");
  (to ? form.elements.body : form.elements.to).focus();
}

$("compose").addEventListener("click", () => openComposer());

// Another From: its signature replaces the one before.
$("compose-form").elements.from.addEventListener("change", (event) => {
  const form = $("compose-form");
  const before = signature(form.dataset.identity);
  const after = signature(event.target.value);
  const body = form.elements.body;
  if (before && body.value.includes(before)) body.value = body.value.replace(before, after);
  else if (after) body.value = after + body.value;
  form.dataset.identity = event.target.value;
});

function prefixed(prefix, subject) {
  subject = subject || "";
  return subject.toLowerCase().startsWith(prefix.toLowerCase()) ? subject : `${prefix} ${subject}`;
}

function replyTo(all) {
  const email = state.open;
  const me = state.me.username.toLowerCase();
  const to = email.replyTo?.length ? email.replyTo : email.from;
  const others = all ? [...(email.to || []), ...(email.cc || [])].filter((a) => a.email.toLowerCase() !== me
    && !to.some((t) => t.email.toLowerCase() === a.email.toLowerCase())) : [];
  const refs = [...(email.references || []), ...(email.messageId || [])];
  openComposer({
    to: whoFull(to), cc: whoFull(others), subject: prefixed("Re:", email.subject),
    body: `\n\nOn ${new Date(email.sentAt || email.receivedAt).toLocaleString()}, ${who(email.from)} wrote:\n${quote(email)}\n`,
    reply: { inReplyTo: email.messageId || null, references: refs.length ? refs : null, attachments: [] },
  });
}

$("reply").addEventListener("click", () => replyTo(false));
$("reply-all").addEventListener("click", () => replyTo(true));
$("forward").addEventListener("click", () => {
  const email = state.open;
  const head = [`From: ${whoFull(email.from)}`, `Date: ${email.sentAt || email.receivedAt}`,
    `Subject: ${email.subject || ""}`, `To: ${whoFull(email.to)}`].join("\n");
  openComposer({
    subject: prefixed("Fwd:", email.subject),
    body: `\n\n---------- Forwarded message ----------\n${head}\n\n${quote(email)}\n`,
    reply: { inReplyTo: null, references: email.messageId || null,
      attachments: (email.attachments || []).map((p) => ({ blobId: p.blobId, type: p.type, name: p.name, disposition: "attachment" })) },
  });
});

$("discard").addEventListener("click", () => {
  clearTimeout(autosave);
  editor.reset();
  $("composer").hidden = true;
  $("compose").focus(); // focus goes back where composing began, not into a hidden field
});

// Files uploaded once per composer, however often the draft is saved.
let uploaded = new Map();

async function draft(form) {
  const attachments = [...(state.reply?.attachments || [])];
  for (const file of form.elements.files.files) {
    if (!uploaded.has(file)) {
      status(`Uploading ${file.name}…`);
      uploaded.set(file, await state.jmap.upload(file));
    }
    const blob = uploaded.get(file);
    attachments.push({ blobId: blob.blobId, type: blob.type || file.type || "application/octet-stream", name: file.name, disposition: "attachment" });
  }
  const email = {
    mailboxIds: { [byRole("drafts").id]: true },
    keywords: { $draft: true, $seen: true },
    from: [fromOf(form)],
    to: parseAddresses(form.elements.to.value),
    subject: form.elements.subject.value,
    textBody: [{ partId: "body", type: "text/plain" }],
    bodyValues: { body: { value: form.elements.body.value } },
  };
  if (editor.on) {
    // Rich text: multipart/alternative, the HTML cleaned by the node first.
    const { html } = await postJson("/webmail/sanitize", { html: editor.html() });
    email.htmlBody = [{ partId: "html", type: "text/html" }];
    email.bodyValues = { body: { value: editor.text() }, html: { value: html } };
  }
  const cc = parseAddresses(form.elements.cc.value);
  if (cc.length) email.cc = cc;
  if (attachments.length) email.attachments = attachments;
  if (state.reply?.inReplyTo) email.inReplyTo = state.reply.inReplyTo;
  if (state.reply?.references) email.references = state.reply.references;
  return email;
}

function fromOf(form) {
  const chosen = identity(form.elements.from.value);
  if (!chosen) return { name: null, email: state.me.username };
  return { name: chosen.name || null, email: chosen.email };
}

// Saves run one after another, so a draft is never replaced twice at once.
let saving = Promise.resolve();
function queueSave(form) {
  const next = saving.then(() => saveDraft(form));
  saving = next.catch(() => {});
  return next;
}

// Draft autosave: a few seconds after the last keystroke.
let autosave = null;
$("compose-form").addEventListener("input", () => {
  clearTimeout(autosave);
  autosave = setTimeout(() => {
    if ($("composer").hidden) return;
    queueSave($("compose-form")).then(() => status("Draft saved automatically.")).catch(failed);
  }, 3000);
});

async function saveDraft(form) {
  const email = await draft(form);
  const args = { accountId: state.jmap.accountId, create: { draft: email } };
  if (state.draftId) args.destroy = [state.draftId];
  const out = await state.jmap.call([["Email/set", args, "s"]]);
  const made = out.s.created?.draft;
  if (!made) throw new Error(`the draft was not saved: ${JSON.stringify(out.s.notCreated?.draft)}`);
  state.draftId = made.id;
  return made.id;
}

$("save-draft").addEventListener("click", async () => {
  try {
    clearTimeout(autosave);
    await queueSave($("compose-form"));
    status("Draft saved.");
  } catch (error) { failed(error); }
});

$("compose-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  if (!parseAddresses(form.elements.to.value).length) { status("Say who the message is to."); return; }
  try {
    const sender = identity(form.elements.from.value);
    clearTimeout(autosave);
    const emailId = await queueSave(form);
    const drafts = byRole("drafts").id;
    const sent = byRole("sent");
    const update = { "keywords/$draft": null };
    if (sent) Object.assign(update, { [`mailboxIds/${drafts}`]: null, [`mailboxIds/${sent.id}`]: true });
    const out = await state.jmap.call([["EmailSubmission/set", {
      accountId: state.jmap.accountId,
      create: { send: { identityId: sender.id, emailId } },
      onSuccessUpdateEmail: { "#send": update },
    }, "x"]]);
    if (!out.x.created?.send) throw new Error(`not sent: ${JSON.stringify(out.x.notCreated?.send)}`);
    $("composer").hidden = true;
    state.draftId = null;
    status("Message sent.");
  } catch (error) { failed(error); }
});

start();
