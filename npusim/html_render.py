"""The HTML pieces of the report page: escaped text, tables, preformatted text and embedded figures.

Everything a page needs travels inside it: the style sheet is inline and every figure is a PNG in
a `data:` URI, so the file opens anywhere without a network. Text always goes through `text` (or
`html.escape` via it), so a label, an override or an instruction's text cannot inject markup.
Figures are rendered without the PNG metadata matplotlib would stamp (its version), so that the
same run gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # figures are drawn 13-14 inches wide: 1300-1400 pixels, scaled to the page's width

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0; background: #f4f5f7; color: #1d2330; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.3em; margin-top: 1.8em; padding-top: 0.6em; border-top: 2px solid #d8dce3; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
p.note, caption { color: #4a5263; font-size: 0.9em; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0 0 1em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
nav ul { display: flex; flex-wrap: wrap; gap: 4px 24px; list-style: none; margin: 0.3em 0; padding: 0; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 4px; padding: 10px 12px;
      white-space: pre-wrap; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 13px; margin: 0.3em 0 1em; }
caption { text-align: left; caption-side: top; padding: 0 0 4px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e6e8ec; white-space: nowrap; }
th { background: #eef1f5; text-align: left; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 1em 0 1.6em; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e1e4e8; }
figcaption { color: #4a5263; font-size: 0.9em; margin-top: 4px; }
details { margin: 0.4em 0 1em; } summary { cursor: pointer; color: #2b5fb4; }
.bound { font-weight: 600; }
"""


def text(value: object) -> str:
    """`value` as text safe inside an element or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _attributes(attributes: dict[str, str]) -> str:
    # a trailing underscore in a name is dropped, so that `class_` writes `class`
    return "".join(f' {name.rstrip("_")}="{text(value)}"' for name, value in attributes.items())


def element(tag: str, body: str, **attributes: str) -> str:
    """`<tag attributes>body</tag>`; `body` is markup already, the attribute values are escaped here."""
    return f"<{tag}{_attributes(attributes)}>{body}</{tag}>"


def preformatted(block: str) -> str:
    """A block of the text reports, its columns kept aligned."""
    return element("pre", text(block))


class Column(NamedTuple):
    """A table column: its heading and whether it holds numbers (right-aligned, tabular digits)."""

    heading: str
    numeric: bool = True


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], caption: str, ident: str) -> str:
    """A table of already formatted cells, headed by `columns`, in a box that scrolls if too wide."""
    def cell(tag: str, column: Column, value: str) -> str:
        return element(tag, text(value), class_="num") if column.numeric else element(tag, text(value))

    head = "".join(cell("th", c, c.heading) for c in columns)
    body = "\n".join(element("tr", "".join(cell("td", c, v) for c, v in zip(columns, row, strict=True)))
                     for row in rows)
    markup = (element("caption", text(caption)) + element("thead", element("tr", head))
              + element("tbody", "\n" + body + "\n"))
    return element("div", element("table", markup, id=ident), class_="scroll")


def count(value: int | float) -> str:
    """An integer with thousands separators: 1,234,567."""
    return f"{int(round(value)):,}"


def percent(share: float) -> str:
    """A share of 0..1 as a percentage with one decimal: 0.1234 -> 12.3."""
    return f"{100 * share:.1f}"


def png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, drawn on its Agg canvas, with no metadata that varies between versions."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def image(data: bytes, alt: str, caption: str) -> str:
    """A PNG embedded in the page as a data: URI, with its caption."""
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    img = f"<img{_attributes({'src': uri, 'alt': alt})}>"
    return element("figure", img + element("figcaption", text(caption)))


def page(title: str, body: str) -> str:
    """The whole document: UTF-8, the inline style sheet, `body` (markup) inside <main>."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{text(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")
