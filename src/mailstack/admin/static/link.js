// The webmail's "Admin" link, shown only to accounts with the admin role:
// the admin API answers 200 for them, 403 for others (who see nothing).
async function showAdminLink() {
  const answer = await fetch("/admin/api/me", { credentials: "same-origin" });
  if (!answer.ok) return;
  const bar = document.querySelector("header.bar") || document.body;
  const link = document.createElement("a");
  link.href = "/admin/";
  link.textContent = "Admin";
  link.id = "admin-link";
  bar.append(link);
}

// After the webmail's own login: look again when the page's session changes.
showAdminLink().catch(() => {});
document.addEventListener("submit", () => setTimeout(() => {
  if (!document.getElementById("admin-link")) showAdminLink().catch(() => {});
}, 1500));
