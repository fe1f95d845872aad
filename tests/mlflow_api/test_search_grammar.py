"""MLflow's search grammar, without a database."""

import pytest

from mlflow_api.search import (
    MAX_OFFSET,
    Clause,
    SearchError,
    decode_page_token,
    encode_page_token,
    like_lookup,
    parse_filter,
    parse_order_by,
)

ATTRS = {"name", "run_id"}


def test_name_like_and_tag_equality_parse_into_clauses():
    clauses = parse_filter("name LIKE 'churn%' AND tags.team = \"risk\"", ATTRS)
    assert clauses == [
        Clause("attribute", "name", "LIKE", "churn%"),
        Clause("tag", "team", "=", "risk"),
    ]


def test_backquoted_tag_keys_and_in_lists_parse():
    clauses = parse_filter("tags.`my key` != 'x' and run_id IN ('a', 'b')", ATTRS)
    assert clauses == [
        Clause("tag", "my key", "!=", "x"),
        Clause("attribute", "run_id", "IN", ("a", "b")),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "owner = 'x'",  # unknown attribute
        "name = 'a' OR name = 'b'",  # OR is not MLflow's
        "name ~ 'a'",
        "name = ",
        "name IN 'a'",
        "name = 'unterminated",
    ],
)
def test_malformed_filters_are_refused(text):
    with pytest.raises(SearchError):
        parse_filter(text, ATTRS)


def test_order_by_maps_columns_and_directions():
    columns = {"name": "name", "last_updated_timestamp": "updated_at"}
    assert parse_order_by(["last_updated_timestamp DESC", "name"], columns) == [
        "-updated_at",
        "name",
    ]
    with pytest.raises(SearchError):
        parse_order_by(["owner ASC"], columns)
    with pytest.raises(SearchError):
        parse_order_by(["name SIDEWAYS"], columns)


def test_page_tokens_round_trip_and_forgeries_are_refused():
    assert decode_page_token(encode_page_token(300)) == 300
    assert decode_page_token(None) == 0
    assert decode_page_token(encode_page_token(MAX_OFFSET)) == MAX_OFFSET
    for token in (
        "garbage",
        encode_page_token(-1),
        "eyJvZmZzZXQiOiAidHdvIn0=",
        encode_page_token(MAX_OFFSET + 1),
        encode_page_token(2**63),
    ):
        with pytest.raises(SearchError):
            decode_page_token(token)


def test_like_patterns_become_the_cheapest_lookup():
    assert like_lookup("churn%", insensitive=False) == ("startswith", "churn")
    assert like_lookup("%churn%", insensitive=True) == ("icontains", "churn")
    assert like_lookup("%churn", insensitive=False) == ("endswith", "churn")
    assert like_lookup("churn", insensitive=False) == ("exact", "churn")
    assert like_lookup("ch_rn%", insensitive=False) == ("regex", "^ch.rn.*$")
