"""The app factory: stores, the serving model and routes, built from settings (no work at import)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from fastapi import APIRouter, FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError, DBAPIError

from features.example import example_record
from models.redact import hide_passwords
from models.registry import configure_tracking
from serving import problems
from serving.audit import AuditStore, open_seal
from serving.database import SchemaTooNew, driver_reason, make_engine, migrate
from serving.drift import DriftCache, drift_example
from serving.events import model_event
from serving.head import HeadAsGetMiddleware
from serving.keys import KeyStore
from serving.limits import LIMIT_PROBLEMS, BodySizeLimitMiddleware, KeyBeforeBodyMiddleware
from serving.model_store import SERVER_START, ModelHolder, ModelUnavailable, ServingModel
from serving.negotiation import AcceptMiddleware, JsonBodyMiddleware
from serving.observability import Metrics, RequestContextMiddleware, configure_logging
from serving.routes import admin, health, model
from serving.routes.pages import install_pages
from serving.routes.scores import scores_router
from serving.schemas import record_model, score_request_model
from serving.seal import AuditKeyError, Seal
from serving.settings import Settings
from serving.shedding import InFlightLimitMiddleware

DESCRIPTION = """Relapse risk, needs and exact explanations. The serving model's records: {population}

Every score is committed to the audit trail before it is returned. Send an API key as
`Authorization: Bearer <key>`: scorer keys score, reviewer keys read scores and the model,
admin keys reload, monitor keys only read /metrics. Every error is `application/problem+json`."""


def operation_id(route: APIRoute) -> str:
    """The handler's name (`create_score`): generated clients name their methods by it, and FastAPI's
    default (`create_score_v1_scores_post`) changes whenever a path or method does."""
    return route.name


def keep_example_nulls(app: FastAPI, routers: list[APIRouter]) -> None:
    """Write the response examples of `routers`' routes back into the document as given: FastAPI encodes
    it with exclude_none (fastapi#5559), which drops their nulls, and an example then misses fields its
    schema requires."""
    openapi = app.openapi
    routes = [route for router in routers for route in router.routes if isinstance(route, APIRoute)]

    def with_examples() -> dict[str, Any]:
        document = openapi()
        for route in routes:
            for method in route.methods:
                responses = document["paths"][route.path_format][method.lower()]["responses"]
                for status, response in route.responses.items():
                    for media, content in response.get("content", {}).items():
                        if "example" in content:
                            documented = responses[str(status)]["content"][media]
                            documented["example"] = jsonable_encoder(content["example"])
        return document

    app.openapi = with_examples  # type: ignore[method-assign]


def _open_stores(settings: Settings, seal: Seal | None) -> tuple[AuditStore, Engine]:
    """The migrated audit store, signing, and the keys' engine. The parent checked them at start-up, but a
    worker a SIGHUP or a crash starts meets them as they are now: a store gone or a rotated key stops it
    in one log line, not a traceback, and uvicorn keeps the workers it has."""
    pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
    try:
        audit_engine = _migrated(settings.audit_url, pool)
        keys_engine = (
            audit_engine if settings.keys_url == settings.audit_url else _migrated(settings.keys_url, pool)
        )
        audit = AuditStore(audit_engine, seal or open_seal(audit_engine, settings.audit_key_file)[0])
        audit.bind_key()
    except AuditKeyError as exc:
        _stop_worker(str(exc), exc)
    except DBAPIError as exc:  # the chain's row held past the store's wait, or refused
        _stop_worker(
            f"cannot sign with the audit store at {hide_passwords(settings.audit_url)}: {driver_reason(exc)}",
            exc,
        )
    return audit, keys_engine


def _migrated(url: str, pool: dict[str, int]) -> Engine:
    engine = make_engine(url, **pool)
    try:
        migrate(engine)
    except (DatabaseError, SchemaTooNew) as exc:  # DatabaseError: not a database, or not answering
        _stop_worker(f"cannot open the store at {hide_passwords(url)}: {driver_reason(exc)}", exc)
    return engine


def _stop_worker(reason: str, exc: Exception) -> NoReturn:
    logging.getLogger("reintegra.server").error("%s", reason)
    raise SystemExit(1) from exc


def create_app(
    settings: Settings | None = None, seal: Seal | None = None, champion: ServingModel | None = None
) -> FastAPI:
    """Build the app: migrate the stores, load the champion, generate the record schema. `seal` (the audit
    key) and `champion` are given when the process starting the server has read them already; the
    champion is served if the alias still points at it, else the alias's version is loaded here."""
    settings = settings or Settings()
    configure_logging()
    configure_tracking()
    audit, keys_engine = _open_stores(settings, seal)
    metrics = Metrics()

    def record_served(model: ServingModel, previous: str | None, actor: str) -> None:
        audit.record_event(model_event(model.name, model.version, model.run_id, previous, actor))

    holder = ModelHolder(
        settings.model_name,
        settings.model_alias,
        on_serve=record_served,
        on_swap=metrics.serving,
        on_waiting=metrics.waiting,
        on_failed=metrics.failed,
        preloaded=champion,
    )
    try:
        holder.reload(SERVER_START)
    except ModelUnavailable as exc:  # a worker started again while MLflow is away: one line, no traceback
        logging.getLogger("reintegra.model").error("%s", exc)
        raise SystemExit(1) from exc

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.start_polling(settings.poll_seconds)
        yield
        holder.stop_polling()
        metrics.worker_stopped()

    # Swagger UI from the package, not a CDN, so /docs works on a closed network (ReDoc is off:
    # it still fetches its logo from a CDN). No slash redirects: Starlette builds them from the Host
    # header and the scheme uvicorn saw, and a client following one sends its body (a record) again.
    spec = holder.current.bundle.spec
    description = DESCRIPTION.format(population=spec.description or spec.name)
    app = FastAPIOffline(
        redoc_url=None,
        title="reintegra",
        version="1",
        description=description,
        lifespan=lifespan,
        redirect_slashes=False,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.audit = audit
    app.state.keys = KeyStore(keys_engine)
    app.state.metrics = metrics
    app.state.drift = DriftCache()
    example = {"assessment_id": "A-1001", "person_id": "P-42", "record": example_record(spec)}
    score_request = score_request_model(record_model(spec, example["record"]))
    routers = [
        scores_router(score_request, example, settings.max_batch),
        model.model_router(drift_example(spec)),
        admin.router,
        health.router,
    ]
    for router in routers:
        app.include_router(router)
    problems.install(app, LIMIT_PROBLEMS)
    keep_example_nulls(app, routers)
    install_pages(app)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(KeyBeforeBodyMiddleware)
    app.add_middleware(AcceptMiddleware)
    app.add_middleware(InFlightLimitMiddleware, max_in_flight=settings.max_in_flight, metrics=metrics)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
