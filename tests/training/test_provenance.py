"""The code state a run records: which commit, and whether the code differed from it."""

from training import provenance


def test_a_file_added_under_the_packages_makes_the_code_dirty(checkout):
    """A module added and not committed was code the commit did not hold, yet the run said git_dirty false."""
    assert provenance.git_state()[1] is False
    (checkout / "notes.txt").write_text("not code")
    (checkout / "features" / "__pycache__").mkdir()
    (checkout / "features" / "__pycache__" / "spec.cpython-311.pyc").write_bytes(b"ignored")
    assert provenance.git_state()[1] is False
    (checkout / "features" / "new_inputs.py").write_text("LIMIT = 3\n")
    assert provenance.git_state()[1] is True


def test_a_changed_tracked_file_makes_the_code_dirty(checkout):
    with (checkout / "pyproject.toml").open("a") as file:
        file.write("\n")
    assert provenance.git_state()[1] is True
