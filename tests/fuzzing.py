"""Hostile values for schema-driven fuzzing: what Python's parsers accept but nothing can
store, hash or compare — lone UTF-16 surrogates, numbers beyond every range, impossible
dates. `add_hostile_values(schema)` makes schemathesis mix them into the cases it generates
for every operation (bodies, query strings), so each new endpoint meets them too.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import strategies as st

LONE_SURROGATES = ["a\ud800b", "\udfff", "x\udbff"]
HUGE_NUMBERS = [10**400, -(10**400), 2**63, -(2**63) - 1, 1e308]
HUGE_QUERY_NUMBERS = ["1e400", "1e999", "9" * 40, "-9" * 20]
IMPOSSIBLE_DATES = [
    "2026-02-30T00:00:00Z",
    "2026-01-01T25:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-02-30",
    "0000-00-00T00:00:00Z",
]
DATE_PARAMETERS = {"after", "before", "since", "until", "as_of", "created_after"}
_LOOKS_LIKE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")

# Operations not yet given hostile values, each with its reason. Keep it empty: an entry here
# is a known 500 waiting for its fix.
HOSTILE_EXEMPT: dict[tuple[str, str], str] = {}


def _date_parameters(operation) -> set[str]:
    names = set()
    for parameter in operation.query:
        schema = parameter.definition.get("schema", parameter.definition)
        if schema.get("format") in ("date", "date-time") or parameter.name in DATE_PARAMETERS:
            names.add(parameter.name)
    return names


def _strings_and_numbers(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    found: list[tuple[tuple, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_strings_and_numbers(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_strings_and_numbers(item, (*path, index)))
    elif isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        found.append((path, value))
    return found


def _set(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


def _replace(case, name: str, value: Any) -> None:
    # Bypasses the case's change tracking: the schema's validators (in Rust) cannot even read
    # a lone surrogate, so the case keeps its metadata as generated.
    object.__setattr__(case, name, value)


def _mutate(case, date_names: set[str], choice: int, pick: int, hostile: int):
    """One hostile change of the case (its containers are replaced, never edited in place);
    `choice` says which kind, `pick` which value to hit."""
    if choice == 0 and isinstance(case.body, dict | list):
        targets = [(p, v) for p, v in _strings_and_numbers(case.body) if isinstance(v, str)]
        if targets:
            path, text = targets[pick % len(targets)]
            surrogate = LONE_SURROGATES[hostile % len(LONE_SURROGATES)]
            _replace(case, "body", _set(copy.deepcopy(case.body), path, text + surrogate))
        elif isinstance(case.body, dict):
            _replace(case, "body", {**case.body, "note\ud800": "x"})
    elif choice == 1 and isinstance(case.body, dict | list):
        targets = _strings_and_numbers(case.body)
        if targets:
            path, _ = targets[pick % len(targets)]
            number = HUGE_NUMBERS[hostile % len(HUGE_NUMBERS)]
            _replace(case, "body", _set(copy.deepcopy(case.body), path, number))
    elif choice == 2 and date_names:
        names = sorted(date_names)
        date = IMPOSSIBLE_DATES[hostile % len(IMPOSSIBLE_DATES)]
        _replace(case, "query", {**(case.query or {}), names[pick % len(names)]: date})
    elif choice == 3 and case.query:
        names = sorted(case.query)
        value = HUGE_QUERY_NUMBERS[hostile % len(HUGE_QUERY_NUMBERS)]
        _replace(case, "query", {**case.query, names[pick % len(names)]: value})
    return case


def add_hostile_values(schema) -> None:
    """Register a hook on `schema`: about half of the generated cases carry one hostile value."""

    @schema.hook
    def before_generate_case(context, strategy):
        operation = context.operation
        if operation is None:
            return strategy
        if (operation.method.upper(), operation.path) in HOSTILE_EXEMPT:
            return strategy
        date_names = _date_parameters(operation)

        def hostile(case):
            return st.one_of(
                st.just(case),
                st.builds(
                    lambda choice, pick, value: _mutate(case, date_names, choice, pick, value),
                    st.integers(0, 3),
                    st.integers(0, 50),
                    st.integers(0, 10),
                ),
            )

        return strategy.flatmap(hostile)
