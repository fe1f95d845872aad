"""MLflow's registry search grammar, parsed without a database.

`filter` is comparisons joined by AND: `name = 'churn'`, `name LIKE 'churn%'`,
`name ILIKE '%Churn%'`, `tags.team = 'risk'`, tags.`key with spaces` != 'x',
`run_id IN ('a', 'b')`, `version_number > 3`. `order_by` is a list of `<column> [ASC|DESC]`.
`page_token` is an opaque offset. Anything else is refused with a message naming it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

COMPARATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN")
MAX_FILTER = 4000

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|<=|>=|=|<|>|\(|\)|,)
      | (?P<key>(?:[A-Za-z_][A-Za-z0-9_]*\.)?(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_.\-]*))
    )""",
    re.VERBOSE,
)


class SearchError(ValueError):
    """A filter, order or page token MLflow's grammar (or this door) does not accept."""


@dataclass(frozen=True)
class Clause:
    kind: str  # "attribute" or "tag"
    key: str
    comparator: str
    value: str | float | tuple[str, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise SearchError(f"Invalid filter near: {text[pos : pos + 30]!r}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def parse_filter(text: str | None, attributes: set[str]) -> list[Clause]:
    """Clauses of a filter string; `attributes` are the plain keys allowed besides tags."""
    if not text or not text.strip():
        return []
    if len(text) > MAX_FILTER:
        raise SearchError(f"The filter is longer than {MAX_FILTER} characters.")
    tokens = _tokens(text)
    clauses, i = [], 0
    while True:
        if i >= len(tokens) or tokens[i][0] != "key":
            raise SearchError("Expected a key such as name or tags.<key> in the filter.")
        key = tokens[i][1]
        i += 1
        if key.lower().startswith("tags.") or key.lower().startswith("tag."):
            kind, name = "tag", key.split(".", 1)[1].strip("`")
        else:
            kind, name = "attribute", key.strip("`").lower()
            if name.startswith("attributes."):
                name = name.split(".", 1)[1]
            if name not in attributes:
                allowed = ", ".join(sorted(attributes))
                raise SearchError(f"Invalid filter key '{key}': use {allowed} or tags.<key>.")
        comparator, i = _comparator(tokens, i)
        value, i = _value(tokens, i, comparator)
        clauses.append(Clause(kind, name, comparator, value))
        if i == len(tokens):
            return clauses
        if tokens[i] != ("key", tokens[i][1]) or tokens[i][1].upper() != "AND":
            raise SearchError("Clauses are joined with AND (OR is not supported).")
        i += 1


def _comparator(tokens: list[tuple[str, str]], i: int) -> tuple[str, int]:
    if i >= len(tokens):
        raise SearchError("A comparison is missing its operator.")
    kind, text = tokens[i]
    if kind == "op" and text in COMPARATORS:
        return text, i + 1
    if kind == "key" and text.upper() in ("LIKE", "ILIKE", "IN"):
        return text.upper(), i + 1
    if kind == "key" and text.upper() == "NOT" and i + 1 < len(tokens):
        if tokens[i + 1][1].upper() == "IN":
            return "NOT IN", i + 2
    raise SearchError(f"Invalid comparator '{text}': use one of {', '.join(COMPARATORS)}.")


def _value(
    tokens: list[tuple[str, str]], i: int, comparator: str
) -> tuple[str | float | tuple[str, ...], int]:
    if comparator in ("IN", "NOT IN"):
        if i >= len(tokens) or tokens[i] != ("op", "("):
            raise SearchError(f"{comparator} takes a list: ('a', 'b').")
        values, i = [], i + 1
        while True:
            if i >= len(tokens) or tokens[i][0] != "string":
                raise SearchError(f"{comparator} lists hold quoted strings.")
            values.append(_unquote(tokens[i][1]))
            i += 1
            if i < len(tokens) and tokens[i] == ("op", ","):
                i += 1
                continue
            if i < len(tokens) and tokens[i] == ("op", ")"):
                return tuple(values), i + 1
            raise SearchError(f"Unclosed {comparator} list.")
    if i >= len(tokens):
        raise SearchError("A comparison is missing its value.")
    kind, text = tokens[i]
    if kind == "string":
        return _unquote(text), i + 1
    if kind == "number":
        return float(text), i + 1
    raise SearchError(f"Invalid value '{text}': quote strings.")


def parse_order_by(items: list[str], columns: dict[str, str]) -> list[str]:
    """Django ordering for MLflow `order_by` entries; `columns` maps MLflow names to fields."""
    ordering = []
    for item in items:
        parts = item.strip().split()
        if not parts or len(parts) > 2:
            raise SearchError(f"Invalid order_by '{item}': use '<column> [ASC|DESC]'.")
        column = parts[0].strip("`").lower()
        if column.startswith("attributes."):
            column = column.split(".", 1)[1]
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if column not in columns or direction not in ("ASC", "DESC"):
            allowed = ", ".join(sorted(columns))
            raise SearchError(f"Invalid order_by '{item}': columns are {allowed}.")
        field = columns[column]
        ordering.append(("-" if direction == "DESC" else "") + field)
    return ordering


# The furthest a page token may point: no registry holds 2**31 models or versions, and the
# offset plus a page must stay within a 64-bit integer for the database.
MAX_OFFSET = 2**31 - 1


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise SearchError("Invalid page_token.") from exc
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise SearchError("Invalid page_token.")
    return offset


def like_lookup(pattern: str, *, insensitive: bool) -> tuple[str, str]:
    """A Django lookup and value for a SQL LIKE pattern (% and _ wildcards)."""
    prefix = "i" if insensitive else ""
    inner = pattern.strip("%")
    if "%" not in inner and "_" not in inner:
        starts, ends = pattern.startswith("%"), pattern.endswith("%") and len(pattern) > 1
        if starts and ends:
            return f"{prefix}contains", inner
        if ends:
            return f"{prefix}startswith", inner
        if starts:
            return f"{prefix}endswith", inner
        return ("iexact" if insensitive else "exact"), inner
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return f"{prefix}regex", f"^{regex}$"
