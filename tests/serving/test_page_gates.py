"""The model page marks a fairness gap above its gate by the rule promote applies, not its own."""

from features.spec import Gates
from serving.pages import fairness_gaps
from training.gates import check_gates

GATES = Gates(fairness_attribute="Race", max_fpr_gap=0.05)


def _report(gap: float) -> dict:
    audit = {"groups": {"BLACK": {"fpr": 0.5 + gap}, "WHITE": {"fpr": 0.5}}, "fpr_gap": gap}
    return {
        "risk": {"auc": 0.73, "ece": 0.01},
        "baselines": {"logistic": {"auc": 0.72}},
        "fairness": {"Race": audit},
    }


def test_a_gap_the_gate_passes_is_not_marked_above_it():
    """11/20 - 10/20 is 0.050000000000000044: promote passes it, so the page must not flag it."""
    gap = 11 / 20 - 10 / 20
    report = _report(gap)
    passed = {g.name: g.passed for g in check_gates(report, GATES)}["fpr_gap"]
    assert passed and gap > 0.05
    assert not fairness_gaps(report["fairness"]["Race"], GATES, "Race")["fpr"].above_gate


def test_a_gap_the_gate_refuses_is_marked_above_it():
    report = _report(0.0501)
    assert not {g.name: g.passed for g in check_gates(report, GATES)}["fpr_gap"]
    assert fairness_gaps(report["fairness"]["Race"], GATES, "Race")["fpr"].above_gate
