"""Question text <-> the HTML that LMS formats carry, in a form that reads back unchanged.

Bank text is plain text (with `backticks` for inline code) plus an optional code block. Exports
write it as HTML: escaped text in one <p> with <br> for line breaks, the code in <pre><code> with
newlines as &#10; so that nothing spans lines (GIFT ends a question at a blank line). Importers use
`from_html`, which undoes exactly that and degrades gracefully on HTML written by other tools.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def text_to_html(text: str) -> str:
    """Escaped inline HTML for an option, feedback or explanation (line breaks as <br>)."""
    return _escape(text).replace("\n", "<br>")


def to_html(prompt: str, code: str = "") -> str:
    """The question text as one line of HTML: <p>prompt</p> and optionally <pre><code>code</code></pre>."""
    out = f"<p>{text_to_html(prompt)}</p>"
    if code:
        out += "<pre><code>" + _escape(code).replace("\n", "&#10;") + "</code></pre>"
    return out


class _Reader(HTMLParser):
    BLOCKS = frozenset(
        {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "tr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.code: list[str] = []
        self.in_pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre":
            self.in_pre += 1
            if self.code:
                self.code.append("\n\n")
        elif tag == "br" and not self.in_pre:
            self.text.append("\n")
        elif tag in self.BLOCKS and not self.in_pre and "".join(self.text).strip():
            self.text.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self.in_pre:
            self.in_pre -= 1

    def handle_data(self, data: str) -> None:
        (self.code if self.in_pre else self.text).append(data)


def from_html(markup: str) -> tuple[str, str]:
    """(plain text, code block) from question HTML; inverse of `to_html`."""
    reader = _Reader()
    reader.feed(markup)
    reader.close()
    text = "".join(reader.text)
    lines = [ln.strip() for ln in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    squeezed: list[str] = []
    for ln in lines:  # at most one blank line in a row
        if ln or (squeezed and squeezed[-1]):
            squeezed.append(ln)
    return "\n".join(squeezed), "".join(reader.code).strip("\n")


def html_to_text(markup: str) -> str:
    """Plain text from inline HTML (options, feedback)."""
    text, code = from_html(markup)
    return text if not code else (text + "\n" + code).strip()
