from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dayzero.core.schema import Entities, SchemaError
from dayzero.core.templates import (
    FieldSpec,
    Template,
    entity_template,
    format_value,
    is_missing,
    serialize_row,
)


@pytest.mark.parametrize("value", [None, float("nan"), np.nan, "", " ", "?", "N/A", [], pd.NA])
def test_missing_values_are_recognised(value):
    assert is_missing(value)


@pytest.mark.parametrize("value", [0, 0.0, "0", False, ["a"]])
def test_present_values_are_not_missing(value):
    assert not is_missing(value)


def test_format_value():
    assert format_value(1169) == "1,169"
    assert format_value(2.50) == "2.5"
    assert format_value(3.0) == "3"
    assert format_value(1234.5678) == "1,234.57"
    assert format_value(True) == "yes"
    assert format_value(["Crime", None, "Drama"]) == "Crime, Drama"
    assert format_value("  two   words ") == "two words"


def test_list_style_keeps_order_labels_units_and_skips_missing():
    t = Template(
        [
            FieldSpec("title"),
            FieldSpec("runtime", unit="min"),
            "plot",
            FieldSpec("genres", label="Genre"),
        ],
        prefix="A movie.",
    )
    text = t.render({"genres": ["Drama"], "plot": math.nan, "title": "Heat", "runtime": 170})
    assert text == "A movie. Title: Heat | Runtime: 170 min | Genre: Drama"


def test_sentences_style_matches_tabllm_serialisation():
    record = {"checking_account": "< 0 DM", "credit_amount": 1169, "purpose": "?"}
    text = serialize_row(record, units={"credit_amount": "DM"})
    assert text == "The checking account is < 0 DM. The credit amount is 1,169 DM."


def test_max_chars_truncates_long_text_at_a_word():
    t = Template([FieldSpec("plot", max_chars=12)])
    assert t.render({"plot": "one two three four"}) == "Plot: one two ..."


def test_template_roundtrip(tmp_path):
    t = Template([FieldSpec("a", unit="DM", prefix="$"), "b"], style="sentences", decimals=1)
    t.save(tmp_path / "template.json")
    again = Template.load(tmp_path / "template.json")
    record = {"a": 1.25, "b": "x"}
    assert again.render(record) == t.render(record)


def test_render_entities_and_for_entities():
    ents = Entities(
        pd.DataFrame({"title": ["x", "y"], "year": [1999, None]}, index=[10, 20]),
        {"title": "text", "year": "numeric"},
    )
    texts = Template.for_entities(ents).render_entities(ents)
    assert texts == {10: "Title: x | Year: 1,999", 20: "Title: y"}
    plain_year = Template(["title", FieldSpec("year", thousands=False)])
    assert plain_year.render_entities(ents)[10] == "Title: x | Year: 1999"


def test_bad_template_arguments():
    with pytest.raises(SchemaError, match="style"):
        Template(["a"], style="prose")
    with pytest.raises(SchemaError, match="unique"):
        Template(["a", "a"])


def test_entity_template_uses_the_spec_or_every_typed_field():
    ents = Entities(
        pd.DataFrame({"plot": ["x " * 400], "year": [1999]}, index=[1]),
        {"plot": "text", "year": "numeric"},
    )
    default = entity_template(None, ents)
    text = default.render(ents.record(1))
    assert text.startswith("Plot: x") and text.endswith("Year: 1999") and "..." in text
    spec = Template([FieldSpec("year", thousands=False)]).to_dict()
    assert entity_template(spec, ents).render(ents.record(1)) == "Year: 1999"
    assert entity_template(None, None).render({"a": 1}) == ""


def test_with_field_appends_a_field_and_keeps_existing_renders():
    template = Template(["title"], style="sentences", prefix="A film.")
    wider = template.with_field(FieldSpec("text", max_chars=5))
    assert wider.render({"title": "Heat"}) == template.render({"title": "Heat"})
    assert "The text is a" in wider.render({"title": "Heat", "text": "a heist story"})
    assert (wider.style, wider.prefix) == ("sentences", "A film.")
    assert wider.with_field("text") is wider
