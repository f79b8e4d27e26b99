"""MLflow models-from-code entry point: the logged model is this file, not a pickled object."""

from mlflow.models import set_model

from models.pyfunc import ReintegraModel

set_model(ReintegraModel())
