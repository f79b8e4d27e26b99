"""Which evaluated rows a model was fitted on, recognised by salted hashes of the rows, never their ids."""

from __future__ import annotations

import hashlib
import secrets

import numpy as np
import pandas as pd

from features.spec import DatasetSpec

SALT_BYTES = 16
DECIMALS = 9
SEPARATOR = "\x1f"  # the ASCII unit separator, which no cell of a text file holds
# What a row's key holds (kept in the model's metadata): id, outcome and required inputs; a model without
# the entry keyed every required column, supervision-time and protected ones too.
KEY = "id, outcome and required inputs"
EVERY_REQUIRED = "id, outcome and every required column"


def new_salt() -> str:
    """A salt of the run's own, so two models' hashes cannot be joined to find the people they share."""
    return secrets.token_hex(SALT_BYTES)


def row_keys(typed: pd.DataFrame, spec: DatasetSpec, key: str = KEY) -> pd.Series:
    """Each record's id, outcome and required inputs as validation typed them (optional columns, which an
    export may leave out, do not count): the same row in any order or format is known again, and another
    person given a recycled id (an export numbering rows from 1) is not. Other columns (supervision-time,
    protected) do not count either: blanked or corrected, the models still saw the row. Models trained
    before kept the `EVERY_REQUIRED` key."""
    given = spec.inputs() if key == KEY else [c.name for c in spec.columns]
    keyed = [c.name for c in spec.columns if c.required and c.name in given]
    columns = typed.reindex(columns=[spec.id, spec.outcome.column, *keyed])
    numbers = columns.select_dtypes("float").columns  # rounded: writers differ in a number's last digit
    columns[numbers] = columns[numbers].round(DECIMALS)
    text = columns.astype(object).where(columns.notna(), "").astype(str)
    return text.iloc[:, 0].str.cat([text[name] for name in text.columns[1:]], sep=SEPARATOR)


def row_hashes(keys: pd.Series, salt: str) -> np.ndarray:
    """Sorted 64-bit keyed BLAKE2b hashes of the rows: enough to know a row again, not to read its id."""
    key = bytes.fromhex(salt)
    digests = [hashlib.blake2b(k.encode(), key=key, digest_size=8).digest() for k in keys]
    return np.unique(np.array([int.from_bytes(d, "big") for d in digests], dtype=np.uint64))


def training_rows(typed: pd.DataFrame, spec: DatasetSpec, metadata: dict, absent: list[str]) -> int | None:
    """How many rows of `typed` the model was fitted on; None for a model that kept no hashes, or whose
    key holds a column the file lacks (`absent`)."""
    if "training_row_hashes" not in metadata:
        return None
    key = metadata.get("training_row_key", EVERY_REQUIRED)
    if absent and key == EVERY_REQUIRED:
        return None
    given = row_hashes(row_keys(typed, spec, key), metadata["training_row_salt"])
    return int(np.isin(given, metadata["training_row_hashes"], assume_unique=True).sum())
