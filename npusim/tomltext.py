"""What a TOML text must not hold before `tomllib` reads it: nesting or numbers it cannot survive.

`tomllib` recurses once per level of nested arrays and inline tables (a few hundred levels exhaust
Python's stack) and converts decimal integers with `int()` (over 4300 digits is refused there), so
a hostile or corrupted file would end in RecursionError or ValueError rather than a TOML error.
A preset nests tables two deep and its numbers are short, so much tighter limits lose nothing.
"""

from __future__ import annotations

MAX_NESTING = 32
MAX_DIGITS = 1000


def problem(text: str) -> str | None:
    """Why `text` cannot be a preset before parsing it (with its line), or None if it may be one.

    Brackets and digits count outside strings and comments only, as TOML reads them.
    """
    depth = run = 0
    line, i, n = 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in "\"'":
            start = i
            i = _string_end(text, i)
            line += text.count("\n", start, i)
            run = 0
            continue
        if c == "\n":
            line += 1
        if c in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return f"line {line}: arrays or tables nested more than {MAX_NESTING} deep"
        elif c in "]}":
            depth = max(0, depth - 1)
        run = run + 1 if c.isdigit() or c == "_" else 0
        if run > MAX_DIGITS:
            return f"line {line}: a number longer than {MAX_DIGITS} digits"
        i += 1
    return None


def _string_end(text: str, i: int) -> int:
    """The index just past the string opening at `i` (basic or literal, one-line or multi-line).

    An unterminated string ends at its line's end (one-line) or the text's end (multi-line): the
    parser reports it; here it only must not hide the brackets that follow.
    """
    quote = text[i]
    delim = quote * 3 if text.startswith(quote * 3, i) else quote
    j, n = i + len(delim), len(text)
    while j < n:
        if quote == '"' and text[j] == "\\":
            j += 2
            continue
        if len(delim) == 1 and text[j] == "\n":
            return j
        if text.startswith(delim, j):
            if len(delim) == 1:
                return j + 1
            end = j + 3
            while end < min(j + 5, n) and text[end] == quote:
                end += 1  # up to two quotes of the content may touch the closing three
            return end
        j += 1
    return n
