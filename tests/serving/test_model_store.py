"""The serving model holder against a real MLflow registry: swaps, and versions it must refuse."""

import logging
import time

import pytest
import yaml
from mlflow import MlflowClient

from features.spec import load_spec
from models.registry import FORCED_REASON_TAG
from serving.model_store import ModelHolder, SchemaChanged
from training.promote import promote
from training.train import train

NAME = "schema-change"


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
    swaps = []
    holder = ModelHolder(NAME, "champion", on_swap=lambda *args: swaps.append(args))
    holder.reload()
    promote(NAME, second, force=True, reason="test")
    refusal = f"version {second} accepts different records than version {first}"
    with caplog.at_level(logging.ERROR, logger="reintegra.model"):
        with pytest.raises(SchemaChanged, match=refusal):
            holder.reload()
        assert holder.current.version == first and swaps == [(NAME, first, None)]
        holder.start_polling(0.05)
        time.sleep(0.6)
        holder.stop_polling()
    refusals = [r for r in caplog.records if "accepts different records" in r.getMessage()]
    assert len(refusals) == 1, "said once when refused, not again on every poll"
    assert holder.current.version == first


def test_the_serving_model_carries_its_forced_promotion_reason(versions):
    first, _ = versions
    promote(NAME, first, force=True, reason="test")
    MlflowClient().set_model_version_tag(NAME, first, FORCED_REASON_TAG, "pilot approved by the board")
    holder = ModelHolder(NAME, "champion", on_swap=lambda *args: None)
    holder.reload()
    assert holder.current.forced_reason == "pilot approved by the board"
