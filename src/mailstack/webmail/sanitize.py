"""HTML mail, never trusted: cleaned on the server with an allow-list
sanitiser (`nh3`, the binding of Rust's Ammonia) before any browser sees it.

What survives is text formatting, tables, lists, links and images:

* no script in any disguise: no ``<script>``, event handler, ``javascript:``
  or ``data:`` URL, ``<svg>``, ``<math>``, ``<iframe>``, ``<object>``,
  ``<embed>``, ``<form>``, ``<base>``, ``<meta>`` (refresh) or ``<link>``;
  their content goes with them where it is code (script, style, svg, math,
  template, noscript, title, iframe, object);
* no fetch without consent: ``src`` of an image is rewritten — ``cid:``
  to the message's own part (``cid_url``), a remote ``http(s)`` image to the
  node's image proxy (``proxy_url``) when the user allowed remote images for
  this message or sender, else removed and counted; ``srcset``,
  ``background`` attributes, ``<link>`` and CSS ``url()`` never pass;
* CSS only in ``style`` attributes, and only properties that draw text and
  boxes (no ``position``, ``z-index``, ``background-image``, ``content``,
  ``behavior``, ``-moz-binding``, ``cursor``, ``filter``, ``mask``): nothing
  that fetches, overlays the app or moves out of the message's frame;
* links open in a new browsing context with ``rel="noopener noreferrer"``.

The webmail then shows the result in a sandboxed iframe (no
``allow-scripts``, no ``allow-same-origin``) under a Content-Security-Policy
that allows images only from the node: two more walls behind this one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import nh3

TAGS = frozenset(
    """a abbr acronym address b bdi bdo big blockquote br caption center cite code col
    colgroup dd del details dfn div dl dt em figcaption figure font h1 h2 h3 h4 h5 h6 hr i
    img ins kbd li mark ol p pre q rp rt ruby s samp small span strike strong sub summary
    sup table tbody td tfoot th thead time tr tt u ul var wbr""".split()
)
# Removed with everything inside: code, and what only code would read.
REMOVED_WITH_CONTENT = frozenset(
    "script style svg math template noscript title iframe object embed applet head xml".split()
)
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "dir", "lang", "align", "valign", "style", "width", "height"},
    "a": {"href", "name"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap", "abbr", "headers", "scope"},
    "th": {"colspan", "rowspan", "bgcolor", "nowrap", "abbr", "headers", "scope"},
    "tr": {"bgcolor"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
}
STYLE_PROPERTIES = frozenset(
    """color background-color font font-family font-size font-style font-variant font-weight
    text-align text-decoration text-indent text-transform letter-spacing word-spacing
    line-height white-space vertical-align direction unicode-bidi
    margin margin-top margin-right margin-bottom margin-left
    padding padding-top padding-right padding-bottom padding-left
    border border-top border-right border-bottom border-left border-color border-style
    border-width border-collapse border-spacing border-radius
    width height max-width min-width max-height min-height
    display float clear list-style-type table-layout caption-side empty-cells
    overflow overflow-wrap word-break word-wrap""".split()
)
LINK_SCHEMES = frozenset({"http", "https", "mailto", "cid"})


# CSS functions a value may call: colours and arithmetic, nothing that
# fetches (url, image-set), runs (expression) or reads (attr, var, env).
_SAFE_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla", "calc"})
_FUNCTION = re.compile(r"([a-z-]*)\s*\(", re.IGNORECASE)


def _style(text: str) -> str | None:
    """A style attribute without declarations that call unsafe functions or
    hide anything behind CSS escapes or comments."""
    kept = []
    for declaration in text.split(";"):
        if not declaration.strip():
            continue
        value = declaration.partition(":")[2]
        if "\\" in value or "/*" in value or "@" in value:
            continue
        if any(f.lower() not in _SAFE_FUNCTIONS for f in _FUNCTION.findall(value)):
            continue
        kept.append(declaration.strip())
    return ";".join(kept) or None


@dataclass(frozen=True, slots=True)
class Sanitized:
    html: str
    # Remote images removed because the user has not allowed them (yet).
    blocked_images: int
    # Remote images left in, rewritten to go through the proxy.
    proxied_images: int


def sanitize(
    html: str,
    *,
    cid_url: Callable[[str], str | None] = lambda cid: None,
    proxy_url: Callable[[str], str] | None = None,
) -> Sanitized:
    """The HTML of a message body made safe to show. ``cid_url`` maps a
    Content-ID to the URL of that part (None: drop); ``proxy_url`` maps a
    remote image's URL to the proxy's, when remote images are allowed."""
    blocked = 0
    proxied = 0

    def attribute(tag: str, name: str, value: str) -> str | None:
        nonlocal blocked, proxied
        if name in ("style", "href", "src"):
            # No character a URL or CSS could be smuggled through (NUL, ...).
            value = value.replace("\x00", "")
        if tag == "img" and name == "src":
            lowered = value.strip().lower()
            if lowered.startswith("cid:"):
                return cid_url(value.strip()[4:].strip("<>"))
            if lowered.startswith(("http://", "https://")):
                if proxy_url is None:
                    blocked += 1
                    return None
                proxied += 1
                return proxy_url(value.strip())
            return None
        if tag == "a" and name == "href" and value.strip().lower().startswith("cid:"):
            return None
        if name == "style":
            return _style(value)
        return value

    cleaned = nh3.clean(
        html,
        tags=set(TAGS),
        clean_content_tags=set(REMOVED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(LINK_SCHEMES),
        filter_style_properties=set(STYLE_PROPERTIES),
    )
    return Sanitized(cleaned, blocked, proxied)
