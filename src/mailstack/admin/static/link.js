// The webmail's "Admin" link, shown only to accounts with the admin role.
// Asked only with a session (no login, no question: a 401 would carry a
// challenge), then the admin API answers 200 for an admin, 403 for others.
async function showAdminLink() {
  if (document.getElementById("admin-link")) return;
  const session = await (await fetch("/webmail/session", { credentials: "same-origin" })).json();
  if (!session.username) return;
  const answer = await fetch("/admin/api/me", { credentials: "same-origin" });
  await answer.text(); // read to the end, so the request is finished whatever it says
  if (!answer.ok || document.getElementById("admin-link")) return;
  const bar = document.querySelector("header.bar") || document.body;
  const link = document.createElement("a");
  link.href = "/admin/";
  link.textContent = "Admin";
  link.id = "admin-link";
  bar.append(link);
}

// Looked at when the webmail's app is shown (at load with a session, or
// after signing in).
const app = document.getElementById("app");
if (app) {
  new MutationObserver(() => {
    if (!app.hidden) showAdminLink().catch(() => {});
  }).observe(app, { attributes: true, attributeFilter: ["hidden"] });
  if (!app.hidden) showAdminLink().catch(() => {});
}
