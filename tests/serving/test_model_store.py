"""The serving model holder against a real MLflow registry: swaps, and versions it must refuse."""

import html
import logging
import re
import sqlite3
from pathlib import Path

import httpx
import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from sqlalchemy.exc import OperationalError

from features.spec import load_spec
from models.registry import FORCED_REASON_TAG, alias_history, registered_spec
from serving import model_store
from serving.model_store import RETRY_FAILED_POLLS, ModelHolder, ModelUnavailable, SchemaChanged, load_version
from serving.seal import KeyRotated
from tests.serving.servers import champion_moved, start_server
from training.promote import promote
from training.train import train

pytestmark = pytest.mark.slow

NAME = "schema-change"


def ignore(*args) -> None:
    """A holder callback a test does not look at."""


@pytest.fixture(scope="module")
def versions(registry, spec, tmp_path_factory) -> tuple[str, str]:
    """Version 1 with the built-in spec; version 2 accepts a wider risk-score range (same inputs)."""
    first = train(spec, registry.data, name=NAME, seed=1).model_version
    wider = spec.model_dump(by_alias=True, exclude_none=True)
    for column in wider["columns"]:
        if column["name"] == "Supervision_Risk_Score_First":
            column["max"] = 12
    path = tmp_path_factory.mktemp("spec") / "wider.yaml"
    path.write_text(yaml.safe_dump(wider))
    second = train(load_spec(path), registry.data, name=NAME, seed=1).model_version
    return first, second


def test_a_version_accepting_other_records_is_refused_and_said_once(versions, caplog):
    first, second = versions
    promote(NAME, first, force=True, reason="test")
    swaps, waiting = [], []
    holder = ModelHolder(
        NAME,
        "champion",
        on_serve=ignore,
        on_swap=lambda *args: swaps.append(args),
        on_waiting=lambda *a: waiting.append(a),
        on_failed=lambda *a: None,
    )
    holder.reload("test")
    assert holder.restart_required is None
    promote(NAME, second, force=True, reason="test")
    refusal = (
        f"version {second} accepts different records than version {first} (changed field "
        "Supervision_Risk_Score_First (maximum 10 is now 12)); restart the server to serve it"
    )
    with caplog.at_level(logging.ERROR, logger="reintegra.model"):
        with pytest.raises(SchemaChanged, match=re.escape(refusal)) as refused:
            holder.reload("test")
        assert refused.value.changes == ["changed field Supervision_Risk_Score_First (maximum 10 is now 12)"]
        assert holder.current.version == first and swaps == [(NAME, first, None)]
        for _ in range(3):
            holder.poll_once()
    refusals = [r for r in caplog.records if "accepts different records" in r.getMessage()]
    assert len(refusals) == 1, "said once when refused, not again on every poll"
    assert holder.current.version == first
    assert holder.restart_required[0] == second and refusal in holder.restart_required[1]
    assert waiting == [(NAME, second, None)], "announced once, not on every poll"

    promote(NAME, first, force=True, reason="back to the serving version")
    holder.reload("test")
    assert holder.restart_required is None and waiting == [(NAME, second, None), (NAME, None, second)]


def serving_champion(record_served, monkeypatch) -> tuple[ModelHolder, list[str]]:
    """A holder serving reintegra's champion, its model_served events sent to `record_served`, and the
    versions it loads (a refused swap must not load the version again at every poll)."""
    loaded: list[str] = []
    monkeypatch.setattr(
        model_store,
        "load_version",
        lambda name, version: loaded.append(version) or load_version(name, version),
    )
    holder = ModelHolder(
        "reintegra", "champion", on_serve=record_served, on_swap=ignore, on_waiting=ignore, on_failed=ignore
    )
    holder.reload("test")
    return holder, loaded


def test_a_swap_the_audit_trail_refuses_is_said_in_one_line_on_every_poll(
    registry, second_version, caplog, monkeypatch
):
    """After `audit rotate-key` a server still holding the old key cannot record the model_served event,
    so the poller must not swap; saying why must not fill the log with a traceback every few seconds,
    nor load the refused version again on every poll."""
    served = []

    def record_served(model, previous, actor) -> None:
        if served:
            raise KeyRotated("old-fingerprint", "new-fingerprint")
        served.append(model.version)

    holder, loaded = serving_champion(record_served, monkeypatch)
    with (
        champion_moved(second_version, registry, "rotated-key poll test"),
        caplog.at_level(logging.ERROR, logger="reintegra.model"),
    ):
        holder.poll_once()
        holder.poll_once()
    said = [r for r in caplog.records if "rotated to new-fingerprint" in r.getMessage()]
    assert len(said) == 2 and all(r.exc_info is None for r in said), [r.exc_info for r in said]
    assert f"still serving version {registry.version}" in said[0].getMessage()
    assert holder.current.version == registry.version
    assert loaded == [registry.version, second_version.model_version]


def test_a_reload_after_the_alias_was_removed_says_the_loaded_version_still_serves(versions, caplog):
    """An admin reload is refused saying so; the poller says it in one warning each poll, no traceback."""
    first, _ = versions
    promote(NAME, first, force=True, reason="test")
    holder = ModelHolder(
        NAME, "champion", on_serve=ignore, on_swap=ignore, on_waiting=ignore, on_failed=ignore
    )
    holder.reload("test")
    MlflowClient().delete_registered_model_alias(NAME, "champion")
    said = f"no model at models:/{NAME}@champion; .*; still serving version {first}"
    try:
        with pytest.raises(ModelUnavailable, match=f"^{said}$"):
            holder.reload("test")
        with caplog.at_level(logging.WARNING, logger="reintegra.model"):
            holder.poll_once()
    finally:
        promote(NAME, first, force=True, reason="alias back")
    [line] = [r for r in caplog.records if r.name == "reintegra.model"]
    assert (line.levelname, line.exc_info) == ("WARNING", None)
    assert re.fullmatch(f"alias poll failed: {said}", line.getMessage())
    assert holder.current.version == first


def test_a_version_the_starting_process_loaded_is_served_not_loaded_again(versions):
    """A one-worker server loaded the champion twice at start (0.1-0.6 s of its 3.4-6.6 s of CPU): once to
    refuse to start without one, once in the app. The app now serves the first, unless the alias moved
    between."""
    first, second = versions
    promote(NAME, first, force=True, reason="test")
    loaded = load_version(NAME, first)

    def holder() -> ModelHolder:
        return ModelHolder(
            NAME,
            "champion",
            on_serve=ignore,
            on_swap=ignore,
            on_waiting=ignore,
            on_failed=ignore,
            preloaded=loaded,
        )

    same = holder()
    same.reload("test")
    assert same.current is loaded
    moved = holder()
    promote(NAME, second, force=True, reason="test")
    try:
        moved.reload("test")
    finally:
        promote(NAME, first, force=True, reason="alias back")
    assert moved.current.version == second and moved.current.bundle is not loaded.bundle


def test_the_serving_model_carries_its_forced_promotion_reason(versions):
    first, _ = versions
    promote(NAME, first, force=True, reason="test")
    MlflowClient().set_model_version_tag(NAME, first, FORCED_REASON_TAG, "pilot approved by the board")
    holder = ModelHolder(
        NAME, "champion", on_serve=ignore, on_swap=ignore, on_waiting=ignore, on_failed=ignore
    )
    holder.reload("test")
    assert holder.current.forced_reason == "pilot approved by the board"


def test_a_server_refusing_a_version_says_so_until_the_alias_returns(versions, registry, tmp_path):
    """The refusal is visible to clients, monitoring and reviewers, not only in one log line."""
    first, second = versions
    promote(NAME, first, force=True, reason="test")
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_MODEL_NAME": NAME})
    gauge = re.compile(rf'reintegra_model_restart_required{{name="{NAME}",version="{second}"}} (\S+)')
    try:
        admin, reviewer = server.client("admin"), server.client("reviewer")
        promote(NAME, second, force=True, reason="test")
        reload = admin.post("/v1/admin/reload")
        assert reload.status_code == 409
        assert reload.headers["content-type"] == "application/problem+json"
        assert f"version {second} accepts different records" in reload.json()["detail"]
        assert "changed field Supervision_Risk_Score_First (maximum 10 is now 12)" in reload.json()["detail"]
        assert reload.json()["record_changes"] == [
            "changed field Supervision_Risk_Score_First (maximum 10 is now 12)"
        ]
        model = reviewer.get("/v1/model").json()
        assert model["version"] == first
        assert model["restart_required"]["version"] == second
        assert "restart the server" in model["restart_required"]["reason"]
        assert gauge.search(reviewer.get("/metrics").text).group(1) == "1.0"
        with server.page_client() as browser:
            notice = re.search(r'id="restart-required">(.*?)</p>', browser.get(f"/review/model/{first}").text)
        assert notice and f"now points at version {second}" in notice.group(1)

        promote(NAME, first, force=True, reason="back")
        assert admin.post("/v1/admin/reload").status_code == 200
        assert reviewer.get("/v1/model").json()["restart_required"] is None
        assert gauge.search(reviewer.get("/metrics").text).group(1) == "0.0"
        with server.page_client() as browser:
            moves = re.search(
                r'<table class="data" id="alias-moves">(.*?)</table>',
                html.unescape(browser.get(f"/review/model/{first}").text),
                re.S,
            )
    finally:
        server.stop()
    newest = [entry for _, entry in alias_history(NAME) if entry.startswith("champion:")][:2]
    assert newest == [
        f"champion: version {second} -> {first} (forced: back)",
        f"champion: version {first} -> {second} (forced: test)",
    ], "every move is kept, newest first, even when a version is promoted again"
    assert moves.group(1).index(newest[0]) < moves.group(1).index(newest[1]), "the model page lists them"
    assert " UTC</time>" in moves.group(1)


def broken_copy(version: str, folder: Path) -> tuple[str, Path]:
    """A new version of NAME registered from a copy of `version`'s artifacts, with its bundle file
    overwritten so it cannot be loaded; returns the version and the bundle file (to mend it)."""
    source = MlflowClient().get_model_version(NAME, version)
    copy = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}", dst_path=str(folder)))
    bundle = next(copy.rglob("bundle.joblib"))
    bundle.write_bytes(b"not a bundle")
    return str(MlflowClient().create_model_version(NAME, str(copy), run_id=source.run_id).version), bundle


def test_a_version_that_fails_to_load_is_tried_again_when_asked_or_every_tenth_poll(
    versions, tmp_path, caplog
):
    """The poller downloaded and tried a broken champion on every poll, with a warning each time; then
    never again, so a worker the admin reload did not reach kept the older version for good."""
    first, _ = versions
    promote(NAME, first, force=True, reason="test")
    failed = []
    holder = ModelHolder(
        NAME,
        "champion",
        on_serve=ignore,
        on_swap=ignore,
        on_waiting=ignore,
        on_failed=lambda *a: failed.append(a),
    )
    holder.reload("test")
    broken, bundle = broken_copy(first, tmp_path)
    promote(NAME, broken, force=True, reason="test")
    with caplog.at_level(logging.INFO, logger="reintegra.model"):
        holder.poll_once()
        assert holder.load_failed[0] == broken
        assert f"cannot load version {broken} of {NAME}" in holder.load_failed[1]
        assert holder.load_failed[1].endswith(f"; still serving version {first}")
        mlflow.artifacts.download_artifacts(f"models:/{NAME}/{first}", dst_path=str(tmp_path / "mended"))
        bundle.write_bytes(next((tmp_path / "mended").rglob("bundle.joblib")).read_bytes())
        for _ in range(3):
            holder.poll_once()
    said = [r for r in caplog.records if f"version {broken}" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR, "said once, not on every poll"
    assert "tried again when the alias moves, on an admin reload or in 10 polls" in said[0].getMessage()
    assert holder.current.version == first, "mended, but polls leave it alone: they did not load it again"
    assert failed == [(NAME, broken, None)]
    for _ in range(RETRY_FAILED_POLLS - 4):
        holder.poll_once()
    assert holder.current.version == first, "the ninth poll since it failed"
    holder.poll_once()
    assert holder.current.version == broken, "the tenth tries it again, and it loads"
    assert holder.load_failed is None and failed[-1] == (NAME, None, broken)


def test_an_admin_reload_tries_a_version_that_failed_to_load_again(versions, tmp_path):
    first, _ = versions
    promote(NAME, first, force=True, reason="test")
    holder = ModelHolder(
        NAME, "champion", on_serve=ignore, on_swap=ignore, on_waiting=ignore, on_failed=ignore
    )
    holder.reload("test")
    broken, bundle = broken_copy(first, tmp_path)
    promote(NAME, broken, force=True, reason="test")
    holder.poll_once()
    assert holder.load_failed[0] == broken
    mlflow.artifacts.download_artifacts(f"models:/{NAME}/{first}", dst_path=str(tmp_path / "mended"))
    bundle.write_bytes(next((tmp_path / "mended").rglob("bundle.joblib")).read_bytes())
    assert holder.reload("test") == (first, broken), "an admin reload tries it again"
    assert holder.load_failed is None


def test_a_server_that_could_not_load_the_champion_says_so_until_it_can(versions, registry, tmp_path):
    """Monitoring and reviewers see the failed version, not only a log line."""
    first, _ = versions
    promote(NAME, first, force=True, reason="test")
    broken, bundle = broken_copy(first, tmp_path / "broken")
    intact = bundle.with_name("intact.joblib")
    mlflow.artifacts.download_artifacts(f"models:/{NAME}/{first}", dst_path=str(tmp_path / "intact"))
    intact.write_bytes(next((tmp_path / "intact").rglob("bundle.joblib")).read_bytes())
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_MODEL_NAME": NAME})
    gauge = re.compile(rf'reintegra_model_load_failed{{name="{NAME}",version="{broken}"}} (\S+)')
    try:
        admin, reviewer = server.client("admin"), server.client("reviewer")
        promote(NAME, broken, force=True, reason="test")
        reload = admin.post("/v1/admin/reload")
        assert reload.status_code == 503
        assert reload.json()["detail"].startswith(f"cannot load version {broken} of {NAME} from MLflow: ")
        failed = reviewer.get("/v1/model").json()
        assert failed["version"] == first and failed["load_failed"]["version"] == broken
        assert failed["load_failed"]["reason"] == reload.json()["detail"]
        assert gauge.search(reviewer.get("/metrics").text).group(1) == "1.0"
        with server.page_client() as browser:
            notice = re.search(r'id="load-failed">(.*?)</p>', browser.get(f"/review/model/{first}").text)
        assert notice and f"now points at version {broken}, which this server could not load" in notice.group(
            1
        )

        bundle.write_bytes(intact.read_bytes())
        assert admin.post("/v1/admin/reload").json()["version"] == broken
        assert reviewer.get("/v1/model").json()["load_failed"] is None
        assert gauge.search(reviewer.get("/metrics").text).group(1) == "0.0"
    finally:
        server.stop()
        promote(NAME, first, force=True, reason="back")


@pytest.mark.parametrize("name", ["o'brien", 'o\'brien "the" 2nd'])
def test_a_model_named_with_quotes_outside_our_tools_has_its_pages(name, registry, tmp_path):
    """MLflow registers names with quotes that `train --name` refuses; its filter syntax has no
    escape, so a name written into `name='...'` broke the model page (and the spec lookup)."""
    client = MlflowClient()
    source = client.get_model_version("reintegra", registry.version)
    client.create_registered_model(name)
    version = client.create_model_version(name, source.source, run_id=source.run_id).version
    client.set_registered_model_alias(name, "champion", version)
    assert registered_spec(name)[0] == "georgia_parole"
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_MODEL_NAME": name})
    try:
        with server.page_client() as browser:
            page = browser.get(f"/review/model/{version}")
    finally:
        server.stop()
    assert page.status_code == 200, page.text[-500:]
    assert f'<a href="/review/model/{version}">{version}</a> (serving)' in page.text


def test_no_champion_of_another_name_says_a_promote_command_that_runs(tmp_path):
    """It said 'then python -m training promote --name county', which stops on its missing --version."""
    import shlex

    from typer.testing import CliRunner

    from serving.model_store import alias_version
    from tests.tracking import tracking_store
    from training.cli import app

    with tracking_store(f"sqlite:///{tmp_path}/mlflow.db"):
        with pytest.raises(ModelUnavailable) as raised:
            alias_version("county", "champion")
        promote_hint = re.search(r"then (python -m training promote [^);]*)", str(raised.value)).group(1)
        arguments = shlex.split(promote_hint.replace("VERSION", "1"))[3:]
        result = CliRunner().invoke(app, arguments)
    assert "Missing option" not in result.output, result.output
    assert "cannot promote county version 1" in result.output, "it reached the registry, which has no county"


def test_a_reload_while_mlflow_does_not_answer_says_when_to_retry(versions, registry, tmp_path):
    """Its 503 carried no Retry-After, so a client could not tell MLflow being away (retry later) from an
    alias pointing at nothing (a retry cannot help, and gets no Retry-After)."""
    first, _ = versions
    promote(NAME, first, force=True, reason="test")
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_MODEL_NAME": NAME})
    # A training job holding the registry's write lock: MLflow's reads wait 20 s, then give up.
    lock = sqlite3.connect(registry.uri.removeprefix("sqlite:///"), isolation_level=None, timeout=60)
    try:
        with server.client("admin") as admin:
            admin.timeout = httpx.Timeout(90)
            lock.execute("BEGIN EXCLUSIVE")
            try:
                away = admin.post("/v1/admin/reload")
            finally:
                lock.execute("ROLLBACK")
            MlflowClient().delete_registered_model_alias(NAME, "champion")
            unaliased = admin.post("/v1/admin/reload")
            promote(NAME, first, force=True, reason="back")
            back = admin.post("/v1/admin/reload")
            documented = admin.get("/openapi.json").json()["paths"]["/v1/admin/reload"]["post"]["responses"]
    finally:
        lock.close()
        server.stop()
    assert away.status_code == 503 and away.headers["retry-after"] == "30", away.text
    assert away.json()["detail"].startswith(f"MLflow did not answer for models:/{NAME}@champion")
    assert away.json()["detail"].endswith(f"; still serving version {first}")
    assert unaliased.status_code == 503 and "retry-after" not in unaliased.headers
    assert back.status_code == 200
    assert "Retry-After" in documented["503"]["headers"]


def test_a_swap_the_audit_store_cannot_record_is_said_in_one_line_and_made_once_it_can(
    registry, second_version, caplog, monkeypatch
):
    """The audit store away when the poller finds a new champion: the model_served event cannot be written,
    so no swap; that was a traceback in the log every poll. Once the store answers the next poll swaps,
    without loading the version again."""
    served, store_up = [], [True]

    def record_served(model, previous, actor) -> None:
        if not store_up[0]:
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("UPDATE audit_chain ...", {}, locked)
        served.append(model.version)

    holder, loaded = serving_champion(record_served, monkeypatch)
    with (
        champion_moved(second_version, registry, "store-down poll test"),
        caplog.at_level(logging.ERROR, logger="reintegra.model"),
    ):
        store_up[0] = False
        holder.poll_once()
        store_up[0] = True
        holder.poll_once()
    said = [r for r in caplog.records if "the audit store did not answer" in r.getMessage()]
    assert len(said) == 1 and said[0].exc_info is None, [r.getMessage() for r in caplog.records]
    assert "database is locked" in said[0].getMessage()
    assert f"still serving version {registry.version}" in said[0].getMessage()
    assert served == [registry.version, second_version.model_version]
    assert loaded == [registry.version, second_version.model_version]
