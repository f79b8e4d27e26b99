import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils import estimator_checks

from features.encoder import RecordEncoder
from features.spec import DatasetSpec
from features.validation import validate_records


@pytest.fixture(scope="module")
def typed(synthetic_raw, spec):
    frame, report = validate_records(synthetic_raw, spec)
    assert report.ok
    return frame


def test_release_time_set_has_no_protected_or_supervision_input(typed, spec):
    names = list(RecordEncoder(spec).fit(typed).get_feature_names_out())
    derived = [d.name for d in spec.derived]
    assert "Race" not in names
    assert {spec.column(n).known for n in names if n not in derived} == {"release"}
    assert names == spec.inputs() + derived


def test_supervision_inputs_only_when_asked(typed, spec):
    names = RecordEncoder(spec, known=("release", "supervision")).fit(typed).get_feature_names_out()
    assert "Percent_Days_Employed" in names
    assert "Race" not in names


def test_exclude_drops_a_needs_sources(typed, spec):
    names = RecordEncoder(spec, exclude=spec.need("treatment").sources).fit(typed).get_feature_names_out()
    assert "Condition_MH_SA" not in names


def test_encoding_by_kind(typed, spec):
    X = RecordEncoder(spec).fit_transform(typed)
    assert all(pd.api.types.is_float_dtype(X[c]) for c in X)
    felony = spec.column("Prior_Arrest_Episodes_Felony").order
    assert X["Prior_Arrest_Episodes_Felony"].tolist() == [
        float(felony.index(v)) for v in typed["Prior_Arrest_Episodes_Felony"]
    ]
    assert set(X["Gang_Affiliated"].dropna()) <= {0.0, 1.0}
    women = (typed["Gender"] == "F").to_numpy()
    assert X.loc[women, "Gang_Affiliated"].isna().all()
    assert set(X["Gender"]) == {0.0, 1.0}


def test_missing_and_unseen_categories_become_nan(typed, spec):
    encoder = RecordEncoder(spec).fit(typed)
    odd = typed.head(2).copy()
    odd["Prison_Offense"] = pd.Series(["Piracy", pd.NA], index=odd.index, dtype="str")
    assert encoder.transform(odd)["Prison_Offense"].isna().all()


def test_text_records_encode_like_typed_ones(typed, synthetic_raw, spec):
    encoder = RecordEncoder(spec).fit(typed)
    pd.testing.assert_frame_equal(encoder.transform(synthetic_raw), encoder.transform(typed))


def test_fit_names_missing_inputs(typed, spec):
    with pytest.raises(ValueError, match="records lack input columns: Gender"):
        RecordEncoder(spec).fit(typed.drop(columns=["Gender"]))


def test_always_given_lists_the_inputs_no_fitted_record_left_out(typed, spec):
    """What a score must warn of when a record leaves one out: the models never saw it missing."""
    encoder = RecordEncoder(spec).fit(typed)
    assert encoder.always_given_ == [name for name in spec.inputs() if typed[name].notna().all()]
    assert {"Gang_Affiliated", "Prison_Offense"}.isdisjoint(encoder.always_given_)
    assert "Prior_Arrest_Episodes_Felony" in encoder.always_given_
    once_missing = typed.copy()
    once_missing.loc[once_missing.index[7], "Prior_Arrest_Episodes_Felony"] = pd.NA
    refitted = RecordEncoder(spec).fit(once_missing)
    assert set(encoder.always_given_) - set(refitted.always_given_) == {"Prior_Arrest_Episodes_Felony"}


def test_unseen_codes_list_the_allowed_values_no_fitted_record_held(typed, spec):
    """A declared value training never saw is encoded by its place, which no tree learned from."""
    assert RecordEncoder(spec).fit(typed).unseen_codes_ == {}
    encoder = RecordEncoder(spec).fit(typed[typed["Prison_Offense"] != "Other"])
    assert encoder.unseen_codes_ == {"Prison_Offense": [encoder.encode_value("Prison_Offense", "Other")]}


def test_numeric_ranges_hold_each_number_inputs_lowest_and_highest_fitted_value(typed, spec):
    score = typed["Supervision_Risk_Score_First"]
    ranges = RecordEncoder(spec).fit(typed[score.between(3, 8) | score.isna()]).numeric_ranges_
    assert ranges == {"Supervision_Risk_Score_First": (3.0, 8.0)}


def test_changing_race_changes_nothing(typed, spec):
    encoder = RecordEncoder(spec).fit(typed)
    flipped = typed.assign(Race=np.where(typed["Race"] == "BLACK", "WHITE", "BLACK"))
    pd.testing.assert_frame_equal(encoder.transform(flipped), encoder.transform(typed))


# sklearn's checks that need no data: the others fit on generated numeric arrays, and the encoder
# reads only a DataFrame of the spec's records, so their contract is checked on records below.
API_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_estimators_unfitted",
]


@pytest.mark.parametrize("check", API_CHECKS)
def test_sklearn_api_checks(check, spec):
    getattr(estimator_checks, check)("RecordEncoder", RecordEncoder(spec))


def test_sklearn_contract_on_records(typed, spec):
    """What sklearn's data checks ask, on records: fit returns self, changes no parameter, sets only
    learned attributes, gives the same encoding again, leaves state alone in transform and pickles."""
    encoder = RecordEncoder(spec, exclude=("Gender",))
    params = encoder.get_params()
    public = set(vars(encoder))
    assert encoder.fit(typed) is encoder
    assert encoder.get_params() == params
    assert encoder.n_features_in_ == typed.shape[1] and list(encoder.feature_names_in_) == list(typed.columns)
    assert all(name.endswith("_") for name in set(vars(encoder)) - public)
    first = encoder.transform(typed)
    state = dict(vars(encoder))
    pd.testing.assert_frame_equal(encoder.fit(typed).transform(typed), first)
    assert vars(encoder).keys() == state.keys()
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(encoder)).transform(typed), first)
    pd.testing.assert_frame_equal(RecordEncoder(spec, exclude=("Gender",)).fit_transform(typed), first)
    assert clone(encoder).get_params()["exclude"] == ("Gender",)


def test_fitting_no_records_is_refused(typed, spec):
    with pytest.raises(ValueError, match="needs at least one record to fit; got 0"):
        RecordEncoder(spec).fit(typed.iloc[:0])


def test_feature_names_out_refuses_other_input_features(typed, spec):
    encoder = RecordEncoder(spec).fit(typed)
    names = encoder.get_feature_names_out()
    np.testing.assert_array_equal(encoder.get_feature_names_out(list(typed.columns)), names)
    with pytest.raises(ValueError, match="input_features must be None or the columns fit was given"):
        encoder.get_feature_names_out(["a", "b"])


def test_tags_say_records_hold_text_categories_and_missing_cells(spec):
    tags = RecordEncoder(spec).__sklearn_tags__().input_tags
    assert tags.string and tags.categorical and tags.allow_nan


def test_unfitted_encoder_refuses(typed, spec):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RecordEncoder(spec).transform(typed)
    with pytest.raises(NotFittedError):
        RecordEncoder(spec).encode_record(typed.iloc[0].to_dict())
    with pytest.raises(NotFittedError):
        RecordEncoder(spec).get_feature_names_out()


def test_one_record_encodes_like_the_frame(typed, synthetic_raw, spec):
    encoder = RecordEncoder(spec).fit(typed)
    frame = encoder.transform(synthetic_raw.head(50))
    for i, record in enumerate(synthetic_raw.head(50).to_dict("records")):
        np.testing.assert_array_equal(encoder.encode_record(record), frame.iloc[i].to_numpy())


def test_whole_number_floats_encode_like_validation_reads_them(typed, synthetic_raw, spec):
    encoder = RecordEncoder(spec).fit(typed)
    record = synthetic_raw.iloc[0].to_dict()
    as_ints = record | {"Prior_Arrest_Episodes_Felony": "1", "Condition_Other": "0", "Residence_PUMA": "3"}
    as_floats = record | {
        "Prior_Arrest_Episodes_Felony": "1.0",
        "Condition_Other": "0.0",
        "Residence_PUMA": "3.0",
    }
    expected = encoder.encode_record(as_ints)
    assert not np.isnan(expected[encoder.get_feature_names_out() == "Residence_PUMA"]).any()
    np.testing.assert_array_equal(encoder.encode_record(as_floats), expected)
    np.testing.assert_array_equal(encoder.transform(pd.DataFrame([as_floats])).iloc[0].to_numpy(), expected)


def test_derived_inputs_follow_their_declared_operations(typed, spec):
    X = RecordEncoder(spec).fit_transform(typed)
    arrests = X["Prior_Arrest_Episodes_Felony"] + X["Prior_Arrest_Episodes_Misd"]
    np.testing.assert_allclose(X["Prior_Arrests_Total"], arrests)
    convictions = X["Prior_Conviction_Episodes_Felony"] + X["Prior_Conviction_Episodes_Misd"]
    np.testing.assert_allclose(X["Convictions_per_Arrest"], convictions / (arrests + 1))
    np.testing.assert_allclose(
        X["Risk_Score_minus_Age_Band"], X["Supervision_Risk_Score_First"] - X["Age_at_Release"]
    )


def test_derived_inputs_drop_out_with_their_sources(typed, spec):
    names = RecordEncoder(spec, exclude=["Prior_Arrest_Episodes_Misd"]).fit(typed).get_feature_names_out()
    assert "Prior_Arrests_Total" not in names
    assert "Convictions_per_Arrest" not in names
    assert "Prior_Convictions_Total" in names


def test_a_ratio_over_zero_is_missing_not_infinite(typed, spec):
    layout = spec.model_dump(by_alias=True, exclude_none=True)
    layout["derived"].append(
        {
            "name": "Felony_Convictions_per_Felony_Arrest",
            "domain": "criminal_history",
            "op": "ratio",
            "of": ["Prior_Conviction_Episodes_Felony", "Prior_Arrest_Episodes_Felony"],
            "offset": 0,
        }
    )
    with_ratio = DatasetSpec.model_validate(layout)
    encoder = RecordEncoder(with_ratio).fit(typed)
    rows = typed.iloc[:4].copy()  # 1 conviction over 0 arrests would be infinite
    rows["Prior_Conviction_Episodes_Felony"] = "1"
    rows["Prior_Arrest_Episodes_Felony"] = ["0", "0", "2", "4"]
    ratio = encoder.transform(rows)["Felony_Convictions_per_Felony_Arrest"]
    np.testing.assert_array_equal(ratio.to_numpy(), [np.nan, np.nan, 0.5, 0.25])
    assert np.isnan(encoder.encode_record(rows.iloc[0].to_dict())[-1])


@pytest.mark.parametrize("parameter", ["known", "exclude"])
def test_a_bare_string_is_refused_not_read_as_letters(typed, spec, parameter):
    """exclude="Gender" would exclude the letters G, e, n, ... and keep Gender as an input."""
    with pytest.raises(TypeError, match=f"{parameter} must be a list of names, such as"):
        RecordEncoder(spec, **{parameter: "Gender" if parameter == "exclude" else "release"}).fit(typed)


def test_transform_refuses_what_fit_refuses(typed, spec):
    encoder = RecordEncoder(spec).fit(typed)
    with pytest.raises(TypeError, match="needs a pandas DataFrame of records with named columns"):
        encoder.transform(typed.to_numpy())
    with pytest.raises(ValueError, match=r"^records lack input columns: Gender$"):
        encoder.transform(typed.drop(columns=["Gender"]))


def test_parameters_that_select_no_input_are_refused_when_fitting(typed, spec):
    """A misspelt time would otherwise be dropped silently, and no input would fit a model of nothing."""
    with pytest.raises(
        ValueError, match=r"^known must list 'release' and/or 'supervision', got \['parole'\]$"
    ):
        RecordEncoder(spec, known=["release", "parole"]).fit(typed)
    with pytest.raises(
        ValueError, match=r"^no input columns left after selecting by known time and exclusions$"
    ):
        RecordEncoder(spec, exclude=spec.inputs()).fit(typed)
    with pytest.raises(ValueError, match=r"^RecordEncoder needs a spec$"):
        RecordEncoder().fit(typed)


def test_free_text_seen_in_fit_is_never_unseen_in_transform(free_text_raw, free_text_spec):
    """Unvalidated text may carry spaces and case; transform reads a value stripped and in lower case,
    so fit must learn it the same way, or fit_transform would call its own values unseen."""
    raw = free_text_raw.head(4).assign(employer=[" Acme ", "Bolt", " Acme ", "Bolt"])
    X = RecordEncoder(free_text_spec).fit_transform(raw)
    assert X["employer"].notna().all()
    assert X["employer"].nunique() == 2


def test_a_record_leaving_values_out_as_none_encodes_them_as_missing(typed, spec):
    """A JSON null reaches encode_record as None: a number left out is missing, not float(None), and a
    category left out is missing, not the level a None would spell ("none")."""
    none_spec = DatasetSpec.model_validate(
        {
            "name": "nulls",
            "id": "pid",
            "outcome": {"column": "rearrested", "horizon_years": 2},
            "risk_bands": {"cut_points": [0.5], "labels": ["low", "high"]},
            "columns": [
                {"name": "age", "kind": "numeric", "domain": "d"},
                {"name": "housing", "kind": "categorical", "domain": "d", "values": ["None", "Rented"]},
            ],
        }
    )
    raw = pd.DataFrame(
        {"pid": ["1", "2"], "rearrested": ["No", "Yes"], "age": ["30", "40"], "housing": ["None", "Rented"]}
    )
    records, report = validate_records(raw, none_spec)
    assert report.ok, report.lines()
    encoder = RecordEncoder(none_spec).fit(records)
    np.testing.assert_array_equal(encoder.encode_record({"age": None, "housing": None}), [np.nan, np.nan])
    np.testing.assert_array_equal(encoder.encode_record({"age": 30, "housing": "None"}), [30.0, 0.0])


def test_each_derived_operation_adds_its_offset_as_the_spec_format_says(typed, spec):
    """docs/spec-format.md: sum a + b + offset, product a * b + offset, difference a - b + offset,
    ratio a / (b + offset); the built-in spec's derived inputs have offsets only for ratios."""
    layout = spec.model_dump(by_alias=True, exclude_none=True)
    of = ["Prior_Arrest_Episodes_Felony", "Prior_Arrest_Episodes_Misd"]
    layout["derived"] += [
        {"name": f"offset_{op}", "domain": "criminal_history", "op": op, "of": of, "offset": 2.5}
        for op in ("sum", "product", "difference", "ratio")
    ]
    encoder = RecordEncoder(DatasetSpec.model_validate(layout)).fit(typed)
    X = encoder.transform(typed.iloc[:50])
    a, b = X[of[0]], X[of[1]]
    np.testing.assert_allclose(X["offset_sum"], a + b + 2.5)
    np.testing.assert_allclose(X["offset_product"], a * b + 2.5)
    np.testing.assert_allclose(X["offset_difference"], a - b + 2.5)
    np.testing.assert_allclose(X["offset_ratio"], a / (b + 2.5))
    np.testing.assert_array_equal(encoder.encode_record(typed.iloc[0].to_dict())[-4:], X.iloc[0, -4:])
