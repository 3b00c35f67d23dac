"""Argument checks shared across layers: every error names the argument and what was given."""

from __future__ import annotations

import numpy as np
import pytest

from dayzero.core.checks import positive_int, text_list


@pytest.mark.parametrize("value", [0, -3, True, 2.0, "3", None])
def test_positive_int_refuses_what_is_not_an_int_of_at_least_one(value):
    with pytest.raises(ValueError, match=r"lora: `r` must be a positive int, got "):
        positive_int(value, "lora: `r`")


def test_positive_int_takes_numpy_integers_only_when_asked():
    assert positive_int(3, "k") == 3
    with pytest.raises(ValueError, match="k must be a positive int"):
        positive_int(np.int64(3), "k")
    value = positive_int(np.int64(3), "k", numpy_ints=True)
    assert value == 3 and type(value) is int


def test_text_list_refuses_one_string_and_names_a_bad_row():
    assert text_list(t for t in ("a", "b")) == ["a", "b"]
    with pytest.raises(TypeError, match="texts must be a list of str, got a single str"):
        text_list("abc")
    with pytest.raises(TypeError, match=r"queries\[1\] is int, expected str"):
        text_list(["a", 3], "queries")
