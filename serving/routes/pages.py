"""Reviewer pages under /review: server-rendered HTML behind a signed session cookie of a reviewer key."""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import mlflow
from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.exceptions import HTTPException

from features.spec import MAX_BAND_LABEL
from models.registry import alias_history
from serving import pages, runs
from serving.addresses import PAGES_PREFIX, app_path, path_for, without_trailing_slash
from serving.audit import AuditStore, ScoreFilter
from serving.deps import AuditDep, DriftDep, HolderDep, KeysDep, SettingsDep, record_shown
from serving.model_store import evaluation_of, missing_documents, plots_of
from serving.plot_texts import plot_texts
from serving.problems import field_errors
from serving.search import band_error, cursor_of, known_bands, position
from serving.sessions import (
    COOKIE,
    PAGE_ROLES,
    Reviewer,
    ReviewerDep,
    Session,
    SignInRequired,
    pages_path,
    read_session,
    safe_next,
    same_token,
    seconds_left,
    session_signer,
    set_session,
    signed_in_key,
)
from serving.settings import Settings

log = logging.getLogger("reintegra.pages")
PAGE_SIZE = 25
PERSON_LIMIT = 200
ALIAS_MOVES_SHOWN = 20
EXPIRED = "The form expired; please try again."
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

templates = Jinja2Templates(directory=str(resources.files("serving") / "templates"))
templates.env.filters["signed"] = lambda v, digits=3: f"{v:+.{digits}f}".replace("-", "−")
templates.env.filters["num"] = lambda v, digits=3: "n/a" if v is None else f"{v:.{digits}f}"
templates.env.filters["when"] = lambda v: v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
templates.env.filters["exact"] = repr
templates.env.filters["shown"] = pages.shown_value
templates.env.filters["html_id"] = pages.html_id
templates.env.filters["iso"] = lambda v: v.astimezone(UTC).isoformat()
# One path segment: a "/" in an id is encoded, so a browser cannot resolve "a/../b" to another person.
templates.env.filters["segment"] = lambda v: quote(v, safe="")
router = APIRouter(prefix=PAGES_PREFIX, include_in_schema=False)


@pass_context
def _template_path_for(context: dict[str, Any], name: str, /, **params: str) -> str:
    return path_for(context["request"], name, **params)


templates.env.globals["path_for"] = _template_path_for


def install_pages(app: FastAPI) -> None:
    """Add the pages, their static files and the sign-in redirect to `app`."""
    app.state.page_sessions = session_signer(app.state.settings)
    app.include_router(router)
    app.mount(f"{PAGES_PREFIX}/static", StaticFiles(packages=[("serving", "static")]), name="review-static")

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        query = urlencode({"next": exc.next_url})
        return RedirectResponse(f"{path_for(request, 'sign_in_form')}?{query}", status_code=303)

    problem_handlers = {
        kind: app.exception_handlers[kind] for kind in (RequestValidationError, HTTPException)
    }

    @app.exception_handler(RequestValidationError)
    async def bad_address(request: Request, exc: RequestValidationError) -> Response:
        """A hand-edited page address gets a page saying what to change, not a JSON problem."""
        if not _is_page(request):
            return await problem_handlers[RequestValidationError](request, exc)
        errors = field_errors(list(exc.errors()))
        return _render(request, "bad_address.html", {"reviewer": _signed_in(request), "errors": errors}, 422)

    @app.exception_handler(HTTPException)
    async def page_error(request: Request, exc: HTTPException) -> Response:
        if not _is_page(request) or exc.status_code != 404:
            return await problem_handlers[HTTPException](request, exc)
        address = without_trailing_slash(request)
        slash = f"; without the trailing slash: {address}" if address else ""
        return _not_found(request, None, f"There is no page at {request.url.path}{slash}.")


def _is_page(request: Request) -> bool:
    path = app_path(request.scope)
    return path == PAGES_PREFIX or path.startswith(f"{PAGES_PREFIX}/")


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = templates.TemplateResponse(
        request, name, {**context, **_session_context(request)}, status_code=status, headers=SECURITY_HEADERS
    )
    if (session := getattr(request.state, "page_session", None)) is not None:
        set_session(response, request, request.app.state.settings, session)
    return response


def _session_context(request: Request) -> dict[str, Any]:
    """Seconds the page's session lasts unused, for review.js to warn before it ends."""
    session = getattr(request.state, "page_session", None)
    return {} if session is None else {"session_seconds": seconds_left(session, request.app.state.settings)}


def _signed_in(request: Request) -> Reviewer | None:
    """The reviewer a page's dependencies found before its address was refused (they run before its
    query is read; a page without a session is sent to sign in first), so the error keeps the menu."""
    key, session = getattr(request.state, "api_key", None), getattr(request.state, "page_session", None)
    return Reviewer(key, session.csrf) if key is not None and session is not None else None


def _not_found(request: Request, reviewer: Reviewer | None, what: str) -> Response:
    return _render(request, "not_found.html", {"reviewer": reviewer, "what": what}, 404)


@router.get("")
@router.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse(path_for(request, "scores_page"), status_code=303)


@router.get("/sign-in")
def sign_in_form(
    request: Request,
    keys: KeysDep,
    settings: SettingsDep,
    next: str | None = None,
    signed_out: bool = False,
    expired: bool = False,
) -> Response:
    session = read_session(request, settings)
    if signed_in_key(session, keys):
        return RedirectResponse(safe_next(request, next), status_code=303)
    message = "You have signed out." if signed_out else EXPIRED if expired else None
    return _sign_in_page(request, settings, session, next, message)


def _sign_in_page(
    request: Request,
    settings: Settings,
    session: Session | None,
    next: str | None,
    message: str | None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The form with a CSRF token that an anonymous session cookie carries too (double submit)."""
    session = Session(session.csrf if session else secrets.token_urlsafe(32))
    context = {"csrf": session.csrf, "next": safe_next(request, next), "message": message, "error": error}
    response = _render(request, "sign_in.html", context, status)
    set_session(response, request, settings, session)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    keys: KeysDep,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Admit a reviewer or admin key; a new session (and CSRF token) replaces the anonymous one."""
    session = read_session(request, settings)
    if signed_in_key(session, keys):  # a form left open in another tab: its token is stale, the session good
        return RedirectResponse(safe_next(request, next), status_code=303)
    if session is None:  # no cookie came (another site's form, SameSite) or it expired: set none here
        query = urlencode({"next": safe_next(request, next), "expired": "true"})
        return RedirectResponse(f"{path_for(request, 'sign_in_form')}?{query}", status_code=303)
    if not same_token(session.csrf, csrf):
        return _sign_in_page(request, settings, None, next, None, EXPIRED, 403)
    found = keys.verify(key.strip()) if key.strip() else None
    if found is None:
        log.warning("sign-in refused: %s", keys.refusal(key.strip()))
        return _sign_in_page(request, settings, session, next, None, "Unknown or revoked key.", 401)
    request.state.api_key = found  # the access log names who signed in, or tried to
    if found.role not in PAGE_ROLES:
        log.warning("sign-in refused: %s key %s may not open the pages", found.role, found.id)
        error = f"A {found.role} key cannot open the reviewer pages; sign in with a reviewer key."
        return _sign_in_page(request, settings, session, next, None, error, 403)
    response = RedirectResponse(safe_next(request, next), status_code=303)
    set_session(response, request, settings, Session(secrets.token_urlsafe(32), found.id))
    return response


@router.post("/sign-out")
def sign_out(
    request: Request, keys: KeysDep, settings: SettingsDep, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """Ends the session on the server as well as in this browser, so a copy of its cookie opens
    nothing; without a session cookie (a cross-site form) it changes nothing."""
    session = read_session(request, settings)
    if session is None:
        return RedirectResponse(path_for(request, "sign_in_form"), status_code=303)
    if not same_token(session.csrf, csrf):
        message = "The sign-out form expired; reload the page and try again."
        return Response(message, 403, headers=SECURITY_HEADERS, media_type="text/plain")
    if session.key_id is not None:
        keys.end_session(session.csrf, datetime.now(UTC) - timedelta(hours=settings.session_hours))
    response = RedirectResponse(f"{path_for(request, 'sign_in_form')}?signed_out=true", status_code=303)
    response.delete_cookie(COOKIE, path=pages_path(request), httponly=True, samesite="lax")
    return response


def _day(text: str | None) -> tuple[date | None, str | None]:
    if not text:
        return None, None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return None, f"{text!r} is not a date (YYYY-MM-DD); the list is not filtered by it"


LOST_POSITION = (
    "The list position in this address (upto) is not one this server gave out; showing from the newest score"
)


@router.get("/scores")
def scores_page(
    request: Request,
    reviewer: ReviewerDep,
    audit: AuditDep,
    holder: HolderDep,
    band: Annotated[str, Query(max_length=MAX_BAND_LABEL)] = "",
    model_version: Annotated[str, Query(max_length=32)] = "",
    person_id: Annotated[str, Query(max_length=128)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    upto: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Newest first, filtered; the date range is inclusive and in UTC. Pages hold still at the newest
    score of the first (`upto`), so scores arriving meanwhile never push a row onto the next page again."""
    first, since_error = _day(since)
    last, until_error = _day(until)
    bands = known_bands(holder.current.bundle.spec.risk_bands.labels, audit, holder.name)
    band_problem = band_error(band, bands) if band else None
    if band_problem:  # a hand-edited address: said, and the band left out, rather than an empty list
        band_problem, band = f"{band_problem}; showing every band", ""
    where = ScoreFilter(
        model_name=holder.name,
        person_id=person_id or None,
        since=datetime.combine(first, time(), UTC) if first else None,
        until=datetime.combine(last + timedelta(days=1), time(), UTC) if last and last < date.max else None,
        band=band or None,
        model_version=model_version or None,
    )
    try:
        pinned, upto_error = (position(upto) if upto else None), None
    except ValueError:  # a hand-edited or cut address: said, and the list read from its newest score
        pinned, upto_error = None, LOST_POSITION
    if pinned is None:
        newest = audit.newest(where)
        pinned = (newest.created_at, newest.id) if newest else None
    rows, total = audit.search(replace(where, upto=pinned), PAGE_SIZE, (page - 1) * PAGE_SIZE)
    newer = audit.count(where) - total if upto and not upto_error else 0
    filters = {
        "band": band,
        "model_version": model_version,
        "person_id": person_id,
        # In the form that filters: a date input left empty above a list filtered by 20261124 misleads.
        "since": first.isoformat() if first else since,
        "until": last.isoformat() if last else until,
    }
    fresh = {k: v for k, v in filters.items() if v}
    query = {**fresh, "upto": cursor_of(*pinned)} if pinned else fresh
    pages_count = max(1, -(-total // PAGE_SIZE))
    if page > pages_count:  # an old link or a hand-edited URL: show the last page there is
        return RedirectResponse(f"?{urlencode({**query, 'page': pages_count})}", status_code=303)
    reversed_range = bool(first and last and first > last)
    if reversed_range:  # said once, under From, and read on either field
        since_error = f"From ({since}) is after To ({until}): no day is in that range"
    record_shown(request, audit, reviewer.key, rows, where.person_id)
    versions = audit.model_versions(holder.name)
    if model_version and model_version not in versions:  # e.g. a version that never served: shown, not "any"
        versions.append(model_version)
    return _render(
        request,
        "scores.html",
        {
            "reviewer": reviewer,
            "raised": pages.raised_bands(holder.current.bundle.spec),
            "rows": rows,
            "total": total,
            "page": page,
            "pages": pages_count,
            "filters": filters,
            "errors": {
                field: e
                for field, e in (
                    ("band", band_problem),
                    ("since", since_error),
                    ("until", until_error),
                    ("upto", upto_error),
                )
                if e
            },
            "reversed_range": reversed_range,
            "bands": bands,
            "versions": versions,
            "previous": f"?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
            "next": f"?{urlencode({**query, 'page': page + 1})}" if page < pages_count else None,
            "newer": newer,
            "newest": f"?{urlencode(fresh)}",
        },
    )


@router.get("/scores/{score_id}")
def score_page(
    request: Request, score_id: str, reviewer: ReviewerDep, audit: AuditDep, holder: HolderDep, keys: KeysDep
) -> Response:
    row = audit.get(score_id)
    if row is None:
        return _not_found(request, reviewer, f"No score with id {score_id}.")
    record_shown(request, audit, reviewer.key, [row])
    explanation = row.result["explanation"]
    spec = runs.spec_of_run(row.run_id, holder.current)
    needs = spec.needs if spec else []
    described = {n.name: n.description for n in needs}
    # A flag can come from the base value alone, so it is shown beside the largest contributions.
    flagged_needs = {
        need["need"]: {
            **explanation["needs"][need["need"]],
            "probability": need["probability"],
            "observed": need.get("observed"),
            "description": described.get(need["need"], ""),
        }
        for need in row.result["needs"]
        if need["flagged"] and need["need"] in explanation["needs"]
    }
    return _render(
        request,
        "score.html",
        {
            "reviewer": reviewer,
            "raised": pages.raised_bands(spec),
            "row": row,
            "scored_by": keys.get(row.key_id),
            "spec_unread": spec is None,
            "served_name": holder.name,
            "risk": row.result["risk"],
            # Rows stored before `observed` existed (085c96a) were flagged by threshold alone.
            "needs": [{"observed": None, **need} for need in row.result["needs"]],
            "explained": explanation["risk"],
            "waterfall": pages.waterfall(explanation["risk"]),
            "domains": pages.domain_chart(explanation["risk"]["by_domain"]),
            "flagged_needs": flagged_needs,
            "thresholds": {n.name: n.flag_threshold for n in needs},
            "top_need_inputs": pages.TOP_NEED_INPUTS,
            "unseen": pages.UNSEEN,
            "warnings": row.result.get("warnings", []),
            "top_inputs": pages.TOP_INPUTS,
            "identity": pages.identity_sentence(explanation["risk"], row.risk_probability),
            "identity_formula": explanation["identity"],
        },
    )


@router.get("/people/{person_id:path}")
def person_page(
    request: Request, person_id: str, reviewer: ReviewerDep, audit: AuditDep, holder: HolderDep
) -> Response:
    """One person's assessments, oldest first, so the trend reads left to right."""
    rows, total = audit.search(ScoreFilter(model_name=holder.name, person_id=person_id), PERSON_LIMIT, 0)
    record_shown(request, audit, reviewer.key, rows, person_id)
    if not rows:
        return _not_found(request, reviewer, f"No scores for person {person_id}.")
    rows.reverse()
    serving = holder.current
    by_run = {run_id: runs.spec_of_run(run_id, serving) for run_id in {r.run_id for r in rows}}
    specs = [by_run[r.run_id] for r in rows]
    raised = [pages.raised_bands(s) for s in specs]  # each assessment's by its own version's cuts
    # The serving model's needs first, then any an earlier version scored that it dropped.
    need_names = list(
        dict.fromkeys(
            [n.name for n in serving.bundle.spec.needs] + [n["need"] for r in rows for n in r.result["needs"]]
        )
    )
    return _render(
        request,
        "person.html",
        {
            "reviewer": reviewer,
            "person_id": person_id,
            "rows": rows,
            "total": total,
            "raised": set().union(*raised),
            "trend": pages.trend(
                [
                    (r.id, r.created_at, r.risk_probability, r.risk_band, r.risk_band in bands)
                    for r, bands in zip(rows, raised, strict=True)
                ],
                [tuple(s.risk_bands.cut_points) if s else None for s in specs],
            ),
            "need_trends": pages.need_trends(
                rows, [{n.name: n.flag_threshold for n in s.needs} if s else {} for s in specs], need_names
            ),
            "need_names": need_names,
            "need_rows": [(r, {n["need"]: n for n in r.result["needs"]}) for r in rows],
            "unread_versions": sorted(
                {r.model_version for r, s in zip(rows, specs, strict=True) if s is None}
            ),
        },
    )


@router.get("/model")
def serving_model(request: Request, reviewer: ReviewerDep, holder: HolderDep) -> RedirectResponse:
    version = quote(holder.current.version, safe="")
    return RedirectResponse(path_for(request, "model_page", version=version), status_code=303)


@router.get("/model/{version}")
def model_page(
    request: Request,
    version: str,
    reviewer: ReviewerDep,
    holder: HolderDep,
    settings: SettingsDep,
    audit: AuditDep,
    drift: DriftDep,
) -> Response:
    """A version's metrics, plots, fairness audit and card; the serving one is already in memory."""
    serving = holder.current
    try:
        versions: list[runs.VersionRow] | None = runs.registered_versions(holder.name)
    except mlflow.exceptions.MlflowException as exc:  # the serving version's page is still in memory
        log.warning("MLflow did not answer for the model page: %s", str(exc).splitlines()[0])
        versions = None
    listed = next((v for v in versions or [] if v.version == version), None)
    unregistered = False
    if version == serving.version:
        documents, run_id = serving.documents, serving.run_id
    elif listed is not None:
        documents, run_id = runs.run_documents(listed.run_id), listed.run_id
    elif versions is None:
        what = f"MLflow did not answer: version {version} cannot be shown now; try again later."
        return _render(request, "unavailable.html", {"reviewer": reviewer, "what": what}, 503)
    else:
        run_id, unregistered = _older_version_run(holder.name, version, audit)
        if run_id is None:
            what = f"No version {version} of {holder.name} in the registry or in the audit trail."
            return _not_found(request, reviewer, what)
        documents = runs.run_documents(run_id)
    if listed is not None:
        forced_reason = listed.forced_reason
    elif version == serving.version:  # MLflow did not answer: the tag as read when the version was loaded
        forced_reason = serving.forced_reason
    else:  # a version deleted from the registry took its tags with it
        forced_reason = None
    evaluation = evaluation_of(documents)
    # The version's own spec: a later one may gate promotion elsewhere or name its incumbent otherwise.
    spec = runs.spec_of_run(run_id, serving)
    gates = spec.gates if spec else None
    columns, metric_rows = pages.metric_table(evaluation, spec)
    return _render(
        request,
        "model.html",
        {
            "reviewer": reviewer,
            "name": holder.name,
            "version": version,
            "serving_version": serving.version,
            "alias": settings.model_alias,
            "run_id": run_id,
            "unregistered": unregistered,
            "forced_reason": forced_reason,
            "restart_required": holder.restart_required,
            "load_failed": holder.load_failed,
            "versions": versions,
            "alias_moves": [
                (datetime.fromisoformat(moved_at), entry)
                for moved_at, entry in (alias_history(holder.name)[:ALIAS_MOVES_SHOWN] if versions else [])
            ],
            "metric_columns": columns,
            "metric_rows": metric_rows,
            "coverage_notes": pages.coverage_notes(evaluation, spec),
            "needs": evaluation.get("needs", {}),
            "intervals": evaluation.get("intervals"),
            "macro_auc": evaluation.get("macro_auc"),
            "artifacts": plot_texts(plots_of(documents), runs.ARTIFACTS),
            "missing_documents": missing_documents(documents),
            # MLflow did not answer for the versions: it is not asked again for the plots.
            "missing_plots": runs.missing_plots(run_id) if versions is not None else [],
            "fairness": {
                attribute: (
                    table,
                    pages.fairness_gaps(table, gates, attribute),
                )
                for attribute, table in evaluation.get("fairness", {}).items()
            },
            "gates": gates,
            "intersections": evaluation.get("intersections", {}),
            "card": pages.markdown(documents.get("model_card.md", ""), shift=2),
            # Drift is of the serving version's own scores, against its own reference profile.
            "drift": pages.drift_view(drift.report(serving, audit, None, None))
            if version == serving.version
            else None,
        },
    )


def _older_version_run(name: str, version: str, audit: AuditStore) -> tuple[str | None, bool]:
    """A version's training run, and whether the registry has lost the version: past the newest listed,
    it is asked for by number; deleted from the registry, its stored scores still name their run."""
    run_id = runs.version_run_id(name, version)
    return (run_id, False) if run_id else (audit.run_of(name, version), True)


@router.get("/model/{version}/artifacts/{name}")
def model_artifact(
    name: str, version: str, reviewer: ReviewerDep, holder: HolderDep, audit: AuditDep
) -> Response:
    """A plot logged with the version's training run, fetched from MLflow; the serving version's run
    is known from loading it, so its plots show even once the registry has lost its name."""
    serving = holder.current
    if version == serving.version:
        run_id = serving.run_id
    else:
        run_id, _ = _older_version_run(holder.name, version, audit)
    content = runs.run_artifact(run_id, name) if run_id else None
    if content is None:
        return Response(f"no plot {name} for version {version}", 404, media_type="text/plain")
    return Response(content, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
