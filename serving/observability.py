"""Request ids, access metrics and log lines that carry the request id."""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.addresses import app_path
from serving.problems import problem

errors_log = logging.getLogger("reintegra.errors")
access_log = logging.getLogger("reintegra.access")
requests_log = logging.getLogger("reintegra.requests")
REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
MAX_REQUEST_ID = 64
_SAFE_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID}}}")


MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
SERVER_LOCK = "reintegra-server.lock"  # beside the workers' *.db files, which a scrape reads
# Methods labelled by name; any other one uvicorn parses (WebDAV's, PURGE, ...) is "other", so a
# client cannot add a series per method.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# Requests the HTTP protocol answers before any app code runs (serving.limits): it has no way to the
# app's Metrics, so the counter is the module's, and each app's registry registers it.
REFUSED_BEFORE_APP = Counter(
    "reintegra_refused_before_app_total",
    "Requests refused by the HTTP protocol before the app ran (a head too large, unreadable or too slow, "
    "a body that stopped arriving), by status and reason",
    ["status", "reason"],
    registry=None,
)


class Metrics:
    """Prometheus metrics of one app, in their own registry.

    With several workers (`PROMETHEUS_MULTIPROC_DIR` set, as `python -m serving --workers N`
    does), every worker writes its values to that folder and a scrape adds them up, so any
    worker answers for all.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(REFUSED_BEFORE_APP)
        self.requests = Counter(
            "reintegra_requests_total", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "reintegra_request_seconds",
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.scores = Counter("reintegra_scores_total", "Scores returned", ["band"], registry=self.registry)
        self.in_flight = Gauge(
            "reintegra_requests_in_flight",
            "API requests being answered, over live workers (each refuses any past REINTEGRA_MAX_IN_FLIGHT)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.shed = Counter(
            "reintegra_requests_shed_total",
            "API requests refused at once (503) because the worker was answering REINTEGRA_MAX_IN_FLIGHT",
            registry=self.registry,
        )
        self.replays = Counter(
            "reintegra_idempotent_replays_total",
            "Requests answered with an earlier answer to the same Idempotency-Key (nothing scored)",
            registry=self.registry,
        )
        self.model_version = self._per_version(
            "reintegra_model_version", "Version each worker serves (1 = serving, 0 = served before)"
        )
        self.restart_required = self._per_version(
            "reintegra_model_restart_required",
            "1 while the alias points at a version a worker refused to swap in (it accepts other records)",
        )
        self.load_failed = self._per_version(
            "reintegra_model_load_failed",
            "1 while the alias points at a version a worker could not load (artifacts gone or unreadable)",
        )

    def _per_version(self, metric: str, documentation: str) -> Gauge:
        """A gauge per model version whose 1 moves between versions, kept per live worker."""
        return Gauge(
            metric, documentation, ["name", "version"], registry=self.registry, multiprocess_mode="liveall"
        )

    def serving(self, name: str, version: str, previous: str | None) -> None:
        """Marks a model swap."""
        _move_one(self.model_version, name, previous, version)

    def waiting(self, name: str, version: str | None, previous: str | None) -> None:
        """Marks the version the alias points at but this worker cannot serve (None: caught up)."""
        _move_one(self.restart_required, name, previous, version)

    def failed(self, name: str, version: str | None, previous: str | None) -> None:
        """Marks the version the alias points at but this worker could not load (None: none)."""
        _move_one(self.load_failed, name, previous, version)

    def exposition(self) -> bytes:
        """The text a scrape returns: this worker's values, or every live worker's together."""
        if MULTIPROCESS_DIR not in os.environ:
            return generate_latest(self.registry)
        folder = os.environ[MULTIPROCESS_DIR]
        _forget_dead_workers(folder)
        combined = CollectorRegistry()
        combined.register(_SizedFiles(folder))
        return generate_latest(combined)

    @staticmethod
    def worker_stopped() -> None:
        """Drops this worker's live gauges from the shared folder."""
        if MULTIPROCESS_DIR in os.environ:
            multiprocess.mark_process_dead(os.getpid())


class _SizedFiles:
    """Adds up the workers' files but those still empty: a worker makes its file and sizes it after, and
    a scrape in between (a SIGHUP's new workers) failed whole with a 500, as did every scrape after a
    worker killed in between (prometheus/client_python issue 1199). A file once sized stays readable."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def collect(self) -> Iterable[Metric]:
        files = [str(path) for path in self.folder.glob("*.db") if _size(path) > 0]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def _size(path: Path) -> int:
    """0 for a file gone since it was listed: a live gauge of a worker that just stopped."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _forget_dead_workers(folder: str) -> None:
    """A worker killed outright never runs worker_stopped: drop its live gauges once it is gone,
    or a scrape would still show it serving beside the worker uvicorn started in its place. Two
    workers' scrapes may both find the same one: whichever removes it second finds it gone."""
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:  # alive, under another user
            continue


def _move_one(gauge: Gauge, name: str, old: str | None, new: str | None) -> None:
    """Moves the gauge's 1 from version `old` to `new`; the old one stays as 0, since other
    workers' values are files and a removed label would leave theirs behind."""
    if old is not None and old != new:
        gauge.labels(name, old).set(0)
    if new is not None:
        gauge.labels(name, new).set(1)


@contextlib.contextmanager
def shared_metrics_folder(workers: int) -> Iterator[None]:
    """Gives the workers of one server an empty folder for their metrics, for as long as it runs.

    Honours a `PROMETHEUS_MULTIPROC_DIR` already set, emptied first as prometheus_client asks (with
    one worker too, or a restart would add the previous run's counts); otherwise, for several
    workers, uses a temporary folder removed afterwards.
    """
    given = os.environ.get(MULTIPROCESS_DIR)
    if given:
        _usable_folder(Path(given))
        with _held_by_this_server(Path(given)):
            for stale in Path(given).glob("*.db"):
                stale.unlink()
            yield
        return
    if workers == 1:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="reintegra-metrics-") as folder:
        os.environ[MULTIPROCESS_DIR] = folder
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR]


@contextlib.contextmanager
def _held_by_this_server(folder: Path) -> Iterator[None]:
    """A lock on the folder for as long as this server runs (the kernel drops it when the process ends,
    even killed): a second server would empty it, and its workers would count in this one's scrapes."""
    with open(folder / SERVER_LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise MetricsFolderUnusable(
                f"{MULTIPROCESS_DIR}={folder}: another server (pid {holder}) keeps its metrics there; "
                "give each server a folder of its own"
            ) from exc
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


class MetricsFolderUnusable(OSError):
    """PROMETHEUS_MULTIPROC_DIR cannot be made or written: every worker would fail on its first metric."""


def _usable_folder(folder: Path) -> None:
    """Make the folder if it is not there yet, and write in it once, so a bad one stops the server at
    start in one line rather than each worker with a traceback that uvicorn restarts forever."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise MetricsFolderUnusable(
            f"{MULTIPROCESS_DIR}={folder}: cannot write metrics there: {exc}"
        ) from exc


# API answers hold people's records: no cache may keep them, unless a route says otherwise (the reads that
# a client revalidates by ETag, serving.conditional).
API_HEADERS = [(b"cache-control", b"no-store")]
# On every answer that does not set them itself (pages do): no browser sniffs another type into it and
# no other site frames it (/docs is where a key is typed in).
EVERY_ANSWER_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]


class RequestContextMiddleware:
    """Gives every request an id (X-Request-ID, kept when safe) and counts it by route and status.

    An error no handler turned into a problem is logged and answered here, inside the request's
    context, so its 500 and its log line carry the same id."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        if given and request_id != given:  # the client's id is in no answer or row: say why, not what it was
            requests_log.warning("replaced X-Request-ID: it %s", _unsafe_because(given))
        status = 500
        started = time.perf_counter()

        started_response = False
        request_id_header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        defaults = (
            [*API_HEADERS, *EVERY_ANSWER_HEADERS]
            if app_path(scope).startswith("/v1/")
            else EVERY_ANSWER_HEADERS
        )

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                headers = message.get("headers", [])
                present = {name.lower() for name, _ in headers}
                missing = [header for header in defaults if header[0] not in present]
                message["headers"] = [*headers, request_id_header, *missing]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # anything a handler did not turn into a problem: log it here, with the id
            errors_log.exception("unhandled error")
            if not started_response:
                detail = "the error was logged with this request id"
                await problem(500, "Internal error", detail, Request(scope))(scope, receive, send_with_id)
        finally:
            route = _route_label(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method, str(status)).observe(seconds)
            access_log.info(
                "%s %s %d %.1f ms key=%s", scope["method"], route, status, seconds * 1000, _key_id(scope)
            )
            request_id_var.reset(token)


def _unsafe_because(request_id: str) -> str:
    """Why a request id is not kept, in words that quote none of it (it could forge a log line)."""
    if len(request_id) > MAX_REQUEST_ID:
        return f"has more than {MAX_REQUEST_ID} characters"
    return "has characters other than letters, digits and . _ : -"


def _route_label(scope: Scope) -> str:
    """A route's template, a mount's prefix (static files), or "unmatched": never a raw path.

    FastAPI's own routes carry themselves in the scope once routed; plain Starlette routes (the OpenAPI
    document, the docs page) and requests answered before routing (a POST's 401 before its body is
    read, a 406) are looked up, through the routers the app includes."""
    route = scope.get("route")
    if route is None:
        routes = getattr(getattr(scope.get("app"), "router", None), "routes", [])
        route = next((r for r in iter_route_contexts(routes) if r.matches(scope)[0] is Match.FULL), None)
    return getattr(route, "path", None) or scope.get("root_path") or "unmatched"


def _key_id(scope: Scope) -> str:
    """The id of the API key the request was checked with ("-": none), never the key itself."""
    key = scope.get("state", {}).get("api_key")
    return key.id if key is not None else "-"


class RequestIdFilter(logging.Filter):
    """Adds the current request id to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s pid=%(process)d [%(request_id)s] %(message)s"


def uvicorn_log_config() -> dict:
    """uvicorn's own lines (a worker started, died or stopped) in the app's format: with its default
    ('INFO:     Child process [8931] died') they carried no time, so a death could not be dated.

    Plain data naming nothing of ours (its lines come from no request): a worker applies it before
    it answers the parent's health checks, and importing this module there would import MLflow."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"format": LOG_FORMAT.replace("%(request_id)s", "-")}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
        "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
    }


def configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("reintegra")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
