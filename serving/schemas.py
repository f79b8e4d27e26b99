"""API bodies. The record's schema is generated from the serving model's spec."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import count
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from features.spec import FALSE_WORDS, TRUE_WORDS, ColumnSpec, DatasetSpec
from features.validation import level_key
from serving.json_body import each_name_once

# Unknown fields reported one by one, at most; more make one error (see few_unknown_fields).
MAX_UNKNOWN_FIELDS = 20


# What JSON Schema cannot say of a record, said in words: a client reads it in the document or nowhere.
RECORD_DOC = (
    "The serving model's release-time inputs and its protected attributes, each optional (left out, null "
    "or blank is missing), but at least one input must be given: a record with none is a 422, since its "
    "score would only repeat the base rate."
)


def record_model(spec: DatasetSpec, example: dict[str, Any]) -> type[BaseModel]:
    """Release-time inputs and protected attributes, each optional; anything else is refused."""
    columns = [*spec.inputs(), *spec.protected]
    refused = _refused_columns(spec)
    attributes = _attributes([*columns, *refused])
    fields: dict[str, Any] = {}
    for name in columns:
        column = spec.column(name)
        said = column.description or column.domain
        if name in spec.protected:
            said = f"{said.rstrip('.')}. Protected: stored for audits, never a model input."
        fields[attributes[name]] = (
            _field_type(column) | None,
            Field(default=None, alias=name, description=said),
        )
    for name, reason in refused.items():
        refusal = Annotated[Any, AfterValidator(_refuse(reason))]
        fields[attributes[name]] = (SkipJsonSchema[refusal], Field(None, alias=name))
    inputs = [attributes[name] for name in spec.inputs()]

    def has_an_input(record: BaseModel) -> BaseModel:
        if all(getattr(record, name) is None for name in inputs):
            raise ValueError(
                "the record holds none of the model's inputs, so a score would only repeat the base "
                "rate; send what is known of the person (every input is listed in the schema)"
            )
        return record

    return create_model(
        "Record",
        __doc__=RECORD_DOC,
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example]}),
        __validators__={
            "blank_is_missing": model_validator(mode="before")(_blank_is_missing),
            "few_unknown_fields": model_validator(mode="before")(few_unknown_fields(attributes)),
            "has_an_input": model_validator(mode="after")(has_an_input),
            # Last, so it runs first: blank_is_missing makes a plain dict of the object it was given.
            "each_name_once": model_validator(mode="before")(each_name_once),
        },
        **fields,
    )


def few_unknown_fields(known: Iterable[str]) -> Callable[[Any], Any]:
    """A before-validator refusing, as one error, an object with more than MAX_UNKNOWN_FIELDS unknown
    names: one error each (with its value) let an 8 MiB body cost seconds and an answer ten times its size."""
    names = frozenset(known)

    def check(data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [str(name) for name in data if name not in names]
            if len(unknown) > MAX_UNKNOWN_FIELDS:
                first = ", ".join(unknown[:MAX_UNKNOWN_FIELDS])
                raise ValueError(
                    f"{len(unknown)} unknown fields; the first {MAX_UNKNOWN_FIELDS}: {first}; "
                    "the accepted fields are in the API schema (GET /docs)"
                )
        return data

    return check


def _refused_columns(spec: DatasetSpec) -> dict[str, str]:
    """The spec's other columns, each with why a record may not hold it: a whole row sent from a
    case-management system is told what to leave out, not that its columns are unknown."""
    later = "is recorded during supervision, after release; the model scores at release and does not take it"
    outcome, person = spec.outcome.column, spec.id
    return {c.name: f"{c.name} {later}: leave it out" for c in spec.columns if c.known != "release"} | {
        outcome: f"{outcome} is the outcome the model predicts; a score is never given it: leave it out",
        person: f"{person} is the person's id: send it as person_id beside the record",
    }


def _refuse(reason: str) -> Callable[[Any], None]:
    def refuse(value: Any) -> None:
        if value is not None:
            raise ValueError(reason)

    return refuse


def _attributes(names: list[str]) -> dict[str, str]:
    """The Python name of each column's field: its own, unless pydantic reserves it (a leading `_`, or
    a BaseModel attribute such as `model_config`); then `field_N`, never another column's name. The
    field is validated and dumped by the column's name."""
    taken = set(names)
    spare = (f"field_{n}" for n in count() if f"field_{n}" not in taken)
    return {name: next(spare) if name.startswith("_") or hasattr(BaseModel, name) else name for name in names}


def record_values(record: BaseModel) -> dict[str, Any]:
    """A validated record's given values, each under its column's name, as scored and audited."""
    return record.model_dump(by_alias=True, exclude_none=True)


def _field_type(column: ColumnSpec) -> Any:
    if column.kind == "ordinal":
        return _level(column.order or [])
    if column.kind == "categorical" and column.values:
        return _level(column.values)
    if column.kind == "boolean":
        return Annotated[bool, BeforeValidator(_yes_or_no)]
    if column.kind == "numeric":  # the range first, so the schema says it as minimum and maximum
        return Annotated[
            float,
            Field(ge=column.min, le=column.max, allow_inf_nan=False),
            BeforeValidator(_not_a_truth_value),
        ]
    return Annotated[str, Field(max_length=200, pattern=PRINTABLE)]


def _yes_or_no(value: Any) -> Any:
    """The words a data file may use (Yes/No, true/false, 1/0, 1.0/0.0, any case) and JSON's true/false."""
    if isinstance(value, bool):
        return value
    word = level_key(value, TRUE_WORDS + FALSE_WORDS) if isinstance(value, str | int | float) else None
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    words = "/".join(f'"{w}"' for w in TRUE_WORDS + FALSE_WORDS if not w.isdigit())
    raise ValueError(f"{value!r} is not yes or no; allowed: true, false, 1, 0 or {words} in any case")


def _not_a_truth_value(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number is expected, not true or false")
    return value


def _blank_is_missing(record: Any) -> Any:
    """An empty or blank value is missing, as an empty cell is in a data file."""
    if isinstance(record, dict):
        return {k: None if isinstance(v, str) and not v.strip() else v for k, v in record.items()}
    return record


def _level(levels: list[str]) -> Any:
    """One of `levels`, matched as data files are (case, surrounding spaces, 3 / 3.0 / "3.0" as
    "3"); stored in the declared spelling."""
    declared = {level.lower(): level for level in levels}

    def spelled_as_declared(value: Any) -> Any:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return declared.get(level_key(value, declared), value)
        return value

    return Annotated[Literal[tuple(levels)], BeforeValidator(spelled_as_declared)]


# No control characters: PostgreSQL refuses NUL, and ids are shown to people.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def _not_only_dots(value: str) -> str:
    if set(value) == {"."}:
        raise ValueError("an id made only of dots cannot be linked to; use another character too")
    return value


# _not_only_dots in the document's words, as `not`: pydantic's regex engine has no lookahead.
ONLY_DOTS = {"not": {"pattern": r"^\.+$"}}
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=PRINTABLE, json_schema_extra=ONLY_DOTS),
    AfterValidator(_not_only_dots),
]


def score_request_model(record: type[BaseModel]) -> type[BaseModel]:
    """The body of POST /v1/scores around the generated record model."""
    fields: dict[str, Any] = {
        "assessment_id": (Identifier | None, None),
        "person_id": (Identifier | None, None),
        "record": (record, ...),
    }
    return create_model(
        "ScoreRequest",
        __config__=ConfigDict(extra="forbid"),
        __validators__={
            "few_unknown_fields": model_validator(mode="before")(few_unknown_fields(fields)),
            "each_name_once": model_validator(mode="before")(each_name_once),
        },
        **fields,
    )


class ModelRef(BaseModel):
    name: str = Field(description="The registered model's name in the MLflow registry")
    version: str = Field(description="Its registry version that made the score")
    run_id: str = Field(description="The MLflow training run that logged that version")


class Risk(BaseModel):
    probability: float = Field(
        description="Calibrated probability of a new arrest within horizon_years of release, from the "
        "release-time inputs only"
    )
    band: str = Field(
        description="One of the risk_bands.labels of GET /v1/model for the version that made the score "
        "(a score of an earlier version may hold a band of its own spec)"
    )
    horizon_years: float = Field(description="The outcome's horizon the probability is over, in years")


class Need(BaseModel):
    need: str = Field(description="The need's name, as the spec defines it")
    probability: float = Field(description="The need model's probability, from the other inputs")
    observed: bool | None = Field(
        default=None,
        description="Whether the record itself shows the need, when the need's rule has release-time "
        "inputs among its sources and they settle it; null when they cannot (the sources that would "
        "decide it are missing or known only later). When not null it decides `flagged`.",
    )
    flagged: bool = Field(
        description="`observed` when known, otherwise probability >= the need's flag threshold "
        "(need_flag_thresholds of GET /v1/model)"
    )
    interventions: list[str] = Field(description="The interventions the spec maps to this need, in its order")


class Contribution(BaseModel):
    input: str = Field(description="A model input: a record field, or an input the spec derives from them")
    value: str | float | bool | None = Field(
        description="The input's value as the record gave it (a derived input's computed number); null when "
        "missing, which the model reads as missing, not as a default"
    )
    domain: str = Field(description="The spec's domain of the input, the key it is summed under in by_domain")
    contribution: float = Field(
        description="What this input adds to the log-odds (tree SHAP value times the calibration slope); "
        "positive raises the probability"
    )
    unseen: bool = Field(
        default=False,
        description="Present (and true) only for a free-text input whose value training never saw: "
        "the model read it as missing. Absent otherwise.",
    )


class Explained(BaseModel):
    """One output's exact explanation: base_value + sum(contributions) = log_odds = logit(probability)."""

    base_value: float = Field(
        description="The calibrated log-odds before any input is considered: the model's expected margin "
        "over its training data, through the calibration map"
    )
    log_odds: float = Field(description="The calibrated log-odds of the output's probability")
    contributions: list[Contribution] = Field(
        description="Every input the output's model reads, largest absolute contribution first"
    )
    by_domain: dict[str, float] = Field(
        description="The contributions summed per domain, largest absolute sum first"
    )


class Explanation(BaseModel):
    identity: str = Field(description="The identity every explanation below holds, in words")
    risk: Explained = Field(description="Of risk.probability")
    needs: dict[str, Explained] = Field(description="Of each need's probability, by need name")


class ScorePublic(BaseModel):
    id: str = Field(description="The score's id in the audit trail: GET /v1/scores/{id} reads it back")
    created_at: datetime = Field(description="When the audit trail recorded the score (UTC)")
    request_id: str = Field(description="The X-Request-ID of the request that made it (sent or generated)")
    assessment_id: str | None = Field(description="As sent with the record (null when not sent)")
    person_id: str | None = Field(
        description="As sent with the record (null when not sent): GET /v1/scores?person_id= finds it"
    )
    model: ModelRef = Field(description="The model version that made the score")
    risk: Risk = Field(description="Relapse risk")
    needs: list[Need] = Field(description="Every need of the spec, in its order")
    explanation: Explanation = Field(description="Exact additive explanations of risk and of every need")
    warnings: list[str] = Field(
        default_factory=list,
        description="Present only when something about the record weakens the score, in plain words "
        "(a free-text input with a value training never saw, read as missing; an allowed value no training "
        "record held; a number beyond every training record's; inputs left out that every training record "
        "gave). Absent otherwise.",
    )


KEY_ID = "The API key that made the score (`python -m serving keys list` names it)"


class ScoreRead(ScorePublic):
    """A score as returned when made, with what only a read shows: its input record and the key."""

    record: dict[str, Any] = Field(
        description="The record scored, as the audit trail holds it (levels in the spec's spelling, "
        "protected attributes included)"
    )
    key_id: str = Field(description=KEY_ID)


class FieldError(BaseModel):
    field: str = Field(
        description="Where: dotted path, e.g. record.Gender, query.band, header.Idempotency-Key"
    )
    message: str = Field(description="What is wrong and what is allowed")
    value: str | int | float | bool | None = Field(
        description="The value refused (as text when JSON cannot carry it: NaN, an integer beyond 64 bits); "
        "null when it was missing, null, an object or an array"
    )


class BatchItem(BaseModel):
    index: int = Field(description="The record's position in the request's `records`, from 0")
    status: Literal[201, 422] = Field(description="201 scored, or 422 refused with `errors`")
    score: ScorePublic | None = Field(None, description="The score, when status is 201")
    errors: list[FieldError] | None = Field(
        None, description="Every bad field of the record with what is allowed, when status is 422"
    )


class BatchPublic(BaseModel):
    scored: int = Field(description="Records scored and committed to the audit trail")
    failed: int = Field(description="Records refused (nothing recorded for them)")
    items: list[BatchItem] = Field(description="One per record, in the request's order")


class ScoreSummary(BaseModel):
    """A score without its record, needs and explanations: GET /v1/scores/{id} reads the whole."""

    id: str = Field(description="The score's id")
    created_at: datetime = Field(description="When the audit trail recorded it (UTC)")
    person_id: str | None = Field(description="As sent with the record (null when not sent)")
    assessment_id: str | None = Field(description="As sent with the record (null when not sent)")
    model_name: str = Field(description="The registered model that made it")
    model_version: str = Field(description="Its version")
    risk_probability: float = Field(description="risk.probability of the score")
    risk_band: str = Field(description="risk.band of the score")
    key_id: str = Field(description=KEY_ID)


class ScorePage(BaseModel):
    items: list[ScoreSummary] = Field(description="This page's scores, newest first")
    total: int = Field(
        description="Every score the filters match, on every page, a cursor's too; it grows as scores "
        "arrive during a walk, so it is not the number still to come"
    )
    limit: int = Field(description="The most scores a page holds, as asked (`limit`) or the default")
    offset: int = Field(description="Scores skipped before this page, as asked (`offset`); 0 with a cursor")
    next_cursor: str | None = Field(
        description="Send as `cursor` for the next page (null on the last one): unlike an offset, it "
        "neither repeats nor skips a score when newer ones arrive between pages"
    )


class RestartRequired(BaseModel):
    version: str = Field(description="The version the alias points at")
    reason: str = Field(description="Why this server cannot swap it in while running")


class LoadFailed(BaseModel):
    version: str = Field(description="The version the alias points at")
    reason: str = Field(description="Why it could not be loaded, and which version still serves")


class RiskBandsPublic(BaseModel):
    """How the serving version turns a probability into a band, so a client can show where a score lies."""

    labels: list[str] = Field(description="The risk bands, lowest risk first")
    cut_points: list[float] = Field(
        description="A probability at or above cut_points[i] (and below the next) is in labels[i + 1]"
    )
    operating_threshold: float = Field(
        description="The probability at and above which the model predicts a new arrest: where the fairness "
        "audit's FPR and FNR are measured"
    )


class ModelPublic(BaseModel):
    name: str = Field(description="The registered model's name (REINTEGRA_MODEL_NAME)")
    version: str = Field(description="The version this server scores with")
    alias: str = Field(description="The alias it follows (REINTEGRA_MODEL_ALIAS), polled and reloaded")
    run_id: str = Field(description="The MLflow training run that logged the version")
    loaded_at: datetime = Field(description="When this server loaded it (UTC)")
    spec: str = Field(description="The name of the dataset spec it was trained on")
    inputs: list[str] = Field(description="Every model input, in the spec's order")
    risk_bands: RiskBandsPublic = Field(description="How a probability becomes a band")
    need_flag_thresholds: dict[str, float] = Field(
        description="Each need's probability at and above which it is flagged (when the record does not "
        "settle it)"
    )
    metrics: dict[str, Any] = Field(
        description="On the training run's test part, as `python -m training evaluate` prints them: `risk` "
        "(auc, brier, log_loss, ece, calibration slope and intercept, ...), `needs` (auc and prevalence of "
        "each), `macro_auc`; and `run`: every metric the training run logged in MLflow"
    )
    baselines: dict[str, Any] = Field(
        description="The baselines on the same rows, by name: the logistic regression and the spec's "
        "incumbent score when it declares one (auc, brier)"
    )
    fairness: dict[str, Any] = Field(
        description="The audit per protected attribute, as `python -m training evaluate` prints it: each "
        "group's n, base rate, auc, ece, fpr and fnr at the operating threshold, the gaps between groups, "
        "and the groups per risk band"
    )
    intersections: dict[str, Any] = Field(
        default_factory=dict,
        description="The audit by every pair of protected attributes ('A x B'), as fairness gives each one",
    )
    model_card: str = Field(description="The version's model card, in Markdown")
    missing_documents: list[str] = Field(
        default_factory=list,
        description="Documents the version's training run lacks in MLflow (deleted from its artifacts, or "
        "logged before the release that writes them); what they fill is then empty: evaluation.json fills "
        "metrics, baselines, fairness and intersections, model_card.md model_card, reference_profile.json "
        "drift (GET /v1/model/drift), plots.json the model page's plot descriptions",
    )
    forced_promotion_reason: str | None = Field(
        None, description="Why this version serves although it failed a promotion gate (None: it passed)"
    )
    restart_required: RestartRequired | None = Field(
        None, description="Set while the alias points at a version this server serves only after a restart"
    )
    load_failed: LoadFailed | None = Field(
        None,
        description="Set while the alias points at a version this server could not load; polling does not "
        "try it again until the alias moves, an admin reload does",
    )


class ReloadPublic(BaseModel):
    previous_version: str | None = Field(description="The version served before the reload")
    version: str = Field(description="The version served now")
    changed: bool = Field(description="Whether the reload swapped another version in")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="about:blank: the status and title say what kind of problem")
    title: str = Field(description="The HTTP status's reason, or a short name of the problem")
    status: int = Field(description="The HTTP status code")
    detail: str | None = Field(None, description="What went wrong with this request, and what to do")
    instance: str | None = Field(None, description="The path of the request")
    request_id: str | None = Field(None, description="The X-Request-ID of the request, as in every log line")
    errors: list[FieldError] | None = Field(
        None,
        description="On a 422: every bad field (of the body, the query or a header) with what is allowed",
    )
    record_changes: list[str] | None = Field(
        None,
        description="Only on the 409 of POST /v1/admin/reload: each record field added, removed or changed",
    )
    checks: dict[str, bool] | None = Field(
        None, description="Only on the 503 of GET /readyz: each readiness check and whether it passed"
    )


def record_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What a caller sending `old`-shaped records meets under `new` (both record JSON schemas): the
    fields added, removed or changed, each with how. Only fields can differ: the rest of a record schema
    (title, description, no other fields, examples) is the same for every spec."""
    before, after = old.get("properties", {}), new.get("properties", {})
    changes = [f"added field {name}" for name in after if name not in before]
    changes += [f"removed field {name}" for name in before if name not in after]
    for name in [n for n in before if n in after and before[n] != after[n]]:
        changes.append(f"changed field {name} ({'; '.join(_field_changes(before[name], after[name]))})")
    return changes


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How one field's schema changed, in a caller's words: type, levels, range, text, meaning."""
    was, now = _accepted(old), _accepted(new)
    if was.get("type") != now.get("type"):
        return [f"type {was.get('type')} is now {now.get('type')}"]
    how = []
    levels, new_levels = _levels(was), _levels(now)
    if bool(levels) != bool(new_levels):  # free text is not "every level removed"
        how.append(f"{_text_allowed(levels)} is now {_text_allowed(new_levels)}")
    elif added := [level for level in new_levels if level not in levels]:
        how.append("levels added: " + ", ".join(map(repr, added)))
    if levels and new_levels and (removed := [level for level in levels if level not in new_levels]):
        how.append("levels removed: " + ", ".join(map(repr, removed)))
    if levels != new_levels and sorted(levels) == sorted(new_levels):
        how.append("levels reordered")
    for key, word in (("minimum", "minimum"), ("maximum", "maximum"), ("maxLength", "longest text")):
        if was.get(key) != now.get(key):
            how.append(f"{word} {_bound(was.get(key))} is now {_bound(now.get(key))}")
    if old.get("description") != new.get("description"):
        how.append(f"description {old.get('description')!r} is now {new.get('description')!r}")
    return how or ["its schema changed"]


def _levels(accepted: dict[str, Any]) -> list[Any]:
    """The values a field allows (pydantic writes a single level as `const`); [] for free text."""
    return accepted.get("enum") or ([accepted["const"]] if "const" in accepted else [])


def _text_allowed(levels: list[Any]) -> str:
    return "levels " + ", ".join(map(repr, levels)) if levels else "any text"


def _accepted(field: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional field's schema."""
    return next((s for s in field.get("anyOf", [field]) if s.get("type") != "null"), {})


def _bound(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class BinShare(BaseModel):
    bin: str = Field(description="A bin of a number (deciles of the test part), a level, or a risk band")
    reference: float = Field(description="Its share in the test part at training (of the given values)")
    window: float = Field(description="Its share in the window (of the given values; 0 when none is given)")


class ColumnDrift(BaseModel):
    name: str = Field(description="The column, as the spec names it")
    kind: str = Field(description="Its kind in the spec: numeric, ordinal, categorical or boolean")
    psi: float | None = Field(
        description="Population stability index of the window's given values against the test part's, "
        "over the bins below (a share of 0 counts as 0.0001); null when the window gives no value"
    )
    level: Literal["none", "moderate", "major"] | None = Field(
        description="none below 0.1, moderate below 0.25, major from 0.25; null when the window gives fewer "
        "than 100 values, where sampling noise alone can pass 0.1"
    )
    values: int = Field(description="How many of the window's records give this column")
    missing_reference: float = Field(description="Share of the test part's records missing it")
    missing_window: float | None = Field(description="Share of the window's records missing it")
    missing_change: float | None = Field(description="missing_window - missing_reference")
    bins: list[BinShare] = Field(description="The shares compared, bin by bin")


class RateChange(BaseModel):
    reference: float = Field(description="On the test part at training")
    window: float | None = Field(description="Over the window (null when it holds no score)")
    change: float | None = Field(description="window - reference")


class NeedDrift(RateChange):
    need: str = Field(description="The need's name")


class OutputDrift(BaseModel):
    bands: list[BinShare] = Field(description="Share of scores in each risk band")
    band_psi: float | None = Field(description="Population stability index of the band shares")
    band_level: Literal["none", "moderate", "major"] | None = Field(
        description="band_psi's level, as an input's (null when fewer than 100 scores)"
    )
    mean_risk: RateChange = Field(description="Mean risk probability")
    need_flag_rates: list[NeedDrift] = Field(description="Share of scores flagging each need")


class DriftWindow(BaseModel):
    since: datetime | None = Field(description="`since` as asked (null: from the first score)")
    until: datetime | None = Field(description="`until` as asked (null: up to now)")
    scores: int = Field(description="Scores of the serving version read from the window, newest first")
    limit: int = Field(description="The most scores one request reads, whatever the window holds")
    capped: bool = Field(
        description="True when the window holds more scores than `limit`: only the newest were read"
    )
    oldest: datetime | None = Field(description="The oldest score read")
    newest: datetime | None = Field(description="The newest score read")


class DriftPublic(BaseModel):
    model: ModelRef = Field(description="The serving version, whose scores are compared")
    window: DriftWindow = Field(description="The scores read")
    reference_rows: int | None = Field(description="Rows of the test part the reference profile was taken on")
    message: str | None = Field(
        description="Why nothing is compared, when nothing is: no reference profile, or fewer than 100 scores"
    )
    inputs: list[ColumnDrift] = Field(description="Each model input, in the spec's order")
    protected: list[ColumnDrift] = Field(
        description="Each protected attribute's group shares, for fairness monitoring only (never an input)"
    )
    outputs: OutputDrift | None = Field(description="The scores' drift (null when nothing is compared)")
