// The one module that speaks to the node: the webmail's session routes and
// JMAP (RFC 8620 core, RFC 8621 mail), with push over EventSource (§7.3).
// Credentials are an HttpOnly cookie; every POST carries the CSRF token.

const CORE = "urn:ietf:params:jmap:core";
export const MAIL = "urn:ietf:params:jmap:mail";
export const SUBMISSION = "urn:ietf:params:jmap:submission";
export const VACATION = "urn:ietf:params:jmap:vacationresponse";

let csrf = null;
// Called when the node no longer knows our session (revoked, expired).
let onSessionLost = () => {};
export function whenSessionLost(handler) { onSessionLost = handler; }

async function problem(response) {
  try {
    const body = await response.json();
    return new Error(body.detail || body.description || `HTTP ${response.status}`);
  } catch {
    return new Error(`HTTP ${response.status}`);
  }
}

async function post(url, body, type = "application/json") {
  const headers = { "Content-Type": type };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(url, { method: "POST", headers, body, credentials: "same-origin" });
  if (response.status === 401 && !url.endsWith("/webmail/login")) onSessionLost();
  return response;
}

/** Who is logged in ({username, csrf}), or null. */
export async function whoami() {
  const response = await fetch("/webmail/session", { credentials: "same-origin" });
  if (!response.ok) throw await problem(response);
  const me = await response.json();
  csrf = me.csrf;
  return me.username ? me : null;
}

export async function login(username, password) {
  const response = await post("/webmail/login", JSON.stringify({ username, password }));
  if (!response.ok) throw await problem(response);
  const me = await response.json();
  csrf = me.csrf;
  return me;
}

/** GET a webmail route's JSON. */
export async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (response.status === 401) onSessionLost();
  if (!response.ok) throw await problem(response);
  return response.json();
}

/** POST JSON to a webmail route (with the CSRF token); its JSON answer. */
export async function postJson(url, value) {
  const response = await post(url, JSON.stringify(value));
  if (!response.ok) throw await problem(response);
  return response.json();
}

export async function logout() {
  const response = await post("/webmail/logout", "{}");
  csrf = null;
  if (!response.ok && response.status !== 401) throw await problem(response);
}

export class Jmap {
  constructor(session) {
    this.session = session;
    this.accountId = session.primaryAccounts[MAIL];
  }

  static async open() {
    const response = await fetch("/jmap/session", { credentials: "same-origin" });
    if (!response.ok) throw await problem(response);
    return new Jmap(await response.json());
  }

  /** Run method calls ([name, args, id]); their responses by call id.
   * A method error throws, naming the method and the error type. */
  async call(calls) {
    const using = [CORE, MAIL, SUBMISSION, VACATION];
    const body = JSON.stringify({ using, methodCalls: calls });
    const response = await post(this.session.apiUrl, body);
    if (!response.ok) throw await problem(response);
    const out = {};
    for (const [name, args, id] of (await response.json()).methodResponses) {
      if (name === "error") {
        throw new Error(`${id}: ${args.type}${args.description ? ": " + args.description : ""}`);
      }
      // An implicit call (onSuccessUpdateEmail's Email/set) shares its id.
      if (!(id in out)) out[id] = args;
    }
    return out;
  }

  /** One method, with accountId filled in; its response. */
  async one(name, args) {
    const out = await this.call([[name, { accountId: this.accountId, ...args }, "0"]]);
    return out["0"];
  }

  /** Upload a File (RFC 8620 §6.1); the blob {blobId, type, size}. */
  async upload(file) {
    const url = this.session.uploadUrl.replace("{accountId}", encodeURIComponent(this.accountId));
    const response = await post(url, file, file.type || "application/octet-stream");
    if (!response.ok) throw await problem(response);
    return response.json();
  }

  downloadUrl(blobId, name, type) {
    return this.session.downloadUrl
      .replace("{accountId}", encodeURIComponent(this.accountId))
      .replace("{blobId}", encodeURIComponent(blobId))
      .replace("{name}", encodeURIComponent(name || "attachment"))
      .replace("{type}", encodeURIComponent(type || "application/octet-stream"));
  }

  /** Push (§7.3): onChange(StateChange) for every change; returns the EventSource. */
  listen(onChange) {
    const url = this.session.eventSourceUrl
      .replace("{types}", "*")
      .replace("{closeafter}", "no")
      .replace("{ping}", "60");
    const source = new EventSource(url, { withCredentials: true });
    source.addEventListener("state", (event) => onChange(JSON.parse(event.data)));
    // Changes made before the stream (re)opened are not pushed: catch up.
    source.addEventListener("open", () => onChange(null));
    // A refused stream is not retried by the browser: is the session gone?
    source.addEventListener("error", async () => {
      if (source.readyState !== EventSource.CLOSED) return;
      try {
        if (!(await whoami())) { onSessionLost(); return; }
      } catch { /* the node is away: try again below */ }
      setTimeout(() => { if (source.onreopen) source.onreopen(); }, 5000);
    });
    return source;
  }
}
