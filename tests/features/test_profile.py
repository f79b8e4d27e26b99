"""A column's reference bins and shares, and a window counted into the same bins."""

import pytest

from features.profile import OTHER, column_profile, window_shares


def test_a_number_is_binned_at_the_deciles_of_the_test_part(free_text_spec):
    age = free_text_spec.column("age")
    profile = column_profile(age, [*range(1, 11), None])
    # numpy's linear quantiles of 1..10 at 0.1, ..., 0.9 are 1 + 9p: 1.9, 2.8, ..., 9.1
    assert profile["edges"] == pytest.approx([1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1])
    assert profile["bins"][:2] == ["< 1.9", "1.9 to < 2.8"] and profile["bins"][-1] == ">= 9.1"
    assert profile["shares"] == pytest.approx([0.1] * 10)
    assert profile["missing"] == pytest.approx(1 / 11) and profile["n"] == 11
    shares, missing, given = window_shares(age, profile, [1.0, 1.0, 10.0, None])
    assert shares == pytest.approx([2 / 3, *[0.0] * 8, 1 / 3]) and missing == 0.25 and given == 3


def test_a_number_with_few_values_keeps_one_bin_per_distinct_cut(free_text_spec):
    profile = column_profile(free_text_spec.column("age"), [1.0] * 5 + [2.0] * 5)
    # deciles 1, 1, 1, 1, 1.5, 2, 2, 2, 2: cuts 1.5 and 2 (the lowest value starts the first bin)
    assert profile["edges"] == [1.5, 2.0] and profile["bins"] == ["< 1.5", "1.5 to < 2", ">= 2"]
    assert profile["shares"] == [0.5, 0.0, 0.5]


def test_levels_are_matched_as_files_are_read_and_free_text_keeps_an_other_bin(free_text_spec):
    offence, employed, employer = (free_text_spec.column(n) for n in ("offence", "employed", "employer"))
    declared = column_profile(offence, ["violent", " Violent ", "property", None])
    assert declared["bins"] == ["violent", "property", "other"]
    assert declared["shares"] == pytest.approx([2 / 3, 1 / 3, 0.0]) and declared["missing"] == 0.25
    assert column_profile(employed, [True, False, False, False])["shares"] == [0.25, 0.75]
    free = column_profile(employer, ["a", "b", "a", None])
    assert free["bins"] == ["a", "b", OTHER] and free["shares"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    # a value the test part never held is counted in OTHER
    assert window_shares(employer, free, ["c", "a"])[0] == [0.5, 0.0, 0.5]


def test_a_window_without_values_has_no_shares(free_text_spec):
    offence = free_text_spec.column("offence")
    profile = column_profile(offence, ["violent"])
    assert window_shares(offence, profile, [None, None]) == ([0.0, 0.0, 0.0], 1.0, 0)
    assert window_shares(offence, profile, []) == ([0.0, 0.0, 0.0], 0.0, 0)


def test_a_number_that_never_varies_or_is_never_given_has_one_bin(free_text_spec):
    """No cut to make: one bin holds every value, and a window's values all count in it."""
    age = free_text_spec.column("age")
    constant = column_profile(age, [30.0] * 4 + [None])
    assert (constant["edges"], constant["bins"], constant["shares"]) == ([], ["all values"], [1.0])
    assert window_shares(age, constant, [18.0, 90.0]) == ([1.0], 0.0, 2)
    empty = column_profile(age, [None, None])
    assert (empty["bins"], empty["shares"], empty["missing"]) == (["all values"], [0.0], 1.0)
