"""Dataset specs: the declarative description of one record layout (see docs/spec-format.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from features.records import first_bad_byte

Kind = Literal["categorical", "ordinal", "boolean", "numeric"]
Known = Literal["release", "supervision"]
Operator = Literal["<", "<=", ">", ">=", "==", "!="]

TRUE_WORDS = ("yes", "true", "1")
FALSE_WORDS = ("no", "false", "0")
# Text of a whole-number float ("3.0"): pandas writes counts so whenever a column has gaps.
WHOLE_NUMBER = r"^(-?\d+)\.0+$"
DERIVABLE_KINDS = ("numeric", "ordinal", "boolean")  # kinds whose values are quantities
# The audit trail stores a score's band in 32 characters, and searches and pages filter on it.
MAX_BAND_LABEL = 32
QUOTE_HINT = 'YAML reads unquoted Yes/No/On/Off as booleans and 1 as a number: quote them, as in "Yes"'


class SpecError(ValueError):
    """A spec that cannot be loaded or contradicts itself."""


class SpecProblems(ValueError):
    """Every cross-reference problem of a spec, raised together so each can be reported on its own line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class _Strict(BaseModel):
    # YAML reads .nan and .inf as numbers: a NaN bound or gate would compare false and silently do nothing
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ColumnSpec(_Strict):
    """One attribute of a record: its kind, allowed values, when it is known and its need domain."""

    name: str
    kind: Kind
    known: Known = "release"
    domain: str
    values: list[str] | None = None
    order: list[str] | None = None
    min: float | None = None
    max: float | None = None
    required: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _check_kind_fields(self) -> ColumnSpec:
        if self.kind == "ordinal" and not self.order:
            raise ValueError(f"ordinal column {self.name} needs 'order' (its levels, lowest first)")
        if self.kind != "ordinal" and self.order is not None:
            raise ValueError(f"'order' is only for ordinal columns; {self.name} is {self.kind}")
        if self.values is not None and self.kind != "categorical":
            raise ValueError(f"'values' is only for categorical columns; {self.name} is {self.kind}")
        if self.values == []:  # not a free-text column: an empty list is a placeholder left unfilled
            raise ValueError(
                f"column {self.name} lists no values; list them, or leave out 'values' to accept any text"
            )
        if (self.min is not None or self.max is not None) and self.kind != "numeric":
            raise ValueError(f"'min'/'max' are only for numeric columns; {self.name} is {self.kind}")
        levels = self.order or self.values or []
        if len({level.casefold() for level in levels}) != len(levels):
            raise ValueError(f"column {self.name} lists a value twice (values are matched ignoring case)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name}: min {self.min:g} is above max {self.max:g}")
        return self

    def level(self, value: object) -> str | None:
        """The declared value or level that `value` names, ignoring case and surrounding spaces
        (a whole number 1 or 1.0 names "1"), as data files are read; None when it names none."""
        if is_whole_number(value):
            value = int(value)  # type: ignore[call-overload]
        key = str(value).strip().casefold()
        return next((level for level in self.order or self.values or [] if level.casefold() == key), None)

    def allowed(self) -> str:
        """Human-readable description of the values this column accepts."""
        if self.kind == "ordinal":
            return "one of " + ", ".join(repr(v) for v in self.order or [])
        if self.kind == "categorical" and self.values:
            return "one of " + ", ".join(repr(v) for v in self.values)
        if self.kind == "boolean":
            return "Yes/No, True/False or 1/0 (any case)"
        if self.kind == "numeric":  # never "[0, inf]": infinite values are refused
            if self.min is not None and self.max is not None:
                return f"a number in [{self.min:g}, {self.max:g}]"
            if self.min is not None:
                return f"a finite number >= {self.min:g}"
            return "a finite number" if self.max is None else f"a finite number <= {self.max:g}"
        return "any text"


class Condition(_Strict):
    """One comparison of a need rule: column, operator and value."""

    column: str
    op: Operator
    value: str | int | float | bool  # int kept apart from float: `1` must read as "1", not "1.0"


class NeedSpec(_Strict):
    """A need label as a declarative rule over source columns, and the interventions for it."""

    name: str
    description: str = ""
    all_of: list[Condition] | None = Field(default=None, alias="all")
    any_of: list[Condition] | None = Field(default=None, alias="any")
    interventions: list[str]
    flag_threshold: float = Field(default=0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _check_one_combinator(self) -> NeedSpec:
        if (self.all_of is None) == (self.any_of is None):
            raise ValueError(f"need {self.name} must have exactly one of 'all' or 'any'")
        if not self.conditions:
            raise ValueError(
                f"need {self.name} has an empty '{self.combinator}'; list at least one condition"
            )
        if not self.interventions:
            raise ValueError(f"need {self.name} lists no interventions")
        return self

    @property
    def combinator(self) -> Literal["all", "any"]:
        return "all" if self.all_of is not None else "any"

    @property
    def conditions(self) -> list[Condition]:
        return self.all_of if self.all_of is not None else self.any_of or []

    @property
    def sources(self) -> list[str]:
        """Columns the label is computed from; never inputs for predicting this need."""
        return list(dict.fromkeys(c.column for c in self.conditions))


class DerivedSpec(_Strict):
    """An input computed from other inputs by one declared arithmetic operation (no code)."""

    name: str
    domain: str
    op: Literal["sum", "difference", "product", "ratio"]
    of: list[str] = Field(min_length=2)
    offset: float = 0.0
    description: str = ""

    def as_column(self) -> ColumnSpec:
        """The number it is, as a column: how drift profiles and compares it."""
        return ColumnSpec(name=self.name, kind="numeric", domain=self.domain, description=self.description)

    @model_validator(mode="after")
    def _check_arity(self) -> DerivedSpec:
        if self.op in ("difference", "ratio") and len(self.of) != 2:
            raise ValueError(f"derived {self.name}: {self.op} takes exactly two inputs")
        return self


class OutcomeSpec(_Strict):
    column: str
    horizon_years: float = Field(gt=0)
    description: str = ""


class IncumbentSpec(_Strict):
    column: str
    name: str = ""
    higher_is_riskier: bool = True


class RiskBands(_Strict):
    cut_points: list[float]
    labels: list[str]

    @model_validator(mode="after")
    def _check_bands(self) -> RiskBands:
        cuts = self.cut_points
        if any(not 0 < c < 1 for c in cuts) or cuts != sorted(set(cuts)):
            raise ValueError("risk_bands.cut_points must be strictly increasing and inside (0, 1)")
        if len(self.labels) != len(cuts) + 1:
            raise ValueError(
                f"risk_bands needs {len(cuts) + 1} labels for {len(cuts)} cut points, got {len(self.labels)}"
            )
        for label in self.labels:
            unprintable = [c for c in label if not c.isprintable()]
            if not 0 < len(label) <= MAX_BAND_LABEL or unprintable:
                why = (
                    f"holds {unprintable[0]!r}, which does not print"
                    if unprintable
                    else f"has {len(label)} characters"
                )
                raise ValueError(
                    f"risk_bands.labels: {label!r} {why}; each label needs 1 to "
                    f"{MAX_BAND_LABEL} printable characters (the audit trail stores and filters on it)"
                )
        repeated = _repeated(self.labels)
        if repeated:
            raise ValueError(
                f"risk_bands.labels lists {', '.join(repeated)} twice; each band needs its own label"
            )
        return self

    def band(self, probability: float) -> str:
        """Band of a probability: a cut point belongs to the band above it."""
        return self.labels[sum(probability >= c for c in self.cut_points)]


# Metrics are ratios of counts: 11/20 - 10/20 is 0.050000000000000044, which must meet a limit of 0.05.
GATE_TOLERANCE = 1e-9


def at_most(value: float, limit: float) -> bool:
    """A gate's maximum is met when equalled, to GATE_TOLERANCE; promote and the model page both ask here."""
    return value <= limit + GATE_TOLERANCE


class Gates(_Strict):
    """Promotion gates: what a model version must reach before it may serve."""

    fairness_attribute: str | None = None
    operating_threshold: float = Field(default=0.5, gt=0, lt=1)
    min_auc_gain_over_incumbent: float = 0.0
    max_auc_below_logistic: float = 0.005
    # An error or a gap is within [0, 1]: a negative limit no version can meet, so it is a typo.
    max_ece: float = Field(default=0.03, ge=0, le=1)
    max_fpr_gap: float = Field(default=0.05, ge=0, le=1)
    min_group_size: int = Field(default=30, ge=1)


class DatasetSpec(_Strict):
    """The whole layout: id, outcome, columns, protected attributes, needs, bands and gates."""

    name: str
    description: str = ""
    id: str
    outcome: OutcomeSpec
    protected: list[str] = []
    incumbent: IncumbentSpec | None = None
    risk_bands: RiskBands
    gates: Gates = Gates()
    needs: list[NeedSpec] = []
    columns: list[ColumnSpec]
    derived: list[DerivedSpec] = []

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        """The name is the layout's identity: train compares it to keep another layout from a model's name,
        so two specs with a blank name would pass as one."""
        if not name.strip():
            raise ValueError("a spec needs a name: train compares it to tell layouts apart")
        if name != name.strip():
            raise ValueError(f"{name!r} has spaces around it: write {name.strip()!r}")
        return name

    @model_validator(mode="after")
    def _check_references(self) -> DatasetSpec:
        """Every cross-reference problem at once, so a spec is fixed in one pass, not one error a run."""
        problems = [
            *self._check_columns(),
            *self._check_incumbent(),
            *self._check_derived(),
            *self._check_needs(),
        ]
        if problems:
            raise SpecProblems(problems)
        return self

    def _check_columns(self) -> Iterator[str]:
        names = [c.name for c in self.columns]
        duplicated = _repeated(names)
        if duplicated:
            yield f"columns listed twice: {', '.join(duplicated)}"
        if self.outcome.column == self.id:
            yield f"outcome.column {self.id} is also the id; the outcome needs a column of its own"
        roles = {self.id: "the id"}
        roles.setdefault(self.outcome.column, "outcome.column")  # one line when they are the same column
        for special, role in roles.items():
            if special in names:
                yield f"{special} is {role}; do not list it under columns"
        repeated = _repeated(self.protected)
        if repeated:
            yield f"protected lists {', '.join(repeated)} twice; list each attribute once"
        for name in dict.fromkeys(self.protected):
            if name not in names:
                yield f"protected attribute {name} is not a declared column"
            elif self.column(name).kind == "numeric":
                yield (
                    f"protected attribute {name} is numeric: each distinct value would be a group of its "
                    "own; declare it as categorical or ordinal with the groups to audit (age bands, say)"
                )
        attribute = self.gates.fairness_attribute
        if attribute is not None and attribute not in self.protected:
            yield f"gates.fairness_attribute {attribute} is not a protected attribute"

    def _check_incumbent(self) -> Iterator[str]:
        if self.incumbent is None:
            return
        column, kind = self.incumbent.column, self._kind(self.incumbent.column)
        if kind is None:
            yield (
                f"incumbent.column {column} is not a declared column; it must be a numeric or ordinal column"
            )
        elif kind not in ("numeric", "ordinal"):
            yield f"incumbent.column {column} is {kind}; it must be a numeric or ordinal column"

    def _check_derived(self) -> Iterator[str]:
        taken = {self.id, self.outcome.column, *(c.name for c in self.columns)}
        earlier: set[str] = set()
        for derived in self.derived:
            if derived.name in taken | earlier:
                yield (
                    f"derived {derived.name}: that name is already the id, the outcome, a column or an "
                    "earlier derived input; give it a new name"
                )
            for source in dict.fromkeys(s for s in derived.of if s not in earlier):
                problem = self._derived_source_problem(derived.name, source)
                if problem:
                    yield problem
            earlier.add(derived.name)

    def _derived_source_problem(self, derived: str, source: str) -> str | None:
        """A source must be a quantity known at release: derived inputs are release-time inputs."""
        if source in self.protected:
            return f"derived {derived} uses protected attribute {source}; those are never inputs"
        kind = self._kind(source)
        if kind is None:
            return (
                f"derived {derived} uses unknown input {source}; 'of' lists declared columns or "
                "earlier derived inputs"
            )
        if kind not in DERIVABLE_KINDS:
            return (
                f"derived {derived} uses {kind} column {source}, whose codes have no order; "
                f"derived inputs take {', '.join(DERIVABLE_KINDS)} columns"
            )
        if self.column(source).known != "release":
            return (
                f"derived {derived} uses {source}, which is known only during supervision; derived "
                "inputs are model inputs at release, so their columns must be known at release"
            )
        return None

    def _check_needs(self) -> Iterator[str]:
        repeated = _repeated([n.name for n in self.needs])
        if repeated:
            yield f"needs listed twice: {', '.join(repeated)}"
        for need in self.needs:
            for condition in need.conditions:
                problem = self._condition_problem(need.name, condition)
                if problem:
                    yield problem

    def _kind(self, name: str) -> str | None:
        return next((c.kind for c in self.columns if c.name == name), None)

    def _condition_problem(self, need: str, condition: Condition) -> str | None:
        """The first thing wrong with one condition of a need, if anything."""
        if condition.column not in [c.name for c in self.columns]:
            return f"need {need} refers to unknown column {condition.column}"
        column = self.column(condition.column)
        value = condition.value
        if column.name in self.protected:
            return (
                f"need {need} is defined by protected attribute {column.name}; a need may not be defined by "
                "a protected attribute"
            )
        if column.kind in ("boolean", "categorical") and condition.op not in ("==", "!="):
            return f"need {need}: {column.kind} column {column.name} allows == or != only"
        if column.kind == "boolean" and str(value).strip().lower() not in TRUE_WORDS + FALSE_WORDS:
            return (
                f"need {need}: {value!r} is not a value of boolean column {column.name}; "
                f"allowed: {column.allowed()}"
            )
        if column.kind == "categorical" and column.values and column.level(value) is None:
            return (
                f"need {need}: {value!r} is not a value of {column.name}; allowed: {column.allowed()}, "
                f"in any case ({QUOTE_HINT})"
            )
        if column.kind == "numeric" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"need {need}: numeric column {column.name} compares to a number, not {value!r}"
        levels = column.order or []
        named = column.level(value) if column.kind == "ordinal" and not isinstance(value, str) else None
        if named is not None and levels.index(named) != value:
            is_position = is_whole_number(value) and 0 <= value < len(levels)  # type: ignore[operator]
            other = levels[int(value)] if is_position else None  # type: ignore[arg-type]
            return (
                f"need {need}: {value!r} is level {named!r} of {column.name}"
                + (f" and also the position of level {other!r}" if other else "")
                + f'; a number is read as a position: quote the level meant (value: "{named}"'
                + (f' or value: "{other}")' if other else ")")
            )
        if column.kind == "ordinal" and (
            (isinstance(value, str) and column.level(value) is None)
            or (not isinstance(value, str) and not (is_whole_number(value) and 0 <= value < len(levels)))
        ):
            return (
                f"need {need}: {value!r} is not a level of {column.name}; "
                f"use a level or its position (0 = {levels[0]!r} to {len(levels) - 1} = {levels[-1]!r})"
                + (f" ({QUOTE_HINT})" if isinstance(value, bool) else "")
            )
        return None

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{name} is not a column of spec {self.name}")

    def need(self, name: str) -> NeedSpec:
        for need in self.needs:
            if need.name == name:
                return need
        raise KeyError(f"{name} is not a need of spec {self.name}")

    def inputs(self, known: Iterable[str] = ("release",), exclude: Iterable[str] = ()) -> list[str]:
        """Model inputs: columns known at the given times, never protected, minus `exclude`."""
        known, exclude = set(known), set(exclude)
        return [
            c.name
            for c in self.columns
            if c.known in known and c.name not in self.protected and c.name not in exclude
        ]

    def layout(self) -> list[str]:
        """Every column of a labelled file, in declared order: id, columns, outcome."""
        return [self.id, *(c.name for c in self.columns), self.outcome.column]

    def derived_inputs(self, inputs: Iterable[str]) -> list[DerivedSpec]:
        """Derived inputs computable from `inputs` (and from each other), in declared order."""
        available, chosen = set(inputs), []
        for derived in self.derived:
            if set(derived.of) <= available:
                chosen.append(derived)
                available.add(derived.name)
        return chosen

    def domains(self) -> dict[str, str]:
        return {c.name: c.domain for c in self.columns} | {d.name: d.domain for d in self.derived}


def _repeated(items: list[str]) -> list[str]:
    return sorted({item for item in items if items.count(item) > 1})


def builtin_specs() -> list[str]:
    """Names of the specs shipped with the package."""
    folder = resources.files("features") / "specs"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_spec(name_or_path: str | Path) -> DatasetSpec:
    """Load a spec by built-in name (e.g. ``georgia_parole``) or from a YAML file."""
    path = Path(name_or_path)
    if path.is_dir():
        raise SpecError(
            f"spec {path} is a folder; give a built-in spec name ({', '.join(builtin_specs())}) "
            "or the path of a spec YAML file (.yaml or .yml)"
        )
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SpecError(f"spec file {path} does not exist")
        data = path.read_bytes()
        where = first_bad_byte(data)
        if where:
            raise SpecError(f"spec file {path} is not UTF-8 text{where}; save it as UTF-8 and try again")
        text = data.decode("utf-8")
    elif str(name_or_path) in builtin_specs():
        text = (resources.files("features") / "specs" / f"{name_or_path}.yaml").read_text("utf-8")
    else:
        raise SpecError(
            f"unknown spec {name_or_path!r}: give a YAML file path or a built-in name "
            f"({', '.join(builtin_specs())})"
        )
    return parse_spec(text, source=str(name_or_path))


def parse_spec(text: str, source: str = "<spec>") -> DatasetSpec:
    """Parse spec YAML (safe loader: a spec never executes code)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: never executes code
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a YAML mapping with keys like name, id, columns")
    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {line}" for err in exc.errors() for line in _describe(err, data)]
        raise SpecError(f"{source}: invalid spec\n" + "\n".join(lines)) from exc


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping, where YAML keeps the last silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first:
                    raise _DuplicateKey(
                        f"line {line}: key {key.value!r} is given twice in one mapping (first on line "
                        f"{first[key.tag, key.value]}); give each key once"
                    )
                first[key.tag, key.value] = line
        return super().construct_mapping(node, deep)


def _describe(error: ErrorDetails, data: dict) -> list[str]:
    """One validation error for people: where, by item name, and what is wrong, without pydantic noise;
    a spec's cross-reference problems, one line each."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, SpecProblems):
        return cause.problems
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key; docs/spec-format.md lists the keys allowed here"
    elif error["type"] == "model_type":  # pydantic would name our class: "instance of OutcomeSpec"
        message = f"should be a mapping of keys (docs/spec-format.md lists them), not {error['input']!r}"
    elif error["type"] == "string_type" and isinstance(error["input"], bool | int | float):
        message += f", got {error['input']!r} ({QUOTE_HINT})"
    where = _location(error["loc"], data)
    return [f"{where}: {message}" if where else message]


def _location(loc: tuple[int | str, ...], data: object) -> str:
    """`columns[6] (school_status).kind`: list positions from 0, named when the item has a name."""
    parts: list[str] = []
    for step in loc:
        if isinstance(step, int) and parts:
            data = data[step] if isinstance(data, list) and 0 <= step < len(data) else None
            name = data.get("name") if isinstance(data, dict) else None
            parts[-1] += f"[{step}]" + (f" ({name})" if isinstance(name, str) else "")
        else:
            data = data.get(step) if isinstance(data, dict) else None
            parts.append(str(step))
    return ".".join(parts)


def is_whole_number(value: object) -> bool:
    """3 or 3.0, not a bool (YAML's yes/no) or a fraction: a level's position, or a level's text."""
    return not isinstance(value, bool) and isinstance(value, int | float) and float(value).is_integer()
