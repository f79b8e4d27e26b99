"""Seeded synthetic cohorts in the NIJ "georgia_parole" layout, the project's embedded default data.

The real records must never ship with the project, so the default data come from a latent-variable
model: standard-normal factors (criminal career, drug, property, violence, instability, ...) and
earlier columns drive each column through a probit score, which is cut at the real file's shares
or mapped through its quantiles, so marginals match while dependencies stay learnable.  Only
aggregate statistics of the real file informed the constants; no real row is used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.spec import load_spec

_NO_YES = ("No", "Yes")

# Real shares of each level among non-missing cells, levels lowest first.
_SHARES: dict[str, dict[str, float]] = {
    "Gender": {"F": 0.1236, "M": 0.8764},
    "Race": {"WHITE": 0.4279, "BLACK": 0.5721},
    "Age_at_Release": {"18-22": 0.0798, "23-27": 0.1997, "28-32": 0.1923, "33-37": 0.1663,
                       "38-42": 0.1163, "43-47": 0.0999, "48 or older": 0.1457},
    "Gang_Affiliated": {"No": 0.8271, "Yes": 0.1729},
    "Supervision_Risk_Score_First": {"1": 0.0308, "2": 0.0449, "3": 0.0805, "4": 0.1109,
                                     "5": 0.1396, "6": 0.1508, "7": 0.1407, "8": 0.1141,
                                     "9": 0.1009, "10": 0.0869},
    "Supervision_Level_First": {"Standard": 0.4157, "High": 0.2896, "Specialized": 0.2947},
    "Education_Level": {"Less than HS diploma": 0.3806, "High School Diploma": 0.4424,
                        "At least some college": 0.1771},
    "Dependents": {"0": 0.3118, "1": 0.2055, "2": 0.1789, "3 or more": 0.3038},
    "Prison_Offense": {"Violent/Sex": 0.0371, "Violent/Non-Sex": 0.2402, "Property": 0.367,
                       "Drug": 0.2311, "Other": 0.1245},
    "Prison_Years": {"Less than 1 year": 0.3111, "1-2 years": 0.3168,
                     "Greater than 2 to 3 years": 0.16, "More than 3 years": 0.2121},
    "Prior_Arrest_Episodes_Felony": {"0": 0.009, "1": 0.0875, "2": 0.0988, "3": 0.1079,
                                     "4": 0.106, "5": 0.0951, "6": 0.0835, "7": 0.0691,
                                     "8": 0.058, "9": 0.0451, "10 or more": 0.2401},
    "Prior_Arrest_Episodes_Misd": {"0": 0.1577, "1": 0.1359, "2": 0.1193, "3": 0.1027,
                                   "4": 0.0894, "5": 0.0746, "6 or more": 0.3204},
    "Prior_Arrest_Episodes_Violent": {"0": 0.4286, "1": 0.2801, "2": 0.1405, "3 or more": 0.1507},
    "Prior_Arrest_Episodes_Property": {"0": 0.2511, "1": 0.197, "2": 0.1491, "3": 0.1047,
                                       "4": 0.0724, "5 or more": 0.2257},
    "Prior_Arrest_Episodes_Drug": {"0": 0.3093, "1": 0.2154, "2": 0.1608, "3": 0.1188,
                                   "4": 0.076, "5 or more": 0.1197},
    "Prior_Arrest_Episodes_PPViolationCharges": {"0": 0.2574, "1": 0.1687, "2": 0.1333,
                                                 "3": 0.1068, "4": 0.0862, "5 or more": 0.2475},
    "Prior_Arrest_Episodes_DVCharges": {"No": 0.8341, "Yes": 0.1659},
    "Prior_Arrest_Episodes_GunCharges": {"No": 0.7345, "Yes": 0.2655},
    "Prior_Conviction_Episodes_Felony": {"0": 0.2906, "1": 0.2684, "2": 0.1716, "3 or more": 0.2694},
    "Prior_Conviction_Episodes_Misd": {"0": 0.2989, "1": 0.2106, "2": 0.1508, "3": 0.1059,
                                       "4 or more": 0.2338},
    "Prior_Conviction_Episodes_Viol": {"No": 0.6767, "Yes": 0.3233},
    "Prior_Conviction_Episodes_Prop": {"0": 0.4316, "1": 0.2283, "2": 0.1281, "3 or more": 0.212},
    "Prior_Conviction_Episodes_Drug": {"0": 0.4861, "1": 0.2512, "2 or more": 0.2628},
    "Prior_Conviction_Episodes_PPViolationCharges": {"No": 0.6714, "Yes": 0.3286},
    "Prior_Conviction_Episodes_DomesticViolenceCharges": {"No": 0.9184, "Yes": 0.0816},
    "Prior_Conviction_Episodes_GunCharges": {"No": 0.8654, "Yes": 0.1346},
    "Prior_Revocations_Parole": {"No": 0.9047, "Yes": 0.0953},
    "Prior_Revocations_Probation": {"No": 0.8551, "Yes": 0.1449},
    "Condition_MH_SA": {"No": 0.3392, "Yes": 0.6608},
    "Condition_Cog_Ed": {"No": 0.5561, "Yes": 0.4439},
    "Condition_Other": {"No": 0.6744, "Yes": 0.3256},
    "Violations_ElectronicMonitoring": {"No": 0.9263, "Yes": 0.0737},
    "Violations_Instruction": {"No": 0.8274, "Yes": 0.1726},
    "Violations_FailToReport": {"No": 0.9245, "Yes": 0.0755},
    "Violations_MoveWithoutPermission": {"No": 0.8831, "Yes": 0.1169},
    "Delinquency_Reports": {"0": 0.6789, "1": 0.0476, "2": 0.0537, "3": 0.0487, "4 or more": 0.171},
    "Program_Attendances": {"0": 0.5289, "1": 0.0394, "2": 0.0322, "3": 0.0252, "4": 0.0311,
                            "5": 0.0444, "6": 0.1098, "7": 0.032, "8": 0.0178, "9": 0.0161,
                            "10 or more": 0.1231},
    "Program_UnexcusedAbsences": {"0": 0.8058, "1": 0.0647, "2": 0.0455, "3 or more": 0.084},
    "Residence_Changes": {"0": 0.5154, "1": 0.2457, "2": 0.1279, "3 or more": 0.111},
    "Employment_Exempt": {"No": 0.8699, "Yes": 0.1301},
    "Recidivism_Within_3years": {"No": 0.4247, "Yes": 0.5753},
}  # fmt: skip

# PUMA of residence: share of the cohort, share BLACK, and two local effects on the probit
# scale beyond race: supervision-office strictness (violations) and job market (employment).
_PUMA = {
    1: (0.0323, 0.69, 0.03, 0.10),
    2: (0.0419, 0.69, 0.01, -0.06),
    3: (0.0519, 0.56, 0.19, -0.03),
    4: (0.0614, 0.64, 0.09, -0.03),
    5: (0.044, 0.75, 0.23, -0.14),
    6: (0.0436, 0.88, -0.15, -0.02),
    7: (0.0462, 0.55, 0.09, 0.07),
    8: (0.0654, 0.70, 0.01, 0.06),
    9: (0.0248, 0.64, 0.09, -0.07),
    10: (0.0232, 0.74, 0.07, -0.12),
    11: (0.0415, 0.80, 0.03, -0.19),
    12: (0.0425, 0.37, -0.05, 0.13),
    13: (0.0111, 0.14, -0.05, 0.19),
    14: (0.0525, 0.46, 0.03, 0.10),
    15: (0.0275, 0.57, -0.26, 0.12),
    16: (0.04, 0.30, 0.10, 0.14),
    17: (0.0678, 0.15, -0.30, 0.14),
    18: (0.0387, 0.65, -0.17, -0.16),
    19: (0.0413, 0.76, 0.10, -0.10),
    20: (0.0509, 0.72, -0.11, 0.01),
    21: (0.0262, 0.70, -0.01, 0.01),
    22: (0.0351, 0.49, 0.20, 0.20),
    23: (0.0199, 0.75, 0.10, -0.28),
    24: (0.0327, 0.15, -0.16, 0.01),
    25: (0.0374, 0.42, -0.11, -0.10),
}

# Real quantile functions of the numeric columns as (cumulative share, value) knots; a repeated
# value is a point mass (e.g. 32% of Percent_Days_Employed is exactly 0), and the smallest
# positive knot is the smallest positive value seen.
_KNOTS: dict[str, tuple[tuple[float, float], ...]] = {
    "Avg_Days_per_DrugTest": (
        (0.0, 0.5), (0.05, 11.83), (0.1, 16.4), (0.15, 20.55), (0.2, 24.46), (0.25, 28.7),
        (0.3, 33.0), (0.35, 37.8), (0.4, 43.11), (0.45, 48.38), (0.5, 55.17), (0.55, 62.2),
        (0.6, 71.43), (0.65, 80.75), (0.7, 93.06), (0.75, 109.6), (0.8, 128.0), (0.85, 159.5),
        (0.9, 203.0), (0.95, 304.2), (1.0, 1088.0)),
    "DrugTests_THC_Positive": (
        (0.0, 0.0), (0.6839, 0.0), (0.684, 0.0034), (0.7, 0.0333), (0.75, 0.0714), (0.8, 0.1071),
        (0.85, 0.1538), (0.8786, 0.2), (0.9051, 0.2), (0.9134, 0.25), (0.9298, 0.25),
        (0.9405, 0.3333), (0.9594, 0.3333), (0.9669, 0.5), (0.9901, 0.5), (0.993, 1.0), (1.0, 1.0)),
    "DrugTests_Cocaine_Positive": (
        (0.0, 0.0), (0.9065, 0.0), (0.9066, 0.0032), (0.9485, 0.1), (0.9755, 0.2), (0.9941, 0.5),
        (1.0, 1.0)),
    "DrugTests_Meth_Positive": (
        (0.0, 0.0), (0.9017, 0.0), (0.9018, 0.0019), (0.95, 0.0833), (0.9746, 0.1667),
        (0.9868, 0.2), (1.0, 1.0)),
    "DrugTests_Other_Positive": (
        (0.0, 0.0), (0.9263, 0.0), (0.9264, 0.0023), (0.95, 0.0476), (1.0, 1.0)),
    "Percent_Days_Employed": (
        (0.0, 0.0), (0.3214, 0.0), (0.3215, 0.0007), (0.35, 0.0787), (0.4, 0.2011), (0.45, 0.3375),
        (0.5, 0.4818), (0.55, 0.6184), (0.6, 0.7327), (0.65, 0.8302), (0.7, 0.9104), (0.75, 0.9701),
        (0.7968, 1.0), (1.0, 1.0)),
    "Jobs_Per_Year": (
        (0.0, 0.0), (0.3102, 0.0), (0.3103, 0.139), (0.35, 0.2863), (0.4, 0.3927), (0.45, 0.508),
        (0.5, 0.6352), (0.55, 0.7671), (0.6, 0.8889), (0.6464, 1.0), (0.7736, 1.0), (0.8, 1.213),
        (0.85, 1.623), (0.8888, 2.0), (0.9456, 2.0), (0.95, 2.167), (0.973, 3.0), (0.9881, 3.0),
        (1.0, 8.0)),
}  # fmt: skip

# Which supervision-time numbers are missing, by outcome: (pattern, share among No, share among
# Yes) with the pattern flags (drug-test interval, drug-test shares, employment, jobs).  Missing
# employment records only occur for people without a new arrest.
_SUPERVISION_GAPS = (
    ((False, False, False, False), 0.7638, 0.7636),
    ((True, False, False, False), 0.0113, 0.0016),
    ((True, False, False, True), 0.0296, 0.0),
    ((True, False, True, True), 0.0412, 0.0),
    ((True, True, False, False), 0.1512, 0.2348),
    ((True, True, False, True), 0.0017, 0.0),
    ((True, True, True, True), 0.0012, 0.0),
)

_JOBLESS = 0.3102  # share of Jobs_Per_Year at 0 (never employed)
_OFFENSE_MISSING = 0.125
_SCORE_MISSING = 0.0187
_LEVEL_MISSING = (0.0546, 0.674)  # share of missing levels with and without a risk score

# Probit loadings: a column's latent score is the weighted sum of these factors plus normal noise
# of scale "noise" (default 1); the score is then cut at the column's real shares.  Factors are
# standard-normal latents (career, drug, prop, viol, gun, domestic, unstable, strict, hard), the
# supervision-time latents (substance, defiance, employment, programme) and earlier columns.
_LOADINGS: dict[str, dict[str, float]] = {
    "Age_at_Release": {"female": 0.3},
    "Race": {"puma_black": 1.0, "male": 1.1, "age": -0.4, "noise": 1.8},
    "Prior_Arrest_Episodes_Felony": {
        "career": 0.9, "adulthood": 0.6, "prop": 0.45, "drug": 0.2, "noise": 0.55},
    "Prior_Arrest_Episodes_Misd": {
        "career": 0.8, "adulthood": 0.45, "drug": 0.3, "viol": 0.25, "noise": 0.55},
    "Prior_Arrest_Episodes_Violent": {
        "career": 0.4, "adulthood": 0.15, "viol": 0.9, "male": 0.2, "black": 0.2, "noise": 0.55},
    "Prior_Arrest_Episodes_Property": {"career": 0.5, "adulthood": 0.2, "prop": 0.9, "noise": 0.55},
    "Prior_Arrest_Episodes_Drug": {"career": 0.3, "adulthood": 0.2, "drug": 0.9, "noise": 0.55},
    "Prior_Arrest_Episodes_PPViolationCharges": {
        "career": 0.95, "adulthood": 0.25, "unstable": 0.2, "noise": 0.55},
    "Prior_Arrest_Episodes_DVCharges": {
        "career": 0.35, "adulthood": 0.1, "viol": 0.6, "domestic": 0.7, "noise": 0.55},
    "Prior_Arrest_Episodes_GunCharges": {
        "career": 0.15, "viol": 0.2, "gun": 0.9, "drug": 0.3, "male": 0.5, "noise": 0.55},
    "Prior_Revocations_Parole": {"career": 0.2, "drug": 0.25, "age": 0.2},
    "Prior_Revocations_Probation": {"career": 0.35, "unstable": 0.15, "viol": -0.2},
    "Prison_Years": {
        "viol": 0.35, "age": 0.2, "unstable": 0.15, "ppv_arrests": -0.25, "sex_offense": 1.2,
        "violent_offense": 0.9, "property_offense": 0.1, "drug_offense": -0.1,
        "other_offense": -0.2},
    "Gang_Affiliated": {"age": -0.6, "black": 0.35, "unstable": 0.5, "viol": 0.15},
    "Supervision_Risk_Score_First": {
        "age": -0.6, "unstable": 0.5, "gang": 0.3, "career": 0.2, "prop": 0.15, "years": 0.1,
        "noise": 0.8},
    "Education_Level": {"age": 0.25, "career": -0.15, "unstable": -0.2, "black": -0.15},
    "Dependents": {"age": 0.3, "male": -0.15, "black": 0.15, "viol": 0.1},
    "Condition_MH_SA": {
        "drug": 0.4, "career": 0.3, "unstable": 0.2, "strict": 0.6, "black": -0.45, "female": 0.4,
        "age": 0.15, "long_term": -0.5, "sex_offense": -0.8, "violent_offense": -0.4,
        "drug_offense": 0.3},
    "Condition_Other": {
        "drug_arrests": -0.2, "level_special": 0.3, "strict": 0.6, "sex_offense": 1.6,
        "violent_offense": 1.3, "property_offense": 0.2, "drug_offense": -0.6},
    "Condition_Cog_Ed": {
        "first_year": -1.4, "long_term": -0.5, "risk": 0.15, "strict": 0.65, "education": -0.2,
        "sex_offense": -0.8, "violent_offense": 0.2, "unstable": 0.2},
    "substance": {
        "unstable": 1.0, "age": -0.35, "drug": 0.25, "career": 0.25, "gang": 0.25, "male": 0.2,
        "short": -0.5, "noise": 0.9},
    "defiance": {
        "unstable": 0.35, "age": -0.2, "gang": 0.2, "black": 0.2, "education": -0.2,
        "level_special": 0.25, "short": -0.5, "puma_strict": 1.0, "noise": 0.9},
    "employment": {
        "unstable": -0.45, "age": 0.1, "education": 0.3, "black": -0.4, "gang": -0.3, "years": 0.15,
        "puma_jobs": 1.0},
    "programme": {
        "mh_sa": 0.8, "sex_offense": 0.8, "level_special": 0.3, "substance": 0.4,
        "employment": 0.15},
    "Violations_ElectronicMonitoring": {
        "level_special": 1.2, "level_high": 0.3, "sex_offense": 0.4, "years": 0.2,
        "other_condition": 0.4, "defiance": 0.3},
    "Violations_Instruction": {"defiance": 0.8, "substance": 0.2},
    "Violations_FailToReport": {"defiance": 0.7, "substance": 0.2},
    "Violations_MoveWithoutPermission": {"defiance": 0.6, "unstable": 0.3},
    "Delinquency_Reports": {"defiance": 0.7, "substance": 0.5},
    "Program_Attendances": {"programme": 1.0},
    "Program_UnexcusedAbsences": {"programme": 1.0, "defiance": 0.4, "substance": 0.4},
    "Residence_Changes": {
        "unstable": 0.65, "released_late": 0.45, "years": 0.1, "defiance": 0.1, "short": -0.3,
        "sex_offense": -0.3},
    "Employment_Exempt": {"old": 0.6, "age": 0.15, "female": 0.35},
    "Recidivism_Within_3years": {
        "career": 0.9, "prop": 0.3, "unstable": 0.25, "age": -0.4, "gang": 0.4, "sex_offense": -0.8,
        "long_term": -0.2, "defiance": 0.15, "employment": -0.3, "noise": 1.8},
    "Avg_Days_per_DrugTest": {
        "programme": -0.4, "employment": -0.2, "substance": -0.15, "years": 0.15, "black": 0.2},
    "DrugTests_THC_Positive": {"substance": 0.5, "black": 0.35, "male": 0.3, "age": -0.35},
    "DrugTests_Cocaine_Positive": {"substance": 0.5, "black": 0.35, "age": 0.2},
    "DrugTests_Meth_Positive": {"substance": 0.5, "black": -0.9, "hard": 0.5},
    "DrugTests_Other_Positive": {"substance": 0.5, "black": -0.4, "female": 0.2, "hard": 0.5},
    "Percent_Days_Employed": {"employment": 1.0, "noise": 0.0},
    "Jobs_Per_Year": {"employment": 1.0, "recidivist": 0.6, "noise": 0.8},
}  # fmt: skip

# Prior convictions copy the matching prior arrests' score with this correlation.
_CONVICTIONS = {
    "Felony": ("Felony", 0.75), "Misd": ("Misd", 0.9), "Viol": ("Violent", 0.85),
    "Prop": ("Property", 0.92), "Drug": ("Drug", 0.9),
    "PPViolationCharges": ("PPViolationCharges", 0.8),
    "DomesticViolenceCharges": ("DVCharges", 0.8), "GunCharges": ("GunCharges", 0.8),
}  # fmt: skip

# Multinomial-logit utilities of the nominal columns' levels (intercepts are fitted to the shares).
_UTILITIES: dict[str, dict[str, dict[str, float]]] = {
    "Prison_Offense": {
        "Violent/Sex": {"viol": 1.2, "career": -0.6, "age": 0.3},
        "Violent/Non-Sex": {"viol": 2.4, "career": -0.6, "black": 0.6},
        "Property": {"prop": 1.8},
        "Drug": {"drug": 1.8},
        "Other": {"gun": 1.8, "drug": 0.4},
    },
    "Supervision_Level_First": {
        "Standard": {},
        "High": {"score_6_to_8": 3.5},
        "Specialized": {"score_9_up": 3.5, "sex_offense": 4.0, "violent_offense": 0.6, "years": 0.3},
    },
}  # fmt: skip


class _Cohort:
    """The factors and columns of one synthetic cohort, drawn from one seeded generator."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.f: dict[str, np.ndarray] = {}
        self.codes: dict[str, np.ndarray] = {}
        self.numbers: dict[str, np.ndarray] = {}

    def noise(self, scale: float = 1.0) -> np.ndarray:
        return self.rng.standard_normal(self.n) * scale

    def score(self, name: str) -> np.ndarray:
        """The probit score of ``name`` from its loadings."""
        loadings = dict(_LOADINGS[name])
        total = self.noise(loadings.pop("noise", 1.0))
        for factor, weight in loadings.items():
            total = total + weight * self.f[factor]
        return total

    def cut(
        self, column: str, score: np.ndarray | None = None, where: np.ndarray | None = None
    ) -> np.ndarray:
        """Level codes of ``column`` (-1 outside ``where``), highest scores in the highest levels."""
        score = self.score(column) if score is None else score
        shares = np.array(list(_SHARES[column].values()))
        self.codes[column] = _cut_ranks(score, shares, where)
        return self.codes[column]

    def subset(self, rate: float) -> np.ndarray:
        """A random subset holding exactly ``rate`` of the rows."""
        return _cut_ranks(self.rng.random(self.n), np.array([1 - rate, rate])) == 1

    def choose(self, column: str, where: np.ndarray) -> np.ndarray:
        """Multinomial-logit levels of ``column`` (-1 outside ``where``) matching the real shares."""
        target = np.array(list(_SHARES[column].values()))
        utility = np.column_stack([
            sum((w * self.f[factor] for factor, w in loadings.items()), np.zeros(self.n))
            for loadings in _UTILITIES[column].values()
        ])  # fmt: skip
        if column == "Prison_Offense":
            utility[self.f["male"] == 0, 0] = -np.inf  # no sex offenders among the women
        utility = utility[where]
        intercept = np.log(target)
        for _ in range(30 if len(utility) else 0):
            odds = np.exp(utility + intercept - (utility + intercept).max(axis=1, keepdims=True))
            expected = (odds / odds.sum(axis=1, keepdims=True)).mean(axis=0)
            intercept += np.log(target / expected)
        noisy = utility + intercept + self.rng.gumbel(size=utility.shape)
        self.codes[column] = np.full(self.n, -1)
        self.codes[column][where] = np.argmax(noisy, axis=1)
        return self.codes[column]

    def quantiles(self, column: str, where: np.ndarray, above: float = 0.0) -> np.ndarray:
        """Values of the real quantile function above share ``above``, ranked by the score."""
        score = self.score(column)[where]
        shares = _ranks(score, offset=self.rng.random(len(score)))
        knots = np.array(_KNOTS[column])
        drawn = np.interp(above + (1 - above) * shares, knots[:, 0], knots[:, 1])
        values = np.full(self.n, np.nan)
        values[where] = np.where(drawn > 0, np.maximum(drawn, knots[knots[:, 1] > 0, 1].min()), 0.0)
        return values


def _ranks(score: np.ndarray, offset: float | np.ndarray = 0.5) -> np.ndarray:
    """Ranks scaled into (0, 1): rank i maps into [i/n, (i+1)/n) at ``offset`` within its slot."""
    ranks = np.empty(len(score))
    ranks[np.argsort(score, kind="stable")] = np.arange(len(score)) + offset
    return ranks / max(len(score), 1)


def _cut_ranks(score: np.ndarray, shares: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Codes whose counts follow ``shares`` exactly, lowest scores first (-1 outside ``where``)."""
    where = np.ones(len(score), bool) if where is None else where
    codes = np.full(len(score), -1)
    edges = np.cumsum(shares / shares.sum())[:-1]
    codes[where] = np.searchsorted(edges, _ranks(score[where]))
    return codes


def _std(score: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance, so that scores mix on a known scale."""
    spread = score.std() if len(score) > 1 else 0.0
    return (score - score.mean()) / spread if spread > 0 else score


def _puma(field: int) -> np.ndarray:
    """One field of the PUMA table, by 0-based PUMA code."""
    return np.array([row[field] for row in _PUMA.values()])


def generate_georgia_cohort(n_rows: int, seed: int) -> pd.DataFrame:
    """A synthetic cohort of ``n_rows`` parolees as text cells; same (n_rows, seed), same frame."""
    cohort = _Cohort(n_rows, seed)
    for step in (_demographics, _history, _sentence, _conditions, _supervision, _measurements):
        step(cohort)
    return _render(cohort)


def _demographics(c: _Cohort) -> None:
    """Gender, age, residence and race, then the independent latent factors."""
    f = c.f
    f["male"] = c.cut("Gender", c.noise())
    f["female"] = 1 - f["male"]
    f["age"] = (c.cut("Age_at_Release") - 3) / 2  # -1.5 (18-22) .. 1.5 (48 or older)
    f["old"] = f["age"] == 1.5
    f["adulthood"] = np.minimum(f["age"], 1.0)  # priors stop accumulating after the mid-forties
    puma = c.codes["Residence_PUMA"] = _cut_ranks(c.rng.random(c.n), _puma(0))
    f["puma_black"] = np.log(_puma(1) / (1 - _puma(1)))[puma]
    f["puma_strict"], f["puma_jobs"] = _puma(2)[puma], _puma(3)[puma]
    f["black"] = c.cut("Race")
    for name in ("career", "drug", "prop", "viol", "gun", "domestic", "unstable", "strict", "hard"):
        f[name] = c.noise()


def _history(c: _Cohort) -> None:
    """Prior arrests from the latent factors and age; convictions and revocations from them."""
    arrests = {}
    for kind, _ in _CONVICTIONS.values():
        arrests[kind] = _std(c.score(f"Prior_Arrest_Episodes_{kind}"))
        c.cut(f"Prior_Arrest_Episodes_{kind}", arrests[kind])
    for kind, (arrest, rho) in _CONVICTIONS.items():
        score = rho * arrests[arrest] + c.noise(np.sqrt(1 - rho**2))
        c.cut(f"Prior_Conviction_Episodes_{kind}", score)
    c.cut("Prior_Revocations_Parole")
    c.cut("Prior_Revocations_Probation")
    c.f["ppv_arrests"], c.f["drug_arrests"] = arrests["PPViolationCharges"], arrests["Drug"]


def _sentence(c: _Cohort) -> None:
    """Offense, time served, gang status, and the risk score and level set at release."""
    f = c.f
    offense = c.choose("Prison_Offense", ~c.subset(_OFFENSE_MISSING))
    for code, name in enumerate(("sex", "violent", "property", "drug", "other")):
        f[f"{name}_offense"] = offense == code
    f["years"] = c.cut("Prison_Years")
    f["first_year"], f["released_late"] = f["years"] == 0, f["years"] > 0
    f["long_term"] = f["years"] == 3
    f["gang"] = c.cut("Gang_Affiliated", where=f["male"] == 1) == 1
    has_score = ~c.subset(_SCORE_MISSING)
    score = c.cut("Supervision_Risk_Score_First", where=has_score)
    f["risk"] = np.where(has_score, (score - 4.5) / 2.5, 0.0)
    f["score_6_to_8"], f["score_9_up"] = (score >= 5) & (score <= 7), score >= 8
    has_level = c.rng.random(c.n) >= np.where(has_score, *_LEVEL_MISSING)
    level = c.choose("Supervision_Level_First", has_level)
    f["level_high"], f["level_special"], f["short"] = level == 1, level == 2, ~has_level


def _conditions(c: _Cohort) -> None:
    """Education, dependents and the parole conditions set from history and needs."""
    f = c.f
    f["education"] = c.cut("Education_Level")
    c.cut("Dependents")
    f["mh_sa"] = c.cut("Condition_MH_SA")
    f["other_condition"] = c.cut("Condition_Other")
    c.cut("Condition_Cog_Ed")


def _supervision(c: _Cohort) -> None:
    """Conduct during supervision and the 3-year outcome."""
    f = c.f
    for latent in ("substance", "defiance", "employment"):
        f[latent] = c.score(latent)
    f["programme"] = _std(c.score("programme"))
    for column in (
        "Violations_ElectronicMonitoring", "Violations_Instruction", "Violations_FailToReport",
        "Violations_MoveWithoutPermission", "Delinquency_Reports", "Program_Attendances",
        "Program_UnexcusedAbsences", "Residence_Changes", "Employment_Exempt",
        "Recidivism_Within_3years",
    ):  # fmt: skip
        c.cut(column)
    f["recidivist"] = c.codes["Recidivism_Within_3years"]


def _measurements(c: _Cohort) -> None:
    """Drug-test and employment figures, missing in the real data's patterns."""
    f, rng, n = c.f, c.rng, c.n
    patterns = np.array([pattern for pattern, _, _ in _SUPERVISION_GAPS])
    by_outcome = np.array([[no, yes] for _, no, yes in _SUPERVISION_GAPS])
    gap = np.zeros(n, dtype=int)
    for value in (0, 1):
        rows = f["recidivist"] == value
        gap[rows] = _cut_ranks(rng.random(rows.sum()), by_outcome[:, value])
    no_interval, no_tests, no_work, no_jobs = patterns[gap].T

    days = np.where(f["recidivist"] == 1, rng.integers(30, 1096, n), rng.integers(400, 1096, n))
    interval = c.quantiles("Avg_Days_per_DrugTest", ~no_tests | ~no_interval)
    tests = np.maximum(np.rint(days / np.nan_to_num(interval, nan=60.0)), 1)
    c.numbers["Avg_Days_per_DrugTest"] = np.where(no_interval, np.nan, days / tests)
    drugs = [f"DrugTests_{drug}_Positive" for drug in ("THC", "Cocaine", "Meth", "Other")]
    shares = {column: c.quantiles(column, ~no_tests) for column in drugs}
    # A person with a small positive share must have been tested often enough to show it.
    smallest = np.fmin.reduce([np.where(share > 0, share, np.nan) for share in shares.values()])
    tests = np.fmax(tests, np.rint(1 / smallest))
    for column, share in shares.items():
        positives = np.clip(np.rint(share * tests), share > 0, tests)
        c.numbers[column] = (positives / tests).astype(np.float32).astype(float)

    # Those with an employment share but no jobs record were never employed.
    f["employment"] = np.where(no_jobs, -np.inf, f["employment"])
    worked = c.numbers["Percent_Days_Employed"] = c.quantiles("Percent_Days_Employed", ~no_work)
    jobs = c.quantiles("Jobs_Per_Year", ~no_jobs & (worked > 0), above=_JOBLESS)
    c.numbers["Jobs_Per_Year"] = np.where(no_jobs, np.nan, np.where(worked > 0, jobs, 0.0))


def _render(c: _Cohort) -> pd.DataFrame:
    """Cells as the real file writes them: level labels, floats rounded to 9 decimals."""
    cells: dict[str, list[str | None]] = {"ID": [str(i) for i in range(1, c.n + 1)]}
    cells["Residence_PUMA"] = [str(code + 1) for code in c.codes["Residence_PUMA"]]
    for column, values in c.numbers.items():
        rounded = np.round(values, 9).tolist()
        cells[column] = [None if v != v else repr(float(f"{v:.10g}")) for v in rounded]
    for column, codes in c.codes.items():
        if column in _SHARES:
            cells[column] = np.array([*_SHARES[column], None], dtype=object)[codes].tolist()
    layout = load_spec("georgia_parole").layout()
    return pd.DataFrame({column: cells[column] for column in layout}, dtype="str")
