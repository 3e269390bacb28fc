// The composer's widgets: the rich-text editor, address autocomplete and
// attachments dropped onto the composer. No state of the app lives here.

/** The rich-text editor: a contenteditable box beside the plain textarea,
 * with a few commands. Only one of the two is shown (and named "Message"). */
export class RichEditor {
  constructor({ toggle, toolbar, box, plain }) {
    Object.assign(this, { toggle, toolbar, box, plain });
    toggle.addEventListener("click", () => this.set(!this.on));
    for (const button of toolbar.querySelectorAll("[data-command]")) {
      // Keep the selection in the editor: act on mousedown, not after a focus move.
      button.addEventListener("mousedown", (event) => event.preventDefault());
      button.addEventListener("click", () => {
        this.box.focus();
        document.execCommand(button.dataset.command, false, null);
        this.box.dispatchEvent(new Event("input", { bubbles: true }));
      });
    }
  }

  get on() { return this.toggle.getAttribute("aria-pressed") === "true"; }

  /** Switch between rich and plain text, carrying the words across. */
  set(rich) {
    if (rich === this.on) return;
    if (rich) {
      this.box.replaceChildren(...this.plain.value.split("\n").map((line) => {
        const div = document.createElement("div");
        if (line) div.textContent = line; else div.append(document.createElement("br"));
        return div;
      }));
    } else {
      this.plain.value = this.text();
    }
    this.toggle.setAttribute("aria-pressed", String(rich));
    this.toolbar.querySelectorAll("[data-command]").forEach((b) => { b.disabled = !rich; });
    this.box.hidden = !rich;
    this.plain.closest("label").hidden = rich;
    (rich ? this.box : this.plain).focus();
  }

  /** The words as plain text (the text/plain alternative). */
  text() {
    return this.box.innerText.replace(/\n{3,}/g, "\n\n").replace(/\n$/, "");
  }

  html() { return this.box.innerHTML; }

  reset() { if (this.on) this.set(false); this.box.replaceChildren(); }
}

/** Suggestions under an address field: the last address typed is looked up
 * with lookup(text) -> [{name, email}]. The field stays a textbox (its role
 * and name are what tests and users know) with aria-autocomplete, and the
 * suggestion in hand is its aria-activedescendant. */
export function autocomplete(input, list, lookup) {
  let options = [];
  let active = -1;
  let timer = null;
  let asked = 0;
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);

  const lastPart = () => input.value.split(/[,;]/).pop().trim();
  const close = () => {
    list.hidden = true;
    list.replaceChildren();
    options = [];
    active = -1;
    input.removeAttribute("aria-activedescendant");
  };
  const show = (index) => {
    active = index;
    list.querySelectorAll("[role=option]").forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) input.setAttribute("aria-activedescendant", `${list.id}-${index}`);
  };
  const pick = (contact) => {
    const parts = input.value.split(/[,;]/).slice(0, -1).map((p) => p.trim()).filter(Boolean);
    const name = contact.name ? `${contact.name.replace(/["<>]/g, "")} <${contact.email}>` : contact.email;
    input.value = [...parts, name].join(", ") + ", ";
    close();
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  };

  input.addEventListener("input", (event) => {
    if (!event.isTrusted) return; // our own pick
    clearTimeout(timer);
    const text = lastPart();
    if (!text) { close(); return; }
    timer = setTimeout(async () => {
      const mine = ++asked;
      let found = [];
      try { found = await lookup(text); } catch { found = []; }
      if (mine !== asked || lastPart() !== text) return; // a later keystroke won
      options = found;
      if (!found.length) { close(); return; }
      list.replaceChildren(...found.map((contact, i) => {
        const li = document.createElement("li");
        li.id = `${list.id}-${i}`;
        li.setAttribute("role", "option");
        li.textContent = contact.name ? `${contact.name} <${contact.email}>` : contact.email;
        li.addEventListener("mousedown", (e) => { e.preventDefault(); pick(contact); });
        return li;
      }));
      list.hidden = false;
      show(-1);
    }, 150);
  });
  input.addEventListener("keydown", (event) => {
    if (list.hidden || !options.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      show((active + step + options.length) % options.length);
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      pick(options[active]);
    } else if (event.key === "Escape") {
      event.stopPropagation(); // close the suggestions, not the composer
      close();
    }
  });
  input.addEventListener("blur", close);
}

/** Files dropped anywhere on the composer join those of the file input. */
export function dropFiles(zone, fileInput, onChange) {
  const carries = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  zone.addEventListener("dragover", (event) => {
    if (!carries(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dropping");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
  zone.addEventListener("drop", (event) => {
    zone.classList.remove("dropping");
    if (!carries(event)) return;
    event.preventDefault();
    const all = new DataTransfer();
    for (const file of [...fileInput.files, ...event.dataTransfer.files]) all.items.add(file);
    fileInput.files = all.files;
    onChange();
  });
  fileInput.addEventListener("change", onChange);
}
