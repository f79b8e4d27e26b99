"""Settings from the environment: values the server could not use are refused when read."""

import pytest
from pydantic import ValidationError

from serving.settings import Settings


@pytest.mark.parametrize("prefix", ["", "/reintegra", "/apps/reintegra-2", "/a.b/~c_d"])
def test_a_proxy_prefix_of_plain_segments_is_taken(prefix):
    assert Settings(root_path=prefix).root_path == prefix


BENT = ["reintegra", "/reintegra/", "//evil.example", "/a//b", "/..", "/a/./b", "/a?b", "/a#b", "/a b"]


@pytest.mark.parametrize("prefix", [*BENT, "/a\r\nX: 1"])
def test_a_proxy_prefix_that_would_bend_the_addresses_given_out_is_refused(prefix):
    """'//evil.example' would make Location and every page link point at another host."""
    with pytest.raises(ValidationError, match="a path such as /reintegra"):
        Settings(root_path=prefix)


def test_a_session_secret_too_short_to_resist_guessing_is_refused():
    """Empty makes a random one per start; 32 characters or more are taken."""
    assert Settings(session_secret="").session_secret == ""
    assert Settings(session_secret="s" * 32).session_secret == "s" * 32
    with pytest.raises(ValidationError, match=r"at least 32 characters \(this one has 6\)"):
        Settings(session_secret="hunter")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is empty"),
        ("  ", "is empty"),
        ("county/2024", "holds / or :, which MLflow refuses"),
        ("..", "reads as a folder, which MLflow refuses"),
    ],
)
def test_a_model_name_no_model_can_be_registered_under_is_refused(name, problem):
    """It started as far as MLflow, then said 'no model at models:/county/2024@champion; train and promote
    one first (python -m training train --name county/2024 ...)', a command that refuses the name."""
    assert Settings(model_name="county_2024").model_name == "county_2024"
    assert Settings(model_name="o'brien").model_name == "o'brien", "MLflow registers it; train does not"
    with pytest.raises(ValidationError, match=f"a model name that {problem}: no model can be registered"):
        Settings(model_name=name)


@pytest.mark.parametrize("alias", ["", "cham pion", "champion/2", "latest", "v3"])
def test_an_alias_mlflow_cannot_set_is_refused(alias):
    """'' started as far as MLflow, then said 'no model at models:/reintegra@; train and promote one first',
    though no promotion can set such an alias."""
    assert Settings(model_alias="candidate-2").model_alias == "candidate-2"
    with pytest.raises(ValidationError, match="an alias MLflow can set: letters, digits, _ and -"):
        Settings(model_alias=alias)
