"""Lists as tables (``agent list``, ``job list`` ...).

What scripts read from a pipe: a header in capitals, columns two spaces apart
and aligned by terminal width, no trailing blanks, no cell cut short. With
colour the header is bold and a cell may have a style (a status its colour).

Why not rich's ``Table``: importing it, with the console it renders through,
makes every table command measurably slower to start, and to fit a narrow
terminal it shortens ids and drops whole columns, where a person needs the
id to type the next command. bench/README.md ("wizctl start-up") has the
figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .text import one_line, paint, width

# Styles a cell: (column index, cell text) -> a style for ``text.paint``, or None.
Styles = Callable[[int, str], str | None]


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, color: bool = False,
          styles: Styles | None = None) -> str:
    """Rows as aligned columns under a header; cells are made one-line (None is "-").

    ``styles(column, text)`` may give a cell a style (used only with ``color``).
    Returns the text without a final newline; "(none)" for no rows.
    """
    cells = [[one_line(v if v is not None else "-") for v in row] for row in rows]
    if not cells:
        return "(none)"
    widths = [width(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], width(v))
    lines = ["  ".join(paint(h.upper().ljust(widths[i]), "bold", color)
                       for i, h in enumerate(headers)).rstrip()]
    for row in cells:
        parts = []
        for i, v in enumerate(row):
            padded = v + " " * (widths[i] - width(v))
            style = styles(i, v) if styles else None
            parts.append(paint(padded, style, color) if style else padded)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
