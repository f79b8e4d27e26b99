"""View models of the reviewer pages: chart geometry is computed here so the SVG needs no JavaScript."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any

from markupsafe import Markup, escape

from features.spec import DatasetSpec, Gates, at_most
from models.baselines import baseline_label
from serving.tables import ScoreRow

WIDTH = 860
LABEL_WIDTH = 340
VALUE_WIDTH = 80
ROW = 26
AXIS = 28
TOP_INPUTS = 8
TOP_NEED_INPUTS = 5
UNSEEN = " (not seen in training: read as missing)"  # after a free-text value the model never saw


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart, in data units and in SVG pixels."""

    kind: str  # "up" raises the score, "down" lowers it, "marker" is a level (base value or score)
    label: str
    contribution: float
    start: float
    end: float
    x: float
    y: float
    width: float
    input: str | None = None
    shown: str = ""  # the record's value of the input
    rest: int = 0  # how many inputs a grouped bar stands for


@dataclass(frozen=True)
class Tick:
    at: float  # pixels along its axis: x on a bar chart, y on a trend
    label: str


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart: bars, the axis ticks and the zero line, with its pixel scale."""

    bars: list[Bar]
    ticks: list[Tick]
    zero_x: float
    scale: float  # pixels per log-odds unit, the same for every bar
    width: int
    height: int
    plot_left: float


@dataclass(frozen=True)
class _Axis:
    """A log-odds range (with zero and a margin) mapped onto the plot area between labels and values."""

    low: float
    high: float
    left: float = LABEL_WIDTH + 10.0
    right: float = WIDTH - VALUE_WIDTH - 10.0

    @classmethod
    def fit(cls, values: list[float]) -> _Axis:
        low, high = min(0.0, *values), max(0.0, *values)
        margin = (high - low) * 0.05 or 0.5
        return cls(low - margin, high + margin)

    @property
    def scale(self) -> float:
        return (self.right - self.left) / (self.high - self.low)

    def x(self, value: float) -> float:
        return self.left + (value - self.low) * self.scale

    def bar(self, step: _Step, start: float, row: int) -> Bar:
        end = start + step.contribution
        kind = "up" if step.contribution >= 0 else "down"
        width = abs(step.contribution) * self.scale
        return Bar(
            kind,
            step.label,
            step.contribution,
            start,
            end,
            self.x(min(start, end)),
            _row_y(row),
            width,
            step.input,
            step.shown,
            step.rest,
        )

    def marker(self, label: str, value: float, row: int) -> Bar:
        return Bar("marker", label, value, value, value, self.x(value) - 1.5, _row_y(row), 3.0)

    def chart(self, bars: list[Bar]) -> Chart:
        raw = (self.high - self.low) / 5
        power = 10 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
        ticks = [
            Tick(self.x(i * step), f"{i * step:g}")
            for i in range(math.ceil(self.low / step), math.floor(self.high / step) + 1)
        ]
        return Chart(bars, ticks, self.x(0.0), self.scale, WIDTH, _row_y(len(bars)) + 8, self.left)


@dataclass(frozen=True)
class _Step:
    label: str
    contribution: float
    input: str | None = None
    shown: str = ""
    rest: int = 0


def waterfall(explained: dict[str, Any], top: int = TOP_INPUTS) -> Chart:
    """Base value, then the `top` inputs by |contribution|, the rest grouped, ending at the log-odds."""
    contributions = explained["contributions"]
    steps = [
        _Step(
            c["input"],
            c["contribution"],
            c["input"],
            shown_value(c["value"]) + (UNSEEN if c.get("unseen") else ""),
        )
        for c in contributions[:top]
    ]
    if rest := contributions[top:]:
        total = math.fsum(c["contribution"] for c in rest)
        steps.append(_Step(f"{len(rest)} other inputs", total, rest=len(rest)))
    starts = list(accumulate((s.contribution for s in steps), initial=explained["base_value"]))
    axis = _Axis.fit([*starts, explained["log_odds"]])
    bars = [axis.marker("Base value (average log-odds)", explained["base_value"], 0)]
    bars += [
        axis.bar(step, start, row)
        for row, (step, start) in enumerate(zip(steps, starts[:-1], strict=True), start=1)
    ]
    probability = 1 / (1 + math.exp(-explained["log_odds"]))
    bars.append(
        axis.marker(f"Score: log-odds (probability {probability:.3f})", explained["log_odds"], len(steps) + 1)
    )
    return axis.chart(bars)


def domain_chart(by_domain: dict[str, float]) -> Chart:
    """Contributions summed per domain, each a bar from zero."""
    items = sorted(by_domain.items(), key=lambda kv: -abs(kv[1]))
    axis = _Axis.fit([v for _, v in items])
    return axis.chart([axis.bar(_Step(domain, value), 0.0, row) for row, (domain, value) in enumerate(items)])


def shown_value(value: Any) -> str:
    """A recorded or derived value as every page shows it: 10 not 10.0, four significant digits."""
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def html_id(name: str) -> str:
    """A spec's name (a need, an attribute) as part of an HTML id: an id holds no whitespace, and
    aria-labelledby splits its list of ids on it."""
    return re.sub(r"\s", "-", name)


def _row_y(row: int) -> float:
    return AXIS + row * ROW


def identity_sentence(explained: dict[str, Any], probability: float) -> str:
    """The explanation's identity in words, with this score's own numbers."""
    total = math.fsum(c["contribution"] for c in explained["contributions"])
    recomputed = 1 / (1 + math.exp(-(explained["base_value"] + total)))
    return (
        f"The base value {explained['base_value']:.4f} plus the {len(explained['contributions'])} "
        f"contributions, which sum to {total:+.4f}, gives the log-odds {explained['log_odds']:.4f}; "
        f"the logistic function turns that into the risk probability {recomputed:.4f} "
        f"(the recorded probability is {probability:.4f}). The contributions add up to the score exactly, "
        "up to rounding."
    )


@dataclass(frozen=True)
class Frame:
    """A line chart's size and plot area, in SVG pixels."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float

    def y(self, probability: float) -> float:
        return self.bottom - probability * (self.bottom - self.top)


def raised_bands(spec: DatasetSpec | None) -> set[str]:
    """Bands wholly at or above the operating threshold, where the model predicts relapse: the pages
    mark these, whatever a spec calls them."""
    if spec is None:
        return set()
    lows = [0.0, *spec.risk_bands.cut_points]
    threshold = spec.gates.operating_threshold
    return {label for label, low in zip(spec.risk_bands.labels, lows, strict=True) if low >= threshold}


RISK_FRAME = Frame(800, 230, 60.0, 700.0, 16.0, 196.0)
NEED_FRAME = Frame(400, 150, 40.0, 330.0, 12.0, 112.0)


@dataclass(frozen=True)
class TrendPoint:
    x: float
    y: float
    probability: float
    mark: str  # CSS class: the risk band, or "flagged" for a flagged need
    when: datetime
    score_id: str
    filled: bool  # a band at or above the operating threshold, or a flagged need


@dataclass(frozen=True)
class CutLine:
    """A band cut point or flag threshold, drawn only above the assessments of a version that used it."""

    at: float  # y in pixels
    label: str
    x1: float
    x2: float


@dataclass(frozen=True)
class Trend:
    points: list[TrendPoint]
    cut_lines: list[CutLine]
    frame: Frame

    @property
    def path(self) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{p.x:.1f},{p.y:.1f}" for i, p in enumerate(self.points))

    @property
    def grid(self) -> list[Tick]:
        return [Tick(self.frame.y(p), f"{p:g}") for p in (0, 0.25, 0.5, 0.75, 1)]


def trend(
    scores: list[tuple[str, datetime, float | None, str, bool]],
    cuts: list[tuple[float, ...] | None],
    frame: Frame = RISK_FRAME,
) -> Trend:
    """A probability per assessment, oldest first, evenly spaced; each assessment's own cut points
    (its version's; None when unknown) as lines above it, so no version is read against another's.

    An assessment without this probability (a model that did not score that need) keeps its place
    on the time axis but has no point."""
    step = (frame.right - frame.left) / max(len(scores) - 1, 1)
    xs = [
        frame.left + i * step if len(scores) > 1 else (frame.left + frame.right) / 2
        for i in range(len(scores))
    ]
    points = [
        TrendPoint(x, frame.y(p), p, mark, when, score_id, filled)
        for x, (score_id, when, p, mark, filled) in zip(xs, scores, strict=True)
        if p is not None
    ]
    lines = []
    for first, last, points_cut in _runs(cuts):
        x1 = frame.left if first == 0 else (xs[first - 1] + xs[first]) / 2
        x2 = frame.right if last == len(xs) - 1 else (xs[last] + xs[last + 1]) / 2
        lines += [CutLine(frame.y(c), f"{c:g}", x1, x2) for c in points_cut]
    return Trend(points, lines, frame)


def _runs(cuts: list[tuple[float, ...] | None]) -> list[tuple[int, int, tuple[float, ...]]]:
    """(first, last, cut points) of each run of neighbouring assessments with the same known cut points."""
    runs: list[tuple[int, int, tuple[float, ...]]] = []
    for index, points_cut in enumerate(cuts):
        if points_cut is None:
            continue
        if runs and runs[-1][1] == index - 1 and runs[-1][2] == points_cut:
            runs[-1] = (runs[-1][0], index, points_cut)
        else:
            runs.append((index, index, points_cut))
    return runs


def need_trends(
    rows: list[ScoreRow], thresholds: list[dict[str, float]], names: list[str]
) -> dict[str, Trend]:
    """One small trend per need, each assessment against the flag threshold of the version that scored
    it (`thresholds`, one dict per row; a need missing from it has no line there)."""
    scored = [{n["need"]: n for n in row.result["needs"]} for row in rows]
    trends = {}
    for name in names:
        series, cuts = [], []
        for row, by_name, threshold in zip(rows, scored, thresholds, strict=True):
            found = by_name.get(name)
            probability = None if found is None else found["probability"]
            flagged = found is not None and found["flagged"]
            series.append((row.id, row.created_at, probability, "flagged" if flagged else "", flagged))
            cuts.append((threshold[name],) if found is not None and name in threshold else None)
        trends[name] = trend(series, cuts, NEED_FRAME)
    return trends


_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
]


def markdown(text: str, shift: int = 1) -> Markup:
    """The model card's Markdown (headings, tables, lists, paragraphs) as HTML; all text is escaped.

    Headings move `shift` levels down, below the page's own headings."""
    html: list[str] = []
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            blocks[-1].append(line.rstrip())
        elif blocks[-1]:
            blocks.append([])
    heading = "Model card"
    for block in filter(None, blocks):
        out, heading = _block(block, shift, heading)
        html.extend(out)
    return Markup("\n".join(html))


def _block(lines: list[str], shift: int, heading: str) -> tuple[list[str], str]:
    """The block's HTML, and the latest heading so far, which names the tables under it."""
    out: list[str] = []
    paragraph: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        title = re.match(rf"(#{{1,{6 - shift}}}) (.*)", line)
        if title or line.startswith(("|", "- ")):
            out.extend(_paragraph(paragraph))
            paragraph = []
        if title:
            level = len(title.group(1)) + shift
            heading = title.group(2)
            out.append(f"<h{level}>{_inline(heading)}</h{level}>")
            i += 1
        elif line.startswith("|"):
            end = next((j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines))
            out.append(_table(lines[i:end], heading))
            i = end
        elif line.startswith("- "):
            end = next((j for j in range(i, len(lines)) if not lines[j].startswith("- ")), len(lines))
            out.append("<ul>" + "".join(f"<li>{_inline(item[2:])}</li>" for item in lines[i:end]) + "</ul>")
            i = end
        else:
            paragraph.append(line)
            i += 1
    return out + _paragraph(paragraph), heading


def _paragraph(lines: list[str]) -> list[str]:
    return [f"<p>{_inline(' '.join(lines))}</p>"] if lines else []


def _table(lines: list[str], heading: str) -> str:
    """A table in a box that scrolls sideways on a narrow screen, focusable so the keyboard can
    scroll it, and named by the heading it stands under and its first column (a heading may hold two)."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    body = [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", cell) for cell in r)]
    head = "".join(f'<th scope="col">{_inline(cell)}</th>' for cell in rows[0])
    cells = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
    label = re.sub(r"[`*]", "", f"{heading}, by {rows[0][0]}")
    box = f'<div class="scroll" role="region" tabindex="0" aria-label="{escape(label)}">'
    return f"{box}<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table></div>"


def _inline(text: str) -> str:
    html = str(escape(text))
    for pattern, replacement in _INLINE:
        html = pattern.sub(replacement, html)
    return html


METRIC_LABELS = {
    "auc": "AUC",
    "brier": "Brier score",
    "log_loss": "log loss",
    "ece": "ECE (expected calibration error)",
    "calibration_slope": "calibration slope",
    "calibration_intercept": "calibration intercept",
}


def metric_table(
    evaluation: dict[str, Any], spec: DatasetSpec | None
) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """Risk metrics of the model beside each baseline's (baselines report AUC and Brier only); a
    baseline goes by its report's key when the version's spec cannot be read."""
    baselines = evaluation.get("baselines", {})
    risk = evaluation.get("risk", {})
    columns = [
        "this model",
        *(f"baseline: {baseline_label(key, spec) if spec else key}" for key in baselines),
    ]
    rows = [
        (METRIC_LABELS.get(metric, metric), [risk.get(metric), *(b.get(metric) for b in baselines.values())])
        for metric in risk
    ]
    return columns, rows


def coverage_notes(evaluation: dict[str, Any], spec: DatasetSpec | None) -> list[str]:
    """A sentence per baseline whose AUC covers fewer rows than this model's, with this model's AUC on
    those rows: the table sets AUCs of different rows side by side, and the gate compares these two."""
    notes = []
    for key, baseline in evaluation.get("baselines", {}).items():
        scored, model_auc = baseline.get("auc_n"), baseline.get("model_auc")
        if None in (scored, model_auc, baseline.get("auc")) or scored == evaluation.get("n"):
            continue
        label = baseline_label(key, spec) if spec else key
        notes.append(
            f"The AUC of {label} is over the {scored} of the {evaluation.get('n')} test rows that have "
            f"its score; on those rows this model's AUC is {model_auc:.4f} (the promotion gate compares "
            "these two)."
        )
    return notes


@dataclass(frozen=True)
class Gap:
    name: str
    value: float | None
    gate: float | None

    @property
    def above_gate(self) -> bool:
        return self.gate is not None and self.value is not None and not at_most(self.value, self.gate)


def fairness_gaps(table: dict[str, Any], gates: Gates | None, attribute: str) -> dict[str, Gap]:
    """The gaps between groups by metric; the FPR gap of the gated attribute carries the version's
    promotion gate (none when its spec cannot be read)."""
    gated = gates is not None and attribute == gates.fairness_attribute
    return {
        name: Gap(name, table.get(f"{name}_gap"), gates.max_fpr_gap if gated and name == "fpr" else None)
        for name in ("ece", "fpr", "fnr")
    }


def drift_view(report: dict[str, Any]) -> dict[str, Any]:
    """The drift report as the model page shows it: largest PSI first, the inputs that drifted apart
    (their bins shown), and each need's flag rate as a labelled row."""
    if report["outputs"] is None:
        return report
    ranked = sorted(report["inputs"], key=lambda c: -1.0 if c["psi"] is None else c["psi"], reverse=True)
    needs = [(f"flag rate of {n['need']}", n) for n in report["outputs"]["need_flag_rates"]]
    return {
        **report,
        "inputs": ranked,
        "shifted": [c for c in ranked if c["level"] in ("moderate", "major")],
        "outputs": {**report["outputs"], "need_labels": needs},
    }
