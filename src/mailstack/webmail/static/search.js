// "Search mail": operators mapped to an Email/query filter (RFC 8621 §4.4.1).
//   from: to: cc: subject: has:attachment is:unread is:read is:flagged
//   before:YYYY-MM-DD after:YYYY-MM-DD larger:10k smaller:1M in:mailbox
// Anything else is searched as text. Values may be "quoted".

const TOKEN = /(\w+):(?:"([^"]*)"|(\S+))|"([^"]*)"|(\S+)/g;

function size(text) {
  const match = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(text);
  if (!match) return null;
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2].toLowerCase()];
  return Math.round(Number(match[1]) * unit);
}

function day(text) {
  return /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : null;
}

/** The filter for a search; mailboxes (as from Mailbox/get) resolve in:. Null for nothing. */
export function parseSearch(text, mailboxes) {
  const conditions = [];
  const words = [];
  for (const match of text.matchAll(TOKEN)) {
    const [, op, quoted, bare, phrase, word] = match;
    if (!op) {
      words.push(phrase ?? word);
      continue;
    }
    const value = quoted ?? bare;
    const lower = value.toLowerCase();
    switch (op.toLowerCase()) {
      case "from": case "to": case "cc": case "bcc": case "subject": case "body":
        conditions.push({ [op.toLowerCase()]: value });
        break;
      case "has":
        if (lower === "attachment") conditions.push({ hasAttachment: true });
        else words.push(match[0]);
        break;
      case "is": {
        const known = {
          unread: { notKeyword: "$seen" }, read: { hasKeyword: "$seen" },
          flagged: { hasKeyword: "$flagged" }, starred: { hasKeyword: "$flagged" },
          draft: { hasKeyword: "$draft" },
        }[lower];
        if (known) conditions.push(known);
        else words.push(match[0]);
        break;
      }
      case "before": case "after": {
        const when = day(value);
        if (when) conditions.push({ [op.toLowerCase()]: when });
        else words.push(match[0]);
        break;
      }
      case "larger": case "smaller": {
        const octets = size(value);
        if (octets !== null) conditions.push(op.toLowerCase() === "larger" ? { minSize: octets } : { maxSize: octets });
        else words.push(match[0]);
        break;
      }
      case "in": {
        const box = mailboxes.find((m) => m.name.toLowerCase() === lower || m.role === lower);
        conditions.push({ inMailbox: box ? box.id : "none" });
        break;
      }
      default:
        words.push(match[0]);
    }
  }
  if (words.length) conditions.push({ text: words.join(" ") });
  if (!conditions.length) return null;
  return conditions.length === 1 ? conditions[0] : { operator: "AND", conditions };
}
