"""The synthetic georgia_parole cohort: deterministic, in the real layout, learnable, realistic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from features.synth import generate_georgia_cohort

REAL_FILE = Path(__file__).resolve().parents[2].parent / "shared/data/nij/georgia_parole_2013_2015.csv"

HEADER = [
    "ID", "Gender", "Race", "Age_at_Release", "Residence_PUMA", "Gang_Affiliated",
    "Supervision_Risk_Score_First", "Supervision_Level_First", "Education_Level", "Dependents",
    "Prison_Offense", "Prison_Years", "Prior_Arrest_Episodes_Felony", "Prior_Arrest_Episodes_Misd",
    "Prior_Arrest_Episodes_Violent", "Prior_Arrest_Episodes_Property", "Prior_Arrest_Episodes_Drug",
    "Prior_Arrest_Episodes_PPViolationCharges", "Prior_Arrest_Episodes_DVCharges",
    "Prior_Arrest_Episodes_GunCharges", "Prior_Conviction_Episodes_Felony",
    "Prior_Conviction_Episodes_Misd", "Prior_Conviction_Episodes_Viol",
    "Prior_Conviction_Episodes_Prop", "Prior_Conviction_Episodes_Drug",
    "Prior_Conviction_Episodes_PPViolationCharges",
    "Prior_Conviction_Episodes_DomesticViolenceCharges", "Prior_Conviction_Episodes_GunCharges",
    "Prior_Revocations_Parole", "Prior_Revocations_Probation", "Condition_MH_SA",
    "Condition_Cog_Ed", "Condition_Other", "Violations_ElectronicMonitoring",
    "Violations_Instruction", "Violations_FailToReport", "Violations_MoveWithoutPermission",
    "Delinquency_Reports", "Program_Attendances", "Program_UnexcusedAbsences", "Residence_Changes",
    "Avg_Days_per_DrugTest", "DrugTests_THC_Positive", "DrugTests_Cocaine_Positive",
    "DrugTests_Meth_Positive", "DrugTests_Other_Positive", "Percent_Days_Employed",
    "Jobs_Per_Year", "Employment_Exempt", "Recidivism_Within_3years",
]  # fmt: skip

YES_NO = {"Yes", "No"}


def _counts(top: int, top_label: str) -> set[str]:
    return {str(i) for i in range(top)} | {top_label}


# Allowed values per categorical column, from the data README.
ALLOWED: dict[str, set[str]] = {
    "Gender": {"M", "F"},
    "Race": {"BLACK", "WHITE"},
    "Age_at_Release": {"18-22", "23-27", "28-32", "33-37", "38-42", "43-47", "48 or older"},
    "Residence_PUMA": {str(i) for i in range(1, 26)},
    "Gang_Affiliated": YES_NO,
    "Supervision_Risk_Score_First": {str(i) for i in range(1, 11)},
    "Supervision_Level_First": {"Standard", "High", "Specialized"},
    "Education_Level": {"Less than HS diploma", "High School Diploma", "At least some college"},
    "Dependents": _counts(3, "3 or more"),
    "Prison_Offense": {"Violent/Sex", "Violent/Non-Sex", "Property", "Drug", "Other"},
    "Prison_Years": {
        "Less than 1 year", "1-2 years", "Greater than 2 to 3 years", "More than 3 years"},
    "Prior_Arrest_Episodes_Felony": _counts(10, "10 or more"),
    "Prior_Arrest_Episodes_Misd": _counts(6, "6 or more"),
    "Prior_Arrest_Episodes_Violent": _counts(3, "3 or more"),
    "Prior_Arrest_Episodes_Property": _counts(5, "5 or more"),
    "Prior_Arrest_Episodes_Drug": _counts(5, "5 or more"),
    "Prior_Arrest_Episodes_PPViolationCharges": _counts(5, "5 or more"),
    "Prior_Arrest_Episodes_DVCharges": YES_NO,
    "Prior_Arrest_Episodes_GunCharges": YES_NO,
    "Prior_Conviction_Episodes_Felony": _counts(3, "3 or more"),
    "Prior_Conviction_Episodes_Misd": _counts(4, "4 or more"),
    "Prior_Conviction_Episodes_Viol": YES_NO,
    "Prior_Conviction_Episodes_Prop": _counts(3, "3 or more"),
    "Prior_Conviction_Episodes_Drug": _counts(2, "2 or more"),
    "Prior_Conviction_Episodes_PPViolationCharges": YES_NO,
    "Prior_Conviction_Episodes_DomesticViolenceCharges": YES_NO,
    "Prior_Conviction_Episodes_GunCharges": YES_NO,
    "Prior_Revocations_Parole": YES_NO,
    "Prior_Revocations_Probation": YES_NO,
    "Condition_MH_SA": YES_NO,
    "Condition_Cog_Ed": YES_NO,
    "Condition_Other": YES_NO,
    "Violations_ElectronicMonitoring": YES_NO,
    "Violations_Instruction": YES_NO,
    "Violations_FailToReport": YES_NO,
    "Violations_MoveWithoutPermission": YES_NO,
    "Delinquency_Reports": _counts(4, "4 or more"),
    "Program_Attendances": _counts(10, "10 or more"),
    "Program_UnexcusedAbsences": _counts(3, "3 or more"),
    "Residence_Changes": _counts(3, "3 or more"),
    "Employment_Exempt": YES_NO,
    "Recidivism_Within_3years": YES_NO,
}  # fmt: skip

# Numeric columns and their (low, high) bounds.
NUMERIC = {
    "Avg_Days_per_DrugTest": (0.0, 1100.0),
    "DrugTests_THC_Positive": (0.0, 1.0),
    "DrugTests_Cocaine_Positive": (0.0, 1.0),
    "DrugTests_Meth_Positive": (0.0, 1.0),
    "DrugTests_Other_Positive": (0.0, 1.0),
    "Percent_Days_Employed": (0.0, 1.0),
    "Jobs_Per_Year": (0.0, 10.0),
}

SOMETIMES_MISSING = {
    "Gang_Affiliated", "Supervision_Risk_Score_First", "Supervision_Level_First", "Prison_Offense",
    *NUMERIC,
}  # fmt: skip

SUPERVISION = [
    "Violations_ElectronicMonitoring", "Violations_Instruction", "Violations_FailToReport",
    "Violations_MoveWithoutPermission", "Delinquency_Reports", "Program_Attendances",
    "Program_UnexcusedAbsences", "Residence_Changes", *NUMERIC, "Employment_Exempt",
]  # fmt: skip
DRUG_TESTS = [column for column in NUMERIC if column.startswith("DrugTests_")]
VIOLATIONS = [column for column in SUPERVISION if column.startswith("Violations_")]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return generate_georgia_cohort(8000, seed=11)


def _number(cells: pd.Series) -> pd.Series:
    """Counts and shares as floats; "X or more" counts as X."""
    return pd.to_numeric(cells.str.replace(" or more", "", regex=False), errors="coerce")


def _yes(cells: pd.Series) -> pd.Series:
    return cells.map({"Yes": 1.0, "No": 0.0})


def _kleene_any(truths: list[pd.Series]) -> pd.Series:
    table = pd.concat(truths, axis=1)
    return pd.Series(
        np.where((table == 1).any(axis=1), 1.0, np.where((table == 0).all(axis=1), 0.0, np.nan)),
        index=table.index,
    )


def need_labels(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The six need labels (1/0, NaN when undecided) and the outcome."""
    employed, exempt = _number(frame["Percent_Days_Employed"]), _yes(frame["Employment_Exempt"])
    lacks_work = (employed < 0.5).astype(float).where(employed.notna())
    absences = _number(frame["Program_UnexcusedAbsences"])
    return {
        "outcome": _yes(frame["Recidivism_Within_3years"]),
        "employment": 1 - _kleene_any([1 - lacks_work, exempt]),
        "housing": (_number(frame["Residence_Changes"]) >= 2).astype(float),
        "substance_use": _kleene_any(
            [(_number(frame[c]) > 0).astype(float).where(frame[c].notna()) for c in DRUG_TESTS]
        ),
        "treatment": _yes(frame["Condition_MH_SA"]),
        "education": _yes(frame["Condition_Cog_Ed"]),
        "compliance": _kleene_any(
            [_yes(frame[c]) for c in VIOLATIONS] + [(absences >= 1).astype(float).where(absences.notna())]
        ),
    }


def release_auc(frame: pd.DataFrame, label: pd.Series, exclude: tuple[str, ...] = ()) -> float:
    """Test AUC of a one-hot logistic regression on the release-time columns."""
    dropped = ["ID", "Race", "Recidivism_Within_3years", *SUPERVISION, *exclude]
    inputs = frame.drop(columns=dropped).fillna("missing")
    known = label.notna()
    features = pd.get_dummies(inputs[known]).to_numpy(dtype=float)
    target = label[known].to_numpy(dtype=int)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.3, random_state=0, stratify=target
    )
    model = LogisticRegression(solver="liblinear").fit(x_train, y_train)
    return roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])


def distribution(cells: pd.Series, edges: np.ndarray | None = None) -> pd.Series:
    """Shares of each category, or of each bin between ``edges``, with "missing" as one more."""
    if edges is None:
        return cells.fillna("missing").value_counts(normalize=True)
    values = pd.to_numeric(cells)
    bins = np.searchsorted(edges, values.fillna(0.0), side="left").astype(str)
    return pd.Series(np.where(values.isna(), "missing", bins)).value_counts(normalize=True)


def total_variation(real: pd.Series, synthetic: pd.Series, numeric: bool) -> float:
    """TV distance; numeric columns are binned by the real column's unique decile edges."""
    edges = None
    if numeric:
        edges = np.unique(np.quantile(pd.to_numeric(real).dropna(), np.arange(1, 10) / 10))
    shares = pd.concat([distribution(real, edges), distribution(synthetic, edges)], axis=1)
    return float(shares.fillna(0.0).diff(axis=1).iloc[:, 1].abs().sum() / 2)


def test_same_seed_gives_the_same_cohort_and_bytes(tmp_path: Path) -> None:
    first, second = generate_georgia_cohort(500, seed=3), generate_georgia_cohort(500, seed=3)
    pd.testing.assert_frame_equal(first, second)
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_csv(tmp_path / "b.csv", index=False)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_other_seed_gives_another_cohort() -> None:
    assert not generate_georgia_cohort(500, seed=3).equals(generate_georgia_cohort(500, seed=4))


def test_columns_follow_the_real_header(cohort: pd.DataFrame) -> None:
    assert list(cohort.columns) == HEADER
    assert cohort["ID"].tolist() == [str(i) for i in range(1, len(cohort) + 1)]


def test_cells_are_text_or_missing(cohort: pd.DataFrame) -> None:
    for column in cohort:
        assert pd.api.types.is_string_dtype(cohort[column]), column
        assert all(isinstance(cell, str) for cell in cohort[column].dropna().unique()), column


def test_categorical_cells_take_allowed_values(cohort: pd.DataFrame) -> None:
    for column, allowed in ALLOWED.items():
        assert set(cohort[column].dropna().unique()) == allowed, column


def test_numeric_cells_are_floats_written_like_the_real_file(cohort: pd.DataFrame) -> None:
    for column, (low, high) in NUMERIC.items():
        cells = cohort[column].dropna()
        assert all(repr(float(cell)) == cell for cell in cells), column
        assert cells.str.fullmatch(r"\d+\.\d{1,9}").all(), column
        assert cells.astype(float).between(low, high).all(), column


def test_missing_cells_follow_the_real_patterns(cohort: pd.DataFrame) -> None:
    missing = cohort.isna()
    assert not missing.drop(columns=sorted(SOMETIMES_MISSING)).any().any()
    assert (missing["Gang_Affiliated"] == (cohort["Gender"] == "F")).all()
    for column in SOMETIMES_MISSING - {"Gang_Affiliated"}:
        assert 0.005 < missing[column].mean() < 0.3, column
    assert missing[DRUG_TESTS].nunique(axis=1).eq(1).all()
    no_jobs_record = missing["Jobs_Per_Year"]
    assert (cohort.loc[no_jobs_record, "Recidivism_Within_3years"] == "No").all()


def test_priors_grow_with_age(cohort: pd.DataFrame) -> None:
    many = (cohort["Prior_Arrest_Episodes_Felony"] == "10 or more").groupby(cohort["Age_at_Release"]).mean()
    assert many["18-22"] < many["28-32"] < many["38-42"] < many["43-47"]


def test_race_and_drivers_shape_inputs_and_conditions(cohort: pd.DataFrame) -> None:
    black = cohort["Race"] == "BLACK"
    meth = _number(cohort["DrugTests_Meth_Positive"]) > 0
    assert meth[~black].mean() > meth[black].mean()
    gang = cohort["Gang_Affiliated"] == "Yes"
    assert gang[black].mean() > gang[~black].mean()
    mh_sa = cohort["Condition_MH_SA"] == "Yes"
    drug_priors = _number(cohort["Prior_Arrest_Episodes_Drug"])
    assert mh_sa[drug_priors >= 3].mean() > mh_sa[drug_priors == 0].mean() + 0.1
    cog_ed = cohort["Condition_Cog_Ed"] == "Yes"
    short_stay = cohort["Prison_Years"] == "Less than 1 year"
    assert cog_ed[~short_stay].mean() > cog_ed[short_stay].mean() + 0.2


@pytest.mark.parametrize(
    ("label", "exclude"),
    [
        ("outcome", ()),
        ("employment", ()),
        ("housing", ()),
        ("substance_use", ()),
        ("treatment", ("Condition_MH_SA",)),
        ("education", ("Condition_Cog_Ed",)),
        ("compliance", ()),
    ],
)
def test_release_columns_predict_outcome_and_needs_moderately(
    cohort: pd.DataFrame, label: str, exclude: tuple[str, ...]
) -> None:
    auc = release_auc(cohort, need_labels(cohort)[label], exclude)
    assert 0.65 <= auc <= 0.80, f"{label}: AUC {auc:.3f}"


@pytest.mark.real_data
def test_marginals_resemble_the_real_data() -> None:
    if not REAL_FILE.is_file():
        pytest.skip(f"../shared/data/nij not present: {REAL_FILE} is absent")
    real = pd.read_csv(REAL_FILE, dtype=str, keep_default_na=False, na_values=[""])
    synthetic = generate_georgia_cohort(20000, seed=0)
    assert list(real.columns) == HEADER
    distances = {
        column: total_variation(real[column], synthetic[column], column in NUMERIC) for column in HEADER[1:]
    }
    worst = max(distances, key=distances.get)
    assert distances[worst] <= 0.10, f"{worst}: TV {distances[worst]:.3f}"
