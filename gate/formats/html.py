"""A self-contained HTML page: the terminal report, colours kept, for CI artifacts and a reviewer's browser."""

from __future__ import annotations

import html
import io

from rich.console import Console
from rich.terminal_theme import DEFAULT_TERMINAL_THEME

from gate.formats.terminal import TerminalFormat

# Rich's page, with a title and a width that fits the report's tables.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<title>{title}</title>
<style>
{{stylesheet}}
body {{{{ color: {{foreground}}; background-color: {{background}}; margin: 1.5em; }}}}
</style>
</head>
<body>
<pre style="font-family:Menlo,'DejaVu Sans Mono',consolas,'Courier New',monospace"><code style="font-family:inherit">{{code}}</code></pre>
</body>
</html>
"""
WIDTH = 140


class HtmlFormat:
    def render(self, doc: dict) -> str:
        console = Console(record=True, width=WIDTH, file=io.StringIO(), force_terminal=True, color_system="truecolor")
        console.print(TerminalFormat().render(doc))
        status = (doc.get("verdict") or {}).get("status", "INCONCLUSIVE")
        title = html.escape(f"gate: {status} — {doc['candidate']['spec']} vs {doc['base']['spec']}")
        return console.export_html(theme=DEFAULT_TERMINAL_THEME, code_format=_PAGE.format(title=title),
                                   inline_styles=True)
