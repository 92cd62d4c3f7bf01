"""MERCADOLIBRE_PUBLICATION_RULES parsing: defaults, both shapes, and every malformed value as a clear error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ml_images.catalog.rules import (
    DEFAULT_PUBLICATION_RULES,
    PublicationRules,
    normalize_category,
    parse_publication_rules,
)
from ml_images.errors import ConfigurationError


def test_unset_means_the_three_original_rules() -> None:
    rules = parse_publication_rules(None)
    assert dict(rules) == {"NOTEBOOK": Decimal(1000), "MONITOR": Decimal(0), "COMPUTER": Decimal(500)}
    assert rules == DEFAULT_PUBLICATION_RULES
    assert parse_publication_rules("   ") == DEFAULT_PUBLICATION_RULES


def test_empty_object_means_no_rules() -> None:
    rules = parse_publication_rules("{}")
    assert len(rules) == 0
    assert not rules.matches("NOTEBOOK", Decimal(5000))


def test_both_shapes_and_normalised_keys() -> None:
    rules = parse_publication_rules('{" notebook ": {"price_threshold": 999.5}, "Monitor": 0, "tv": 12}')
    assert dict(rules) == {"NOTEBOOK": Decimal("999.5"), "MONITOR": Decimal(0), "TV": Decimal(12)}
    assert rules.matches("\tNoteBook  ", Decimal("999.50"))
    assert not rules.matches("NOTEBOOK", Decimal("999.49"))
    assert not rules.matches("NOTEBOOKS", Decimal(5000))
    assert not rules.matches(None, Decimal(5000))
    assert not rules.matches("TV", None)


def test_category_match_is_exact_not_a_prefix() -> None:
    rules = parse_publication_rules('{"Car": 10}')
    assert rules.matches("car", Decimal(10))
    assert not rules.matches("Cartoons", Decimal(10_000))
    assert not rules.matches("Ca", Decimal(10_000))


def test_normalisation_folds_accented_letters_but_keeps_multi_char_upper_cases() -> None:
    assert normalize_category("  cámaras\n") == "CÁMARAS"
    # PostgreSQL's upper() leaves "ß" alone; so does the Python side, so both backends agree.
    assert normalize_category("straße") == "STRAßE"
    assert normalize_category(None) is None


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"NOTEBOOK": -1}', "must be >= 0"),
        ('{"NOTEBOOK": {"price_threshold": -0.01}}', "must be >= 0"),
        ('{"NOTEBOOK": "cheap"}', "must be a number"),
        ('{"NOTEBOOK": "1000"}', "must be a number"),
        ('{"NOTEBOOK": true}', "must be a number"),
        ('{"NOTEBOOK": null}', "must be a number"),
        ('{"NOTEBOOK": {"price_threshold": "x"}}', "must be a number"),
        ('{"NOTEBOOK": {"price_treshold": 10}}', "exactly the key 'price_threshold'"),
        ('{"NOTEBOOK": {"price_threshold": 10, "extra": 1}}', "exactly the key 'price_threshold'"),
        ('{"NOTEBOOK": NaN}', "NaN is not a valid price threshold"),
        ('{"NOTEBOOK": Infinity}', "Infinity is not a valid price threshold"),
        ('[["NOTEBOOK", 1000]]', "must be a JSON object"),
        ("1000", "must be a JSON object"),
        ('{"  ": 10}', "blank"),
        ('{"NOTEBOOK": 1, "NOTEBOOK": 2}', "appears twice"),
        ('{"NOTEBOOK": 1, " notebook": 2}', "normalise to the same"),
    ],
)
def test_malformed_rules_are_a_configuration_error_naming_the_variable(raw: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_publication_rules(raw)
    message = str(info.value)
    assert "MERCADOLIBRE_PUBLICATION_RULES" in message
    assert fragment in message


def test_publication_rules_mapping_is_read_only_and_validated() -> None:
    rules = PublicationRules({"a": 1})
    assert rules["A"] == Decimal(1)
    assert rules.threshold_for(" a ") == Decimal(1)
    assert "PublicationRules" in repr(rules)
    with pytest.raises(ValueError, match=">= 0"):
        PublicationRules({"a": -1})
    with pytest.raises(ValueError, match="non-blank"):
        PublicationRules({" ": 1})
