"""Escaping what comes from inputs (tensor names, paths, model names, policy rule ids, messages).

One helper per format. Every one first makes the text encodable and inert:
lone surrogates (from undecodable file names) and control characters
(terminal escape sequences, characters XML forbids) become U+FFFD.
"""

from __future__ import annotations

import html as _html
import re

from rich.text import Text

REPLACEMENT = "\ufffd"
# C0 controls but tab and newline, DEL, C1 controls, lone surrogates, and the two XML non-characters.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# What can start emphasis, code, a link or image, a table cell or strike-through anywhere in a line, and the "("
# that would open a link's destination after a "]". Line-start markers (#, >, -, 1.) need no escape: the reports
# never start a line with input text.
_MARKDOWN_PUNCT = re.compile(r"([\\`*_\[\]|~]|(?<=\])\()")
# What GitHub turns into a link with no brackets at all (an "autolink literal"): a scheme's "://", "www.",
# an e-mail address or @mention. Escaping the ":", "." or "@" keeps the parser from starting one there.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z]):(?=//)|(?<=www)\.|@")


def clean(value: object, newlines: bool = True) -> str:
    """Text safe to encode as UTF-8 and to print: unsafe characters replaced, newlines kept or made spaces."""
    text = _UNSAFE.sub(REPLACEMENT, str(value))
    return text if newlines else re.sub(r"[\r\n\t]+", " ", text)


def terminal(value: object, style: str = "") -> Text:
    """For rich: a Text, so markup such as `evil[/]x` is shown as written, never interpreted."""
    return Text(clean(value), style=style)


def html(value: object) -> str:
    return _html.escape(clean(value), quote=True)


def xml(value: object) -> str:
    """For ElementTree, which escapes markup itself but writes characters XML 1.0 forbids."""
    return clean(value)


def markdown_code(value: object) -> str:
    """An inline code span that no backtick in the name can close, safe inside a table cell."""
    text = clean(value, newlines=False).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_text(value: object) -> str:
    """Prose in Markdown: no raw HTML, no headings, emphasis, links or images from what it says."""
    text = clean(value, newlines=False).replace("&", "&amp;").replace("<", "&lt;")
    text = _MARKDOWN_PUNCT.sub(r"\\\1", text)
    return _AUTOLINK.sub(lambda m: "\\" + m.group(0), text)


def chart_label(value: object) -> str:
    """Text for a matplotlib label: one line, and a `$` never starts mathtext (a stray one would raise)."""
    return clean(value, newlines=False).replace("$", r"\$")


def mermaid_label(value: object) -> str:
    """A quoted Mermaid string: no quote, backtick or newline can end it or the code block."""
    return '"' + clean(value, newlines=False).replace('"', "'").replace("`", "'") + '"'
