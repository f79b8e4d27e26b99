"""Which evaluated rows a model was fitted on, recognised by salted hashes of their ids, never the ids."""

from __future__ import annotations

import hashlib
import secrets

import numpy as np
import pandas as pd

SALT_BYTES = 16


def new_salt() -> str:
    """A salt of the run's own, so two models' hashes cannot be joined to find the people they share."""
    return secrets.token_hex(SALT_BYTES)


def id_hashes(ids: pd.Series, salt: str) -> np.ndarray:
    """Sorted 64-bit keyed BLAKE2b hashes of the ids: enough to know a row again, not to read its id."""
    key = bytes.fromhex(salt)
    digests = [hashlib.blake2b(str(i).encode(), key=key, digest_size=8).digest() for i in ids]
    return np.unique(np.array([int.from_bytes(d, "big") for d in digests], dtype=np.uint64))


def training_rows(ids: pd.Series, metadata: dict) -> int | None:
    """How many of `ids` were in the part the model was fitted on; None for a model that kept no hashes."""
    if "training_id_hashes" not in metadata:
        return None
    given = id_hashes(ids, metadata["training_id_salt"])
    return int(np.isin(given, metadata["training_id_hashes"], assume_unique=True).sum())
