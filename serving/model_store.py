"""The serving model: loaded from the MLflow registry, swapped atomically when the alias moves."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import mlflow
from mlflow import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from models import DEFAULT_MODEL_NAME
from models.bundle import ScoringBundle
from models.pyfunc import load_bundle
from models.redact import hide_passwords
from models.registry import (
    FORCED_REASON_TAG,
    NOT_FOUND,
    REFERENCE_PROFILE,
    run_artifact,
    sqlite_path,
)
from serving.audit import CommitUnknown
from serving.schemas import record_changes, record_model
from serving.seal import AuditKeyError

log = logging.getLogger("reintegra.model")
# The fairness audit is read from evaluation.json, which holds it too (fairness.json is for run readers).
RUN_DOCUMENTS = ("evaluation.json", "model_card.md", "plots.json", REFERENCE_PROFILE)
# Who loads a version when no admin key asked, as the audit trail names them.
SERVER_START = "server start"
ALIAS_POLL = "alias poll"
# Polls after which a version that failed to load is tried again: its artifacts may come back (a folder
# restored, storage up again), and an admin reload mends only the worker that answers it.
RETRY_FAILED_POLLS = 10


class ModelUnavailable(RuntimeError):
    """No model could be loaded (no such alias, or the registry cannot be reached)."""


class RegistryUnreachable(ModelUnavailable):
    """MLflow did not answer: unlike a missing alias, the same request may succeed later."""


class LoadFailed(ModelUnavailable):
    """The alias points at a version whose artifacts could not be loaded; the poller leaves it alone
    until the alias moves or an admin reload tries again."""


class SchemaChanged(ModelUnavailable):
    """The alias points at a version that accepts different records; it needs a restart.

    `changes` names each record field added, removed or changed, so callers know what breaks."""

    def __init__(self, message: str, changes: list[str]):
        super().__init__(message)
        self.changes = changes


@dataclass(frozen=True)
class ServingModel:
    """One loaded version with the documents reviewers need; never changed after loading."""

    bundle: ScoringBundle
    name: str
    version: str
    run_id: str
    loaded_at: datetime
    metrics: dict[str, float] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    forced_reason: str | None = None  # why it was promoted although it failed a gate

    @property
    def evaluation(self) -> dict:
        return evaluation_of(self.documents)

    @property
    def missing_documents(self) -> list[str]:
        return missing_documents(self.documents)


class ModelHolder:
    """Holds the serving model; a reload loads beside the old one and swaps one reference.

    `on_serve(model, previous_version, actor)` runs before every swap and may refuse it by raising, so the
    audit trail names a version before any score it makes; `on_swap(name, version, previous_version)`
    runs after every swap,
    `on_waiting(name, version, previous_version)` whenever the version the alias points at but this
    process cannot serve changes (None: none), and `on_failed(name, version, previous_version)`
    likewise for a version that failed to load; the metrics use all three. `preloaded` is a version the
    starting process has loaded already: the first load serves it, not a second copy, while the alias
    still points at it; a version `on_serve` refused is kept the same way for the next try.
    """

    def __init__(
        self,
        name: str,
        alias: str,
        on_serve: Callable[[ServingModel, str | None, str], None],
        on_swap: Callable[[str, str, str | None], None],
        on_waiting: Callable[[str, str | None, str | None], None],
        on_failed: Callable[[str, str | None, str | None], None],
        preloaded: ServingModel | None = None,
    ):
        self.name, self.alias = name, alias
        self._preloaded = preloaded
        self._on_serve, self._on_swap = on_serve, on_swap
        self._on_waiting, self._on_failed = on_waiting, on_failed
        self._current: ServingModel | None = None
        self._refused: dict[str, tuple[str, list[str]]] = {}  # version -> (why, record changes)
        self._waiting: str | None = None
        self._failed: tuple[str, str] | None = None  # (version, why) the alias points at and failed to load
        self._polls_since_failure = 0
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def current(self) -> ServingModel:
        model = self._current
        if model is None:
            raise ModelUnavailable(f"no model loaded for {self.name}@{self.alias}")
        return model

    @property
    def loaded(self) -> bool:
        return self._current is not None

    @property
    def restart_required(self) -> tuple[str, str] | None:
        """(version, why) when the alias has moved to a version this process refused to swap in."""
        return (self._waiting, self._refused[self._waiting][0]) if self._waiting else None

    @property
    def load_failed(self) -> tuple[str, str] | None:
        """(version, why) when the alias points at a version whose artifacts could not be loaded."""
        return self._failed

    def reload(self, actor: str, retry_failed: bool = True) -> tuple[str | None, str]:
        """Load the version the alias points at, if it is new; returns (previous, current). `actor` says
        who asked, for the audit trail: an admin key's id, SERVER_START or ALIAS_POLL.

        A version whose record schema differs from the serving one is refused, and one that fails to
        load is remembered, so that polling (`retry_failed=False`) does not download either on every poll."""
        with self._reload_lock:
            previous = self._current
            try:
                version = self._alias_version()
            except ModelUnavailable as exc:  # no alias, or no MLflow: nothing changes here, and it says so
                if previous is None:
                    raise
                raise type(exc)(f"{exc}; still serving version {previous.version}") from exc
            if self._failed is not None and (self._failed[0] != version or retry_failed):
                self._fail(None)
            if previous is not None and previous.version == version:
                self._wait_for(None)
                return previous.version, version
            if version in self._refused:
                self._wait_for(version)
                raise SchemaChanged(*self._refused[version])
            if self._failed is not None:
                raise LoadFailed(self._failed[1])
            try:
                loaded = self._load(version)
            except ModelUnavailable as exc:
                if previous is None:
                    raise
                self._wait_for(None)
                self._fail((version, f"{exc}; still serving version {previous.version}"))
                log.error(
                    "%s; tried again when the alias moves, on an admin reload or in %d polls",
                    self._failed[1],
                    RETRY_FAILED_POLLS,
                )
                raise LoadFailed(self._failed[1]) from exc
            changes = record_changes(_record_schema(previous), _record_schema(loaded)) if previous else []
            if changes:
                why = (
                    f"version {version} accepts different records than version {previous.version} "
                    f"({'; '.join(changes)}); restart the server to serve it"
                )
                self._refused[version] = (why, changes)
                log.error("%s; still serving version %s", why, previous.version)
                self._wait_for(version)
                raise SchemaChanged(why, changes)
            previous_version = previous.version if previous else None
            # A version the audit trail refused (key rotated away) is kept: the next poll does not load it.
            try:
                self._on_serve(loaded, previous_version, actor)
            except Exception:
                self._preloaded = loaded
                raise
            self._current = loaded
            self._wait_for(None)
            log.info("serving %s version %s", self.name, version)
            self._on_swap(self.name, version, previous_version)
            return previous_version, version

    def _wait_for(self, version: str | None) -> None:
        if version != self._waiting:
            previous, self._waiting = self._waiting, version
            self._on_waiting(self.name, version, previous)

    def _fail(self, failed: tuple[str, str] | None) -> None:
        previous, self._failed = self._failed, failed
        self._on_failed(self.name, failed and failed[0], previous and previous[0])

    def start_polling(self, seconds: float) -> None:
        """Check the alias every `seconds` in a daemon thread; a failed check keeps the old model."""
        if seconds <= 0:
            return
        self._poller = threading.Thread(target=self._poll, args=(seconds,), daemon=True, name="alias-poll")
        self._poller.start()

    def stop_polling(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)

    def _poll(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self.poll_once()

    def poll_once(self) -> None:
        """One check of the alias, as the poller makes it: a failure is logged, never raised."""
        self._polls_since_failure = self._polls_since_failure + 1 if self._failed else 0
        retry = self._polls_since_failure >= RETRY_FAILED_POLLS
        if retry:
            self._polls_since_failure = 0
        try:
            self.reload(ALIAS_POLL, retry_failed=retry)
        except (SchemaChanged, LoadFailed):  # logged when the version was first refused, or failed again
            return
        except ModelUnavailable as exc:  # says why in one line: no alias, no MLflow
            log.warning("alias poll failed: %s", exc)
        except (SQLAlchemyError, CommitUnknown) as exc:  # the model_served event not taken: next poll
            log.error(
                "alias poll cannot record serving the new version, the audit store did not answer: %s; still "
                "serving version %s, and tried again at the next poll",
                str(exc).splitlines()[0],
                self.current.version,
            )
        except AuditKeyError as exc:  # the audit trail takes no model_served event until a restart
            log.error(
                "alias poll cannot record serving the new version: %s; still serving version %s",
                exc,
                self.current.version,
            )
        except Exception:  # the registry may be briefly unreachable; keep serving
            log.exception("alias poll failed; still serving the loaded version")

    def _alias_version(self) -> str:
        return alias_version(self.name, self.alias)

    def _load(self, version: str) -> ServingModel:
        preloaded, self._preloaded = self._preloaded, None
        if preloaded is not None and preloaded.version == version:
            return preloaded
        return load_version(self.name, version)


def load_version(name: str, version: str) -> ServingModel:
    """Version `version` of `name` with its documents; ModelUnavailable naming the first line of why
    not (its artifacts gone or unreadable, MLflow down), so a worker says it without a traceback."""
    client = MlflowClient()
    try:
        model_version = client.get_model_version(name, version)
        bundle = load_bundle(f"models:/{name}/{version}")
        run_id = model_version.run_id
        metrics = dict(client.get_run(run_id).data.metrics)
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise ModelUnavailable(
            f"cannot load version {version} of {name} from MLflow: {_first_line(exc)}"
        ) from exc
    except Exception as exc:  # a damaged bundle fails while unpickling, with any error at all
        raise ModelUnavailable(
            f"cannot load version {version} of {name} from MLflow: its bundle cannot be read "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    return ServingModel(
        bundle=bundle,
        name=name,
        version=version,
        run_id=run_id,
        loaded_at=datetime.now(UTC),
        metrics=metrics,
        documents=run_documents(run_id),
        forced_reason=model_version.tags.get(FORCED_REASON_TAG),
    )


def alias_version(name: str, alias: str) -> str:
    """The version `name@alias` points at; ModelUnavailable, saying what to do, when there is none."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code not in NOT_FOUND:  # retraining would not help: MLflow itself is out of reach
            raise RegistryUnreachable(
                f"MLflow did not answer for models:/{name}@{alias} "
                f"(MLFLOW_TRACKING_URI={hide_passwords(mlflow.get_tracking_uri())}): {_first_line(exc)}"
            ) from exc
        how = (
            "make run does both on the synthetic cohort"
            if name == DEFAULT_MODEL_NAME
            else f"python -m training train --name {name} ..., "
            f"then python -m training promote --name {name} --version VERSION"
        )
        raise ModelUnavailable(
            f"no model at models:/{name}@{alias}; train and promote one first ({how}); "
            f"looked in MLflow at {tracking_store()}"
        ) from exc


def _first_line(exc: Exception) -> str:
    """MLflow's message may quote the tracking URI, password and all."""
    return hide_passwords((str(exc).strip().splitlines() or [type(exc).__name__])[0])


def tracking_store() -> str:
    """Where MLflow was asked, as an operator can find it: a relative SQLite path depends on the folder
    the server was started from."""
    uri = hide_passwords(mlflow.get_tracking_uri())
    database = sqlite_path(uri)
    if database is None or database.is_absolute():
        return uri
    return f"{uri} ({database.resolve()}, from the working folder)"


def _record_schema(model: ServingModel) -> dict:
    """The JSON schema of the records this model accepts, as the API generates it."""
    return record_model(model.bundle.spec, {}).model_json_schema()


def run_documents(run_id: str) -> dict[str, str]:
    """The run's evaluation (with its fairness audit), model card, plot numbers and reference profile,
    those it has."""
    documents = {}
    for name in RUN_DOCUMENTS:
        try:
            documents[name] = run_artifact(run_id, name).decode()
        except mlflow.exceptions.MlflowException:
            continue
    return documents


def missing_documents(documents: dict[str, str]) -> list[str]:
    """The documents the run lacked when `documents` were read (deleted from its artifacts, or logged
    before the release that writes them), so a reader is told why what they fill is empty."""
    return [name for name in RUN_DOCUMENTS if name not in documents]


def evaluation_of(documents: dict[str, str]) -> dict:
    """The evaluation report among a run's documents ({} when it has none)."""
    return json.loads(documents.get("evaluation.json", "{}"))


def plots_of(documents: dict[str, str]) -> dict:
    """The numbers each plot of the run shows ({} for a run logged before plots.json)."""
    return json.loads(documents.get("plots.json", "{}"))


def reference_of(documents: dict[str, str]) -> dict | None:
    """The test part's reference profile drift is measured against (None for a run logged before it)."""
    text = documents.get(REFERENCE_PROFILE)
    return json.loads(text) if text is not None else None
