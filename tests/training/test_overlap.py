"""Recognising training rows by salted hashes of their ids."""

import pandas as pd

from training.overlap import id_hashes, new_salt, training_rows


def test_rows_are_counted_by_id_whatever_their_order():
    salt = new_salt()
    metadata = {"training_id_salt": salt, "training_id_hashes": id_hashes(pd.Series(["a", "b", "c"]), salt)}
    assert training_rows(pd.Series(["x", "c", "a", "y"]), metadata) == 2
    assert training_rows(pd.Series(["x", "y"]), metadata) == 0


def test_the_same_ids_hash_apart_under_another_salt():
    ids = pd.Series([str(i) for i in range(100)])
    assert not set(id_hashes(ids, new_salt())) & set(id_hashes(ids, new_salt()))


def test_a_model_that_kept_no_hashes_cannot_tell():
    assert training_rows(pd.Series(["a"]), {"n_train": 10}) is None
