"""`python -m serving audit replay`: stored scores scored again by the version that made them and
compared number by number with what was returned."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from serving.audit import AuditStore
from serving.cli import app
from serving.database import make_engine
from serving.tables import ScoreRow
from tests.serving.servers import TEST_SEAL, Server, champion_moved, score_row
from tests.tracking import tracking_store

pytestmark = pytest.mark.slow


def replay_command(server: Server, *score_ids: str) -> Result:
    """The command as an auditor runs it, against the server's audit store and MLflow."""
    with tracking_store(server.env["MLFLOW_TRACKING_URI"]):
        return CliRunner().invoke(app, ["audit", "replay", *score_ids], env=server.env)


def scored(server: Server, records: list[dict]) -> list[str]:
    with server.client("scorer") as client:
        response = client.post("/v1/scores:batch", json={"items": [{"record": r} for r in records]})
    assert response.status_code == 200, response.text
    return [item["score"]["id"] for item in response.json()["items"]]


def reloaded(server: Server) -> str:
    """The version the server serves after an admin reload."""
    with server.client("admin") as admin:
        return admin.post("/v1/admin/reload").json()["version"]


def test_scores_of_two_versions_are_each_replayed_by_their_own(server, registry, second_version, api_records):
    first = scored(server, api_records[:2])
    with champion_moved(second_version, registry, "replay test"):
        assert reloaded(server) == second_version.model_version
        second = scored(server, api_records[:1])
    assert reloaded(server) == registry.version
    result = replay_command(server, *first, *second)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["replayed"], report["matching"]) == (3, 3)
    assert [s["model"]["version"] for s in report["scores"]] == [registry.version] * 2 + [
        second_version.model_version
    ]
    assert all(s["matches"] and s["differences"] == [] for s in report["scores"])
    assert max(s["largest_difference"] for s in report["scores"]) <= report["tolerance"]


def test_a_number_that_is_not_the_models_is_named_with_both_values(server, api_records):
    [score_id] = scored(server, api_records[2:3])
    engine = make_engine(server.database)
    with engine.begin() as connection:
        result = connection.execute(select(ScoreRow.result).where(ScoreRow.id == score_id)).scalar_one()
        computed = result["explanation"]["risk"]["contributions"][0]["contribution"]
        result["explanation"]["risk"]["contributions"][0]["contribution"] = computed + 0.01
        connection.execute(update(ScoreRow).where(ScoreRow.id == score_id).values(result=result))
    engine.dispose()
    replayed = replay_command(server, score_id)
    assert replayed.exit_code == 1, replayed.output
    [score] = json.loads(replayed.stdout)["scores"]
    assert score["matches"] is False
    assert score["differences"] == [
        {
            "path": "explanation.risk.contributions[0].contribution",
            "stored": computed + 0.01,
            "recomputed": computed,
        }
    ]
    assert score["largest_difference"] == pytest.approx(0.01)


def test_an_id_the_store_does_not_hold_is_named(server, api_records):
    [known] = scored(server, api_records[3:4])
    result = replay_command(server, known, "no-such-score")
    assert result.exit_code == 2
    assert result.stderr.strip() == "no stored score with id no-such-score"


def test_a_version_mlflow_cannot_give_is_named(server):
    row = score_row("P-REPLAY", model_version="999", record={"Gender": "M"})
    engine = make_engine(server.database)
    AuditStore(engine, TEST_SEAL).record([row])
    engine.dispose()
    result = replay_command(server, row.id)
    assert result.exit_code == 2
    assert result.stderr.startswith("cannot load version 999 of reintegra from MLflow")
    assert result.stderr.strip().endswith(f"; looked in MLflow at {server.env['MLFLOW_TRACKING_URI']}")


def test_the_probability_and_band_a_search_shows_are_compared_too(server, api_records):
    """Searches, score lists and the band filter read the row's risk_probability and risk_band columns,
    not its stored answer: edited there alone, a list showed another score while replay said it matched."""
    [score_id] = scored(server, api_records[4:5])
    engine = make_engine(server.database)
    with engine.begin() as connection:
        risk = connection.execute(select(ScoreRow.result).where(ScoreRow.id == score_id)).scalar_one()["risk"]
        edited = update(ScoreRow).where(ScoreRow.id == score_id)
        connection.execute(edited.values(risk_probability=risk["probability"] / 2, risk_band="edited"))
    engine.dispose()
    replayed = replay_command(server, score_id)
    assert replayed.exit_code == 1, replayed.output
    [score] = json.loads(replayed.stdout)["scores"]
    assert score["differences"] == [
        {"path": "risk_probability", "stored": risk["probability"] / 2, "recomputed": risk["probability"]},
        {"path": "risk_band", "stored": "edited", "recomputed": risk["band"]},
    ]


def test_an_mlflow_store_that_is_not_there_is_named_and_not_made(server, api_records, tmp_path):
    """Run from another folder, replay made an empty MLflow store there and said the version 'not found',
    as if the registry had lost it."""
    [score_id] = scored(server, api_records[5:6])
    missing = tmp_path / "elsewhere" / "mlflow.db"
    env = {**server.env, "MLFLOW_TRACKING_URI": f"sqlite:///{missing}"}
    result = CliRunner().invoke(app, ["audit", "replay", score_id], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"no MLflow store at sqlite:///{missing} ({missing}): run this command in the folder the server "
        "runs in, or set MLFLOW_TRACKING_URI to the server's"
    )
    assert not missing.parent.exists()


def test_a_score_naming_another_training_run_than_its_version_is_named(server, api_records):
    """A version number names one training run only within one registry: a registry rebuilt, or a store
    pointed at another MLflow, gives the same version another run, which replay must not pass as the one
    that made the score."""
    [score_id] = scored(server, api_records[6:7])
    engine = make_engine(server.database)
    with engine.begin() as connection:
        run_id = connection.execute(select(ScoreRow.run_id).where(ScoreRow.id == score_id)).scalar_one()
        connection.execute(update(ScoreRow).where(ScoreRow.id == score_id).values(run_id="another-run"))
    engine.dispose()
    replayed = replay_command(server, score_id)
    assert replayed.exit_code == 1, replayed.output
    [score] = json.loads(replayed.stdout)["scores"]
    assert score["differences"] == [{"path": "model.run_id", "stored": "another-run", "recomputed": run_id}]
