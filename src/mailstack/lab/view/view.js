// The lab's live view: the topology as the lectures draw it, and every
// exchange between the lab's hosts as a sequence diagram, as it happens.
// The server (lab/view.py) sends each arrow as a Server-Sent Event; this
// module only keeps them in order and draws them. Trace text is untrusted:
// it is only ever set as textContent or an attribute, never parsed as HTML.

const SVG = "http://www.w3.org/2000/svg";
const LANE = 150; // px between lifelines
const ROW = 24; // px between arrows
const HEAD = 34; // px of the lanes' heads
const TOP = 16; // px above the first arrow
const LABEL = 72; // characters of a summary shown on its arrow
const FAMILIES = ["dns", "smtp", "mbox", "http", "other"];
const SHOWN = 2000; // arrows drawn at most

const view = {
  lab: null,
  items: [], // arrows and scenario marks, in time order
  seen: new Set(),
  clearedAfter: 0, // ids up to this one were cleared away
  selected: null,
  drawn: false,
};

function svg(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (parent) parent.append(node);
  return node;
}

function family(protocol) {
  if (protocol.startsWith("dns")) return "dns";
  if (protocol.startsWith("smtp") || protocol.startsWith("submission")) return "smtp";
  if (protocol.startsWith("pop3") || protocol.startsWith("imap")) return "mbox";
  if (protocol.startsWith("http")) return "http";
  return "other";
}

function level(host) {
  const levels = view.lab.levels;
  return Math.min(...host.roles.map((role) => levels.indexOf(role)));
}

// -- the topology ----------------------------------------------------------------

function drawTopology() {
  const picture = document.getElementById("topology");
  picture.replaceChildren();
  const rows = new Map();
  for (const host of view.lab.hosts) {
    const row = level(host);
    if (!rows.has(row)) rows.set(row, []);
    rows.get(row).push(host);
  }
  const ordered = [...rows.keys()].sort((a, b) => a - b);
  const widest = Math.max(...[...rows.values()].map((hosts) => hosts.length));
  const width = Math.max(widest * 160, 800);
  const height = ordered.length * 46 + 10;
  picture.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const where = new Map();
  ordered.forEach((row, r) => {
    const hosts = rows.get(row);
    hosts.forEach((host, i) => {
      where.set(host.name, { x: ((i + 0.5) * width) / hosts.length, y: 24 + r * 46 });
    });
  });
  const lines = svg("g", {}, picture);
  for (const link of view.lab.links) {
    const a = where.get(link.from);
    const b = where.get(link.to);
    if (!a || !b) continue;
    svg("line", { class: `link ${link.kind}`, x1: a.x, y1: a.y, x2: b.x, y2: b.y }, lines);
  }
  for (const host of view.lab.hosts) {
    const at = where.get(host.name);
    const roles = host.roles.join(", ");
    const node = svg("g", { class: `node ${host.roles.join(" ")}`, "data-host": host.name }, picture);
    svg("title", {}, node).textContent = `${host.name} (${host.address}): ${roles}`;
    svg("rect", { x: at.x - 74, y: at.y - 16, width: 148, height: 32, rx: 5 }, node);
    svg("text", { x: at.x, y: at.y - 2 }, node).textContent = host.name;
    svg("text", { class: "role", x: at.x, y: at.y + 11 }, node).textContent =
      `${host.address} · ${roles}`;
  }
}

function highlight(names) {
  for (const node of document.querySelectorAll("#topology .node")) {
    node.classList.toggle("active", names.includes(node.dataset.host));
  }
}

// -- the sequence diagram -----------------------------------------------------------

function lanes(items) {
  const order = new Map(view.lab.hosts.map((host, i) => [host.name, [level(host), i]]));
  // The resolver role is drawn beside its clients, as in the lectures' figures.
  const rank = (name) => {
    const host = view.lab.hosts.find((h) => h.name === name);
    if (!host) return [-2, 0];
    if (host.roles.includes("client")) return [-1, order.get(name)[1]];
    if (host.roles.includes("resolver")) return [-0.5, order.get(name)[1]];
    return order.get(name);
  };
  const names = new Set();
  for (const item of items) {
    if (item.from) names.add(item.from);
    if (item.to) names.add(item.to);
  }
  return [...names].sort((a, b) => {
    const [ra, ia] = rank(a);
    const [rb, ib] = rank(b);
    return ra - rb || ia - ib || a.localeCompare(b);
  });
}

function shorten(text) {
  const line = text.split("\n")[0];
  return line.length > LABEL ? `${line.slice(0, LABEL - 1)}…` : line;
}

function numbered(items) {
  // DNS messages are numbered as in the lectures' figures, from 1 at the
  // start of each scenario.
  let step = 0;
  return items.map((item) => {
    if (!item.from) {
      if (item.summary === "started") step = 0;
      return { item, step: null };
    }
    if (family(item.protocol) === "dns") {
      step += 1;
      return { item, step };
    }
    return { item, step: null };
  });
}

function describe(entry) {
  const { item, step } = entry;
  const prefix = step === null ? "" : `${step}. `;
  return `${prefix}${item.from} to ${item.to}, ${item.protocol}: ${shorten(item.summary)}`;
}

function drawSequence() {
  // The latest SHOWN at most: a long session stays quick to draw.
  const items = view.items.filter((item) => item.id > view.clearedAfter).slice(-SHOWN);
  const names = lanes(items);
  const x = new Map(names.map((name, i) => [name, LANE / 2 + i * LANE]));
  const picture = document.getElementById("sequence");
  const heads = document.getElementById("lanes");
  picture.replaceChildren();
  heads.replaceChildren();
  const width = Math.max(names.length * LANE, 400);
  const height = TOP + items.length * ROW + 20;
  for (const [node, tall] of [[picture, height], [heads, HEAD]]) {
    node.setAttribute("width", width);
    node.setAttribute("height", tall);
    node.setAttribute("viewBox", `0 0 ${width} ${tall}`);
  }
  const defs = svg("defs", {}, picture);
  for (const name of FAMILIES) {
    const marker = svg(
      "marker",
      { id: `head-${name}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      defs,
    );
    svg("path", { d: "M0,0 L10,5 L0,10 z" }, marker);
  }
  for (const name of names) {
    const head = svg("g", { class: "lane-head" }, heads);
    svg("rect", { x: x.get(name) - LANE / 2 + 6, y: 5, width: LANE - 12, height: 24, rx: 4 }, head);
    svg("text", { x: x.get(name), y: 21 }, head).textContent = name;
    svg("line", { class: "lifeline", x1: x.get(name), y1: 0, x2: x.get(name), y2: height }, picture);
  }
  const list = svg("g", { role: "list", "aria-label": "exchanges" }, picture);
  numbered(items).forEach((entry, i) => {
    const { item } = entry;
    const y = TOP + i * ROW + 4;
    if (!item.from) {
      const mark = svg("g", { class: "mark", role: "listitem" }, list);
      svg("rect", { x: 0, y: y - 12, width, height: 18 }, mark);
      svg("text", { x: 8, y: y + 1 }, mark).textContent = `${item.session}: ${item.summary}`;
      return;
    }
    const kind = family(item.protocol);
    const x1 = x.get(item.from);
    const x2 = x.get(item.to);
    const arrow = svg(
      "g",
      {
        class: `arrow ${kind}${item.direction === "S" ? " reply" : ""}${view.selected === item.id ? " selected" : ""}`,
        role: "listitem",
      },
      list,
    );
    const button = svg("g", { tabindex: 0, role: "button", "aria-label": describe(entry), "data-id": item.id }, arrow);
    svg("rect", { class: "hit", x: Math.min(x1, x2), y: y - 14, width: Math.max(Math.abs(x2 - x1), 8), height: ROW - 2 }, button);
    svg("line", { x1, y1: y + 4, x2: x2 + (x2 > x1 ? -2 : 2), y2: y + 4, "marker-end": `url(#head-${kind})` }, button);
    svg("text", { x: Math.min(x1, x2) + 6, y: y }, button).textContent = describe(entry).replace(
      `${item.from} to ${item.to}, ${item.protocol}: `,
      "",
    );
    const choose = () => select(entry);
    button.addEventListener("click", choose);
    button.addEventListener("keydown", (key) => {
      if (key.key === "Enter" || key.key === " ") {
        key.preventDefault();
        choose();
      }
    });
  });
  document.getElementById("count").textContent = `(${items.filter((i) => i.from).length})`;
  const last = [...items].reverse().find((item) => item.from);
  highlight(last ? [last.from, last.to] : []);
}

function select(entry) {
  const { item, step } = entry;
  view.selected = item.id;
  const when = new Date(item.time * 1000).toISOString().slice(11, 23);
  const prefix = step === null ? "" : `step ${step}: `;
  document.getElementById("message-head").textContent =
    `${prefix}${item.from} → ${item.to} · ${item.protocol} · ${item.session} · ${when} UTC`;
  document.getElementById("message").textContent = item.detail;
  for (const node of document.querySelectorAll("#sequence .arrow")) {
    node.classList.toggle("selected", node.firstChild.dataset.id === String(item.id));
  }
}

let pending = false;
function redraw() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const scroll = document.getElementById("scroll");
    const atBottom = scroll.scrollTop + scroll.clientHeight >= scroll.scrollHeight - 40;
    drawSequence();
    if (atBottom) scroll.scrollTop = scroll.scrollHeight;
  });
}

function add(item) {
  if (view.seen.has(item.id)) return;
  view.seen.add(item.id);
  // Hosts write their traces independently: keep the diagram in time order.
  let i = view.items.length;
  while (i > 0 && view.items[i - 1].time > item.time) i -= 1;
  view.items.splice(i, 0, item);
  redraw();
}

// -- scenarios ------------------------------------------------------------------

function say(text) {
  document.getElementById("state").textContent = text;
}

async function play(name, buttons) {
  for (const button of buttons) button.disabled = true;
  say(`running ${name}…`);
  document.getElementById("transcript").textContent = "";
  try {
    const response = await fetch(`/api/run/${encodeURIComponent(name)}`, { method: "POST" });
    if (!response.ok) {
      say(`${name}: ${(await response.text()).trim()}`);
      return;
    }
    const result = await response.json();
    document.getElementById("transcript").textContent = result.transcript;
    say(`${name}: ${result.status === 0 ? "outcome holds" : "FAILED"}`);
  } catch (error) {
    say(`${name}: ${error}`);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

function drawScenarios() {
  const box = document.getElementById("scenarios");
  box.replaceChildren();
  const buttons = view.lab.scenarios.map((name) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.setAttribute("aria-label", `run ${name}`);
    box.append(button);
    return button;
  });
  buttons.forEach((button, i) => {
    button.addEventListener("click", () => play(view.lab.scenarios[i], buttons));
  });
}

async function start() {
  const response = await fetch("/api/lab");
  view.lab = await response.json();
  drawTopology();
  drawScenarios();
  drawSequence();
  document.getElementById("clear").addEventListener("click", () => {
    view.clearedAfter = Math.max(0, ...view.items.map((item) => item.id));
    redraw();
  });
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    // Each connection starts with every event the lab kept: after a
    // reconnection (or a restarted view), draw from those afresh.
    view.items = [];
    view.seen.clear();
    view.clearedAfter = 0;
    redraw();
    say("live");
  });
  events.addEventListener("error", () => say("reconnecting…"));
  events.addEventListener("message", (message) => add(JSON.parse(message.data)));
}

start().catch((error) => say(`the lab did not answer: ${error}`));
