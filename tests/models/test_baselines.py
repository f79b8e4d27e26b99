"""The baselines a model is compared with."""

import numpy as np
import pytest

from models.baselines import IncumbentBaseline


def test_an_incumbent_missing_on_every_row_says_what_to_do(training_typed, spec):
    """A file whose export left the existing score out stopped training with only 'incumbent score ...
    is missing on every row': nothing said that the spec may leave the incumbent out."""
    column = spec.column(spec.incumbent.column)
    records = training_typed.iloc[:200].assign(**{column.name: np.nan})
    with pytest.raises(ValueError) as refused:
        IncumbentBaseline(column).fit(records, records[spec.outcome.column].astype(int).to_numpy())
    assert str(refused.value) == (
        f"incumbent score {column.name} is missing on every training row: fill it in, or remove `incumbent` "
        "from the spec to train without comparing against it"
    )
