"""The server's command line: first-run set-up, and where it must refuse to start."""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app
from serving.database import make_engine, migrate
from serving.keys import KeyStore
from tests.commands import modules_imported
from tests.serving.scenarios import refuse_odd_key_names
from tests.serving.servers import audit_events, free_port, start_server
from tests.serving.stores import upgrade_to

pytestmark = pytest.mark.slow


def serving_command(
    *args: str, env: dict, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m serving ARGS` as a process of its own, as an operator runs it: exit status and stderr."""
    command = [sys.executable, "-m", "serving", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)


def test_serving_without_a_champion_says_what_to_do(tmp_path):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/empty-mlflow.db",
        "REINTEGRA_AUDIT_URL": f"sqlite:///{tmp_path}/audit.db",
        "REINTEGRA_KEYS_URL": f"sqlite:///{tmp_path}/audit.db",
    }
    result = serving_command("--port", "1", env=env)
    assert result.returncode == 2
    assert "no model at models:/reintegra@champion; train and promote one first" in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_setup_creates_one_private_key_per_role_once(registry, spec, tmp_path):
    database = f"sqlite:///{tmp_path}/audit.db"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
    }
    first, again = (
        serving_command("dev-setup", "--folder", str(tmp_path / "dev"), env=env) for _ in range(2)
    )
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    keys_file = tmp_path / "dev" / "dev-keys.env"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    keys = dict(line.split("=", 1) for line in keys_file.read_text().splitlines())
    store = KeyStore(make_engine(database))
    assert {name: store.verify(key).role for name, key in keys.items()} == {
        "REINTEGRA_SCORER_KEY": "scorer",
        "REINTEGRA_REVIEWER_KEY": "reviewer",
        "REINTEGRA_ADMIN_KEY": "admin",
        "REINTEGRA_MONITOR_KEY": "monitor",
    }
    assert len(store.list()) == 4, "a second run keeps the keys it made"
    assert keys["REINTEGRA_SCORER_KEY"] in first.stdout and "created development keys" in first.stdout
    assert "created on the first run" in again.stdout
    created = [e for e in audit_events(env) if e["kind"] == "key_created"]
    assert [e["detail"]["command"] for e in created] == ["dev-setup"] * 4, "who made the development keys"
    example = json.loads((tmp_path / "dev" / "example-request.json").read_text())
    assert example["record"] and set(example["record"]) <= {*spec.inputs(), *spec.protected}


def test_dev_setup_replaces_kept_keys_that_no_longer_open_the_store(registry, tmp_path):
    """A revoked development key (or a file made for another key store) was printed again with the example
    call, which then got a 401."""
    database = f"sqlite:///{tmp_path}/audit.db"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
    }
    folder = tmp_path / "dev"
    assert serving_command("dev-setup", "--folder", str(folder), env=env).returncode == 0
    keys_file = folder / "dev-keys.env"
    store = KeyStore(make_engine(database))
    store.revoke(store.verify(keys_file.read_text().splitlines()[0].split("=", 1)[1]).id)
    again = serving_command("dev-setup", "--folder", str(folder), env=env)
    assert again.returncode == 0, again.stderr
    assert f"the keys in {keys_file} do not open the key store at {database}: making new ones" in again.stdout
    keys = [line.split("=", 1)[1] for line in keys_file.read_text().splitlines()]
    assert len(keys) == 4 and all(store.verify(key) is not None for key in keys)
    assert keys[0] in again.stdout


def test_a_bad_setting_is_named_in_one_line_without_a_traceback(tmp_path):
    env = {**os.environ, "REINTEGRA_PORT": "notaport", "REINTEGRA_WORKERS": "0"}
    result = serving_command(env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "REINTEGRA_PORT='notaport': Input should be a valid integer, unable to parse string as an integer",
        "REINTEGRA_WORKERS='0': Input should be greater than or equal to 1",
    ]


def test_a_store_that_does_not_answer_stops_the_server_in_one_line(registry, tmp_path):
    """Not a traceback from every worker that uvicorn would restart forever."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "REINTEGRA_AUDIT_URL": "postgresql+psycopg://reviewer:secret@127.0.0.1:1/audit",
        "REINTEGRA_KEYS_URL": f"sqlite:///{tmp_path}/keys.db",
    }
    result = serving_command("--port", "1", "--workers", "2", env=env)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("cannot open the store at postgresql+psycopg://reviewer:***@127.0.0.1:1/audit: ")
    assert "secret" not in result.stderr


def test_store_urls_and_intervals_the_server_cannot_use_are_named_in_one_line(registry, tmp_path):
    """Caught with the other settings, before any store is opened; a URL's password is never shown."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "REINTEGRA_AUDIT_URL": "audit.db",
        "REINTEGRA_KEYS_URL": "mysql://ops:hunter2@db.example/keys",
        "REINTEGRA_POLL_SECONDS": "inf",
        "REINTEGRA_SESSION_HOURS": "nan",
    }
    result = serving_command("--port", "1", env=env)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "REINTEGRA_AUDIT_URL",
        "REINTEGRA_KEYS_URL",
        "REINTEGRA_POLL_SECONDS",
        "REINTEGRA_SESSION_HOURS",
    ]
    assert "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db" in lines[0]
    assert lines[1].startswith("REINTEGRA_KEYS_URL='mysql://ops:***@db.example/keys': ")
    assert lines[3] == "REINTEGRA_SESSION_HOURS='nan': Input should be a finite number"
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["--port", "70000"], "--port 70000: Input should be less than or equal to 65535"),
        (["--port", "0"], "--port 0: Input should be greater than or equal to 1"),
        (["--workers", "0"], "--workers 0: Input should be greater than or equal to 1"),
    ],
)
def test_an_option_out_of_range_is_refused_in_one_line_as_typed(args, refusal, tmp_path):
    """Not bound modulo 65536 (70000 would listen on 4464 while the log says 70000). Typer's own range
    check drew a usage box of five lines, where the same value as a variable was one line."""
    database = f"sqlite:///{tmp_path}/audit.db"
    env = {"REINTEGRA_AUDIT_URL": database, "REINTEGRA_KEYS_URL": database}
    # None: the runner restores the variable each option sets for the settings.
    result = CliRunner().invoke(app, args, env=env | {"REINTEGRA_PORT": None, "REINTEGRA_WORKERS": None})
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [refusal]


def no_keys(url: str) -> str:
    """What `keys list` says on stderr for a store holding no key."""
    return f"no API keys in the store at {url}; create one with keys create --role ROLE"


def created(url: str) -> str:
    """What a command says on stderr when the store it opens did not exist."""
    return f"created a new store at {url}, at schema {newest_revision()}"


def test_an_empty_key_store_is_said_so_not_listed_as_nothing(tmp_path):
    """It printed nothing at all, so a misspelt store URL looked like a store whose keys were all gone."""
    database = f"sqlite:///{tmp_path}/keys.db"
    env = {"REINTEGRA_KEYS_URL": database, "REINTEGRA_AUDIT_URL": database}
    empty = CliRunner().invoke(app, ["keys", "list"], env=env)
    assert (empty.exit_code, empty.stdout) == (0, "")
    assert empty.stderr.splitlines() == [created(database), no_keys(database)]
    made = CliRunner().invoke(app, ["keys", "create", "--role", "monitor", "--name", "prometheus"], env=env)
    listed = CliRunner().invoke(app, ["keys", "list"], env=env)
    assert listed.stderr == "" and listed.stdout.rstrip().endswith("never used             prometheus")
    engine = make_engine(database)
    KeyStore(engine).verify(made.stdout.splitlines()[-1])
    engine.dispose()
    used = CliRunner().invoke(app, ["keys", "list"], env=env).stdout
    assert re.search(r"  active {18}  used \d{4}-\d\d-\d\d \d\d:\d\d  prometheus$", used, re.M), used


def test_key_names_that_would_forge_list_lines_or_not_fit_are_refused(tmp_path):
    refuse_odd_key_names(f"sqlite:///{tmp_path}/keys.db")


def test_keys_commands_say_in_one_line_when_the_store_cannot_be_opened(tmp_path):
    """As the server does: a store that does not answer, or a folder that cannot be made, is exit 2."""
    (tmp_path / "a-file").write_text("")
    (tmp_path / "damaged.db").write_bytes(bytes(range(256)) * 32)
    for url, reason in (
        ("postgresql+psycopg://ops:secret@127.0.0.1:1/keys", "connection"),
        (f"sqlite:///{tmp_path}/a-file/keys.db", "File exists"),
        (f"sqlite:///{tmp_path}/damaged.db", "file is not a database"),
    ):
        env = {**os.environ, "REINTEGRA_KEYS_URL": url, "REINTEGRA_AUDIT_URL": url}
        result = serving_command("keys", "list", env=env)
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert line.startswith(f"cannot open the store at {url.replace(':secret@', ':***@')}: ")
        assert reason in line and "secret" not in line


def test_a_store_url_that_does_not_parse_is_named_without_its_password(tmp_path):
    """A port that is not a number: SQLAlchemy raised, and a traceback printed the URL, password and all."""
    env = {**os.environ, "REINTEGRA_AUDIT_URL": "postgresql+psycopg://ops:hunter2@db.example:notaport/audit"}
    result = serving_command("keys", "list", env=env)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("REINTEGRA_AUDIT_URL='postgresql+psycopg://ops:***@db.example:notaport/audit': ")
    assert "not a database URL" in line and "hunter2" not in result.stderr


def _can_make(path: Path) -> bool:
    try:
        path.touch(exist_ok=False)
    except OSError:
        return False
    path.unlink()
    return True


def test_an_audit_key_file_that_cannot_be_made_is_named_in_one_line(tmp_path):
    """Where no one may make a file (sysfs: file modes do not stop root, whom the suite runs as)."""
    key_file = Path("/sys/reintegra-audit.key")
    if _can_make(key_file):
        pytest.skip("/sys takes new files here, so no folder refuses a new key file to this user")
    store = f"sqlite:///{tmp_path}/audit.db"
    env = {
        **os.environ,
        "REINTEGRA_AUDIT_URL": store,
        "REINTEGRA_KEYS_URL": store,
        "REINTEGRA_AUDIT_KEY_FILE": str(key_file),
    }
    result = serving_command("keys", "create", "--role", "scorer", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        created(store),
        f"cannot make the audit key file {key_file} (REINTEGRA_AUDIT_KEY_FILE): Permission denied",
    ]


def test_a_sqlite_store_in_a_missing_folder_is_refused_except_the_default_one(tmp_path, monkeypatch):
    """sqlite:///dta/reintegra.db (data misspelt) made the folder dta and kept the keys there, unsaid."""
    monkeypatch.chdir(tmp_path)
    database = f"sqlite:///{tmp_path}/dta/keys.db"
    result = CliRunner().invoke(
        app, ["keys", "list"], env={"REINTEGRA_KEYS_URL": database, "REINTEGRA_AUDIT_URL": database}
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"REINTEGRA_{variable}_URL={database!r}: folder {tmp_path}/dta does not exist; create it or "
        "correct the URL (only data/, the default store's, is made when missing)"
        for variable in ("AUDIT", "KEYS")
    ]
    assert not (tmp_path / "dta").exists()
    default = CliRunner().invoke(
        app, ["keys", "list"], env={"REINTEGRA_KEYS_URL": None, "REINTEGRA_AUDIT_URL": None}
    )
    assert default.exit_code == 0, default.output
    assert (tmp_path / "data" / "reintegra.db").exists(), "the default store's folder is made"


def test_a_variable_that_sets_nothing_is_named_with_the_setting_it_resembles(tmp_path):
    """A misspelt REINTEGRA_KEYS_URL would otherwise create keys in the default store without a word."""
    database = f"sqlite:///{tmp_path}/keys.db"
    env = {
        "REINTEGRA_KEYS_URL": database,
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_ULR": "sqlite:///elsewhere.db",
        "REINTEGRA_COLOUR": "blue",
        "REINTEGRA_SCORER_KEY": "rk_from_dev_keys_env",
        "REINTEGRA_TEST_ANYTHING": "1",
    }
    result = CliRunner().invoke(app, ["keys", "list"], env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: REINTEGRA_COLOUR is not a setting and is ignored; settings are REINTEGRA_{HOST,"
        "ROOT_PATH,PORT,WORKERS,MODEL_NAME,MODEL_ALIAS,AUDIT_URL,KEYS_URL,AUDIT_KEY_FILE,POLL_SECONDS,"
        "DB_POOL_SIZE,"
        "DB_MAX_OVERFLOW,MAX_BATCH,MAX_IN_FLIGHT,MAX_BODY_BYTES,SESSION_SECRET,SESSION_HOURS,SESSION_IDLE_MINUTES}",
        "warning: REINTEGRA_KEYS_ULR is not a setting and is ignored; did you mean REINTEGRA_KEYS_URL?",
        created(database),
        no_keys(database),
    ]


def test_a_refused_session_secret_is_not_printed(tmp_path):
    database = f"sqlite:///{tmp_path}/keys.db"
    env = {"REINTEGRA_KEYS_URL": database, "REINTEGRA_AUDIT_URL": database}
    env["REINTEGRA_SESSION_SECRET"] = "hunter2"
    result = CliRunner().invoke(app, ["keys", "list"], env=env)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("REINTEGRA_SESSION_SECRET='***': at least 32 characters (this one has 7)")
    assert "hunter2" not in result.stderr


def test_a_url_naming_a_database_kind_sqlalchemy_does_not_know_is_named_in_one_line(tmp_path):
    """postgres:// (as many hosting services write it) is not a SQLAlchemy dialect: it was a traceback."""
    database = f"sqlite:///{tmp_path}/keys.db"
    for url, shown in (
        ("postgres://ops:hunter2@db.example/keys", "postgres://ops:***@db.example/keys"),
        ("http://db.example/keys", "http://db.example/keys"),
    ):
        result = CliRunner().invoke(
            app, ["keys", "list"], env={"REINTEGRA_KEYS_URL": url, "REINTEGRA_AUDIT_URL": database}
        )
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"REINTEGRA_KEYS_URL={shown!r}: {url.split(':')[0]} is not supported; "
            "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
        ]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite:///"])
def test_an_in_memory_audit_store_is_refused_before_anything_is_written(url, tmp_path):
    """Each worker, and each command, would get an empty trail of its own that is lost when it ends."""
    env = {"REINTEGRA_AUDIT_URL": url, "REINTEGRA_KEYS_URL": f"sqlite:///{tmp_path}/keys.db"}
    result = CliRunner().invoke(app, ["keys", "create", "--role", "scorer"], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"REINTEGRA_AUDIT_URL={url!r}: an in-memory database would lose the audit trail; "
        "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
    ]
    assert not (tmp_path / "keys.db").exists()


def test_an_mlflow_that_does_not_answer_is_not_reported_as_a_missing_champion(tmp_path):
    """It said 'no model ...; train and promote one first', sending the operator to retrain."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": "http://ops:mlpw@127.0.0.1:1",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "REINTEGRA_AUDIT_URL": f"sqlite:///{tmp_path}/audit.db",
        "REINTEGRA_KEYS_URL": f"sqlite:///{tmp_path}/audit.db",
    }
    result = serving_command("--port", "1", env=env)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("MLflow did not answer for models:/reintegra@champion (MLFLOW_TRACKING_URI=")
    assert "127.0.0.1:1" in line and "train and promote" not in line
    assert "http://ops:***@127.0.0.1:1" in line and "mlpw" not in result.stderr, "MLflow's message quotes it"


def test_a_champion_that_cannot_be_loaded_stops_the_server_in_one_line(registry, tmp_path):
    """Its artifacts gone: each of two workers failed with a traceback and uvicorn restarted them
    forever (one worker: a traceback, exit 1)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    source = client.get_model_version("reintegra", registry.version)
    name = f"no-artifacts-{tmp_path.name}"
    client.create_registered_model(name)
    version = client.create_model_version(name, str(tmp_path / "gone"), run_id=source.run_id).version
    client.set_registered_model_alias(name, "champion", version)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "REINTEGRA_MODEL_NAME": name,
        "REINTEGRA_AUDIT_URL": f"sqlite:///{tmp_path}/audit.db",
        "REINTEGRA_KEYS_URL": f"sqlite:///{tmp_path}/audit.db",
    }
    for workers in ("2", "1"):
        result = serving_command("--port", "1", "--workers", workers, env=env, timeout=60)
        assert result.returncode == 2, result.stderr[-2000:]
        [line] = result.stderr.splitlines()
        assert line.startswith(f"cannot load version {version} of {name} from MLflow: "), line


def test_a_store_migrated_by_a_newer_release_is_named_in_one_line(tmp_path):
    """After rolling back a release that had migrated the store it was a traceback ('CommandError:
    Can't locate revision identified by ...')."""
    from sqlalchemy import text

    database = f"sqlite:///{tmp_path}/audit.db"
    engine = make_engine(database)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    result = CliRunner().invoke(
        app, ["keys", "list"], env={"REINTEGRA_KEYS_URL": database, "REINTEGRA_AUDIT_URL": database}
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"cannot open the store at {database}: its schema is at revision 0099, which this release does not "
        f"know (its newest is {newest_revision()}): a newer release migrated it; serve that release, or "
        "restore a backup taken before it"
    ]


def newest_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "serving:migrations")
    return ScriptDirectory.from_config(config).get_current_head()


def test_a_metrics_folder_that_cannot_be_made_is_named_in_one_line(registry, tmp_path):
    """Each worker failed on its first metric with a traceback, and uvicorn restarted them forever."""
    (tmp_path / "a-file").write_text("")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "a-file" / "metrics"),
        "REINTEGRA_AUDIT_URL": f"sqlite:///{tmp_path}/audit.db",
        "REINTEGRA_KEYS_URL": f"sqlite:///{tmp_path}/audit.db",
    }
    result = serving_command("--port", "1", "--workers", "2", env=env, timeout=60)
    assert result.returncode == 2
    [made, line] = result.stderr.splitlines()
    assert made == created(f"sqlite:///{tmp_path}/audit.db")
    assert line.startswith(
        f"PROMETHEUS_MULTIPROC_DIR={tmp_path / 'a-file' / 'metrics'}: cannot write metrics there: "
    )


def test_a_second_server_on_the_metrics_folder_of_a_running_one_is_refused(registry, tmp_path, api_records):
    """It emptied the folder, so the first server's counts were gone, and each scrape then added up the
    workers of both servers."""
    folder = tmp_path / "metrics"
    first = start_server(registry, tmp_path, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    try:
        with first.client("scorer") as scorer:
            assert scorer.post("/v1/scores", json={"record": api_records[0]}).status_code == 201
        command = [sys.executable, "-m", "serving", "--port", str(free_port()), "--workers", "2"]
        second = subprocess.Popen(command, env=first.env, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = second.communicate(timeout=120)
        finally:
            if second.poll() is None:  # it started: SIGTERM, so that it stops its workers too
                second.terminate()
                second.wait(timeout=60)
        with first.client("reviewer") as reviewer:
            scraped = reviewer.get("/metrics").text
    finally:
        first.stop()
    assert second.returncode == 2
    assert stderr.splitlines() == [
        f"PROMETHEUS_MULTIPROC_DIR={folder}: another server (pid {first.process.pid}) keeps its metrics "
        "there; give each server a folder of its own"
    ]
    assert 'reintegra_requests_total{method="POST",route="/v1/scores",status="201"} 1.0' in scraped


def test_a_sighup_to_a_one_worker_server_is_refused_in_its_log_not_its_end(registry, tmp_path):
    """make run and make serve start one worker, and a SIGHUP to it ended it at once, requests under way
    included ('make: *** [Makefile:69: serve] Hangup'), with no line saying why."""
    server = start_server(registry, tmp_path)
    log = tmp_path / "server.log"
    try:
        server.process.send_signal(signal.SIGHUP)
        for _ in range(150):  # until it says so, or ends
            if b"SIGHUP ignored" in log.read_bytes() or server.process.poll() is not None:
                break
            time.sleep(0.2)
        with server.client() as client:
            answer = client.get("/healthz").status_code
    finally:
        server.stop()
    assert answer == 200, "it served on"
    assert server.process.returncode == -signal.SIGTERM, "and ended by the SIGTERM (uvicorn raises it again)"
    [line] = [line for line in log.read_text().splitlines() if "SIGHUP" in line]
    assert " WARNING reintegra.server pid=" in line
    assert line.endswith(
        "SIGHUP ignored: a one-worker server has no workers to replace; POST /v1/admin/reload loads the "
        "version the alias points at, and a new release or a version that accepts other records needs a "
        "restart (SIGTERM, then start it again), or serve with --workers 2 to restart by SIGHUP"
    )


def test_a_missing_champion_names_the_store_it_was_looked_for_in(tmp_path):
    """Started from another folder (a service manager's default), the relative default store is another
    file; the message said only 'no model', not where it had looked."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {
        "REINTEGRA_AUDIT_URL": f"sqlite:///{tmp_path}/audit.db",
        "REINTEGRA_KEYS_URL": f"sqlite:///{tmp_path}/audit.db",
    }
    result = serving_command("--port", "1", env=env, cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("no model at models:/reintegra@champion; train and promote one first")
    store = f"sqlite:///mlflow/mlflow.db ({tmp_path}/mlflow/mlflow.db, from the working folder)"
    assert last.endswith(f"; looked in MLflow at {store}")


def test_a_store_of_an_older_release_is_migrated_and_says_so(tmp_path):
    """Start-up migrated it in silence: an operator upgrading could not tell that it had."""
    database = f"sqlite:///{tmp_path}/audit.db"
    engine = make_engine(database)
    upgrade_to(engine, "0001")
    engine.dispose()
    env = {"REINTEGRA_KEYS_URL": database, "REINTEGRA_AUDIT_URL": database}
    first, again = (CliRunner().invoke(app, ["keys", "list"], env=env) for _ in range(2))
    assert first.exit_code == again.exit_code == 0, first.output
    assert first.stderr.splitlines() == [
        f"migrated the store at {database} from schema 0001 to {newest_revision()}",
        no_keys(database),
    ]
    assert again.stderr.splitlines() == [no_keys(database)], "said once, when it migrated"


def test_a_new_store_is_said_to_be_new(tmp_path):
    """A mistyped store URL made an empty store in silence: `keys list` then said only that there were
    no keys, and `migrate` that the store was at this release's schema, as of the real one."""
    database = f"sqlite:///{tmp_path}/audti.db"
    env = {"REINTEGRA_KEYS_URL": database, "REINTEGRA_AUDIT_URL": database}
    listed, migrated = (
        CliRunner().invoke(app, [*command], env=env) for command in (["keys", "list"], ["migrate"])
    )
    assert listed.exit_code == migrated.exit_code == 0, listed.output
    assert listed.stderr.splitlines() == [created(database), no_keys(database)]
    assert migrated.stderr == "", "said once, when it was made"
    assert migrated.stdout == f"the store at {database} is at this release's schema\n"


def test_an_audit_store_set_without_a_keys_store_is_warned_of(tmp_path, monkeypatch):
    """Keys then stay in the default SQLite file of the host where they were made: set only
    REINTEGRA_AUDIT_URL to PostgreSQL, a key made on one host is unknown to the others."""
    monkeypatch.chdir(tmp_path)
    audit = f"sqlite:///{tmp_path}/audit.db"
    result = CliRunner().invoke(
        app, ["keys", "list"], env={"REINTEGRA_AUDIT_URL": audit, "REINTEGRA_KEYS_URL": None}
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: REINTEGRA_KEYS_URL is not set, so API keys and page sessions are kept in "
        "sqlite:///data/reintegra.db (relative to the working folder), not in the audit store of "
        "REINTEGRA_AUDIT_URL; set REINTEGRA_KEYS_URL, to the same URL to keep them there",
        created("sqlite:///data/reintegra.db"),
        no_keys("sqlite:///data/reintegra.db"),
    ]
    both = CliRunner().invoke(
        app, ["keys", "list"], env={"REINTEGRA_AUDIT_URL": audit, "REINTEGRA_KEYS_URL": audit}
    )
    assert both.stderr.splitlines() == [created(audit), no_keys(audit)]


def test_an_audit_store_set_to_the_keys_default_is_not_warned_of(tmp_path, monkeypatch):
    """REINTEGRA_AUDIT_URL=sqlite:///data/reintegra.db, the default written out, was warned to keep the
    keys 'not in the audit store of REINTEGRA_AUDIT_URL', where they were."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["keys", "list"],
        env={"REINTEGRA_AUDIT_URL": "sqlite:///data/reintegra.db", "REINTEGRA_KEYS_URL": None},
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        created("sqlite:///data/reintegra.db"),
        no_keys("sqlite:///data/reintegra.db"),
    ], "and no warning"


def test_more_workers_than_the_host_can_hold_are_refused(tmp_path):
    """REINTEGRA_WORKERS=1000 (a typo for 10) started 1000 workers of about 340 MB each: the kernel's
    out-of-memory killer then killed processes across the host."""
    most = 4 * os.cpu_count()
    database = f"sqlite:///{tmp_path}/audit.db"
    env = {
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
    }
    # None: the runner restores the variable that --workers sets for the settings. Each refusal names
    # what was used: '--workers 1000' was reported as REINTEGRA_WORKERS, which was not set.
    for args, variables, given in (
        (["--workers", "1000"], {"REINTEGRA_WORKERS": None}, "--workers 1000"),
        (["--workers", "1000"], {"REINTEGRA_WORKERS": "2"}, "--workers 1000"),
        ([], {"REINTEGRA_WORKERS": "1000"}, "REINTEGRA_WORKERS='1000'"),
    ):
        result = CliRunner().invoke(app, args, env=env | variables)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"{given}: at most {most} (4 per CPU of this host): each worker loads its own "
            "copy of the model (about 340 MB) and opens its own connections to each store"
        ]


def test_a_refused_root_path_is_named_as_it_was_given(tmp_path):
    database = f"sqlite:///{tmp_path}/audit.db"
    env = {"REINTEGRA_AUDIT_URL": database, "REINTEGRA_KEYS_URL": database, "REINTEGRA_ROOT_PATH": None}
    for args, variables, given in (
        (["--root-path", "/app path/"], {}, "--root-path '/app path/'"),
        ([], {"REINTEGRA_ROOT_PATH": "/app/"}, "REINTEGRA_ROOT_PATH='/app/'"),
    ):
        result = CliRunner().invoke(app, args, env=env | variables)
        assert result.exit_code == 2, result.output
        [line] = result.stderr.splitlines()
        assert line.startswith(f"{given}: a path such as /reintegra"), line


def test_a_host_that_is_no_address_here_is_named_in_one_line(tmp_path):
    """uvicorn said only '[Errno -2] Name or service not known' (exit 3), after loading and migrating."""
    database = f"sqlite:///{tmp_path}/audit.db"
    env = {
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
    }
    for args, variables in ((["--host", "no-such-host.invalid"], {}), ([], {"REINTEGRA_HOST": "999.1.1.1"})):
        result = CliRunner().invoke(app, [*args, "--port", "8731"], env=env | variables)
        host = "no-such-host.invalid" if args else "999.1.1.1"
        assert result.exit_code == 2, result.output
        [line] = result.stderr.splitlines()
        assert line.startswith(f"cannot listen on {host}:8731 (--host or REINTEGRA_HOST): "), line


def test_an_address_this_host_does_not_have_is_named_in_one_line(tmp_path):
    """192.0.2.1 (documentation only) parses, but no interface here has it: the server went on to load the
    model, then uvicorn said '[Errno 99] error while attempting to bind', naming no setting."""
    database = f"sqlite:///{tmp_path}/audit.db"
    env = {
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
    }
    result = CliRunner().invoke(app, ["--host", "192.0.2.1", "--port", "8731"], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "cannot listen on 192.0.2.1:8731 (--host or REINTEGRA_HOST): [Errno 99] Cannot assign requested "
        "address; no network interface of this host has that address"
    ]


def test_a_port_another_server_holds_is_named_in_one_line(tmp_path):
    """uvicorn said '[Errno 98] error while attempting to bind on address ...: address already in use'
    with exit 3, after loading the model and migrating the stores, naming no setting."""
    database = f"sqlite:///{tmp_path}/audit.db"
    env = {
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
    }
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for args, variables in ((["--port", str(port)], {}), ([], {"REINTEGRA_PORT": str(port)})):
            result = CliRunner().invoke(app, args, env=env | variables)
            assert result.exit_code == 2, result.output
            [line] = result.stderr.splitlines()
            assert line.startswith(f"cannot listen on 127.0.0.1:{port} (--port or REINTEGRA_PORT): "), line
            assert "already in use" in line, line


def test_a_one_worker_server_reads_the_champions_bundle_once(registry, tmp_path):
    """The start checked the champion loads, then the app loaded it again: every start read and unpickled
    the bundle twice (0.1-0.6 s of the start's 3.4-6.6 s of CPU). Counted as the files the server opens."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed: the files a server opens cannot be counted without it")
    trace = tmp_path / "opened.trace"
    server = start_server(
        registry, tmp_path, wrapper=[strace, "-f", "--seccomp-bpf", "-e", "trace=openat", "-o", str(trace)]
    )
    # Stopped by its own pid: strace, sent SIGTERM, lets go of the server and leaves it running.
    [pid] = re.findall(r"Started server process \[(\d+)\]", (tmp_path / "server.log").read_text())
    os.kill(int(pid), signal.SIGTERM)
    server.process.wait(timeout=60)
    opened = [
        line for line in trace.read_text().splitlines() if "bundle.joblib" in line and "= -1" not in line
    ]
    assert len(opened) == 1, opened


@pytest.mark.parametrize(
    "args, env", [(["--help"], {}), ([], {"REINTEGRA_WORKERS": "abc"})], ids=["help", "refused"]
)
def test_help_and_a_refused_setting_are_answered_before_mlflow_is_imported(tmp_path, args, env):
    """MLflow and the model's libraries take 2-4 s to import: `--help` waited on them, and a refused
    setting was said only after them (3.2 s, now 0.75 s)."""
    code, imported = modules_imported("serving", *args, folder=tmp_path, env=env)
    assert "serving.cli" in imported
    assert not {"mlflow", "sklearn", "lightgbm"} & imported
    assert code == (0 if args else 2)


def test_help_names_commands_not_modules():
    """`python -m serving --help` told an operator that "the keys and audit commands are in cli_keys and
    cli_audit", the names of this package's modules, which no command takes."""
    shown = CliRunner().invoke(app, ["--help"], prog_name="python -m serving").output
    assert "cli_keys" not in shown and "cli_audit" not in shown
    assert "Command line: run the server" in shown
