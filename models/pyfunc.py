"""The scoring bundle as an MLflow pyfunc model: what the registry stores and serving loads."""

from __future__ import annotations

import joblib
import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from features.records import as_text
from features.spec import DatasetSpec
from features.validation import RecordsInvalid, validate_records
from models.bundle import ScoringBundle

BUNDLE_ARTIFACT = "bundle"


class ReintegraModel(mlflow.pyfunc.PythonModel):
    """Scores release-time records: probabilities, band, needs with interventions, explanations."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.bundle: ScoringBundle = joblib.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params=None
    ) -> list[dict]:
        """Validate like a file at release, then score; invalid records raise, never half-score."""
        records = as_text(pd.DataFrame(model_input))
        if records.empty:  # batch scorers (Spark) may hand over empty batches
            return []
        _, report = validate_records(records, self.bundle.spec, labelled=False)
        if not report.ok:
            raise RecordsInvalid(report)
        return self.bundle.score_records(records.to_dict("records"))


def release_signature(spec: DatasetSpec) -> ModelSignature:
    """Input schema: release-time inputs and protected attributes, every one optional.

    Numbers are declared as doubles and everything else as text, so that missing values never
    break the schema (MLflow rejects integer columns that hold missing values).
    """
    names = [*spec.inputs(), *spec.protected]
    columns = [
        ColSpec("double" if spec.column(n).kind == "numeric" else "string", n, required=False) for n in names
    ]
    return ModelSignature(inputs=Schema(columns))


def load_bundle(uri: str) -> ScoringBundle:
    """The bundle inside a logged or registered model, e.g. ``models:/reintegra@champion``."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model().bundle
