"""Serving configuration from the environment (prefix REINTEGRA_); MLflow reads its own variables."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from models import DEFAULT_MODEL_NAME
from models.names import registry_refusal
from serving.keys import ROLES

DEFAULT_DATABASE = "sqlite:///data/reintegra.db"
DEFAULT_FOLDER = Path(make_url(DEFAULT_DATABASE).database).parent
STORE_URLS = "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
STORE_DRIVERS = {("sqlite", "pysqlite"), ("postgresql", "psycopg")}


def _store_url(url: str) -> str:
    """Refuse at start-up a store the server could not open, or one that would not keep the trail
    (in-memory SQLite): otherwise the first connection fails with a traceback from every worker."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise ValueError(f"not a database URL; {STORE_URLS}") from exc
    try:  # the default driver is found by loading the dialect, which fails for a kind it lacks
        driver = (parsed.get_backend_name(), parsed.get_driver_name())
    except NoSuchModuleError:  # postgres://, as hosting services write it, or http://
        driver = None
    if driver not in STORE_DRIVERS:
        raise ValueError(f"{parsed.drivername} is not supported; {STORE_URLS}")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError(f"an in-memory database would lose the audit trail; {STORE_URLS}")
    if parsed.get_backend_name() == "sqlite":
        _existing_folder(Path(parsed.database))
    return url


def _existing_folder(database: Path) -> None:
    """A misspelt folder (sqlite:///dta/...) was made without a word, and the trail kept where nobody
    looks for it; only the default store's folder is made when missing."""
    folder = database.parent
    if not folder.exists() and folder.resolve() != DEFAULT_FOLDER.resolve():
        raise ValueError(
            f"folder {folder.resolve()} does not exist; create it or correct the URL "
            f"(only {DEFAULT_FOLDER}/, the default store's, is made when missing)"
        )


StoreUrl = Annotated[str, AfterValidator(_store_url)]


# Segments of letters, digits and - _ ~ . (not first): no '//' (which would make every address the
# server gives out point at another host), no dot segments, nothing that needs quoting in a header.
ROOT_PATH = re.compile(r"(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*")


def _root_path(path: str) -> str:
    """The prefix a proxy serves the app under and strips (uvicorn's --root-path); the server adds
    it back to the addresses it gives out, so it must join them as one leading path."""
    if not ROOT_PATH.fullmatch(path):
        raise ValueError(
            "a path such as /reintegra or /apps/reintegra: segments of letters, digits, - _ ~ and . "
            "(not first), each after one /, none trailing; empty for none"
        )
    return path


def _model_name(name: str) -> str:
    """No model can be registered under such a name: the server would only find no champion, and name a
    training command that refuses the name as the way to make one."""
    problem = registry_refusal(name)
    if problem is not None:
        raise ValueError(f"a model name that {problem}: no model can be registered under it")
    return name


# The aliases MLflow can set (mlflow.utils.validation): 'latest' and v<number> are reserved.
MODEL_ALIAS = re.compile(r"[\w-]{1,255}")
RESERVED_ALIAS = re.compile(r"latest|[vV]\d+", re.IGNORECASE)


def _model_alias(alias: str) -> str:
    """No model can be promoted to another alias: the server would only find no champion, and send the
    operator to train and promote one."""
    if not MODEL_ALIAS.fullmatch(alias) or RESERVED_ALIAS.fullmatch(alias):
        raise ValueError(
            "an alias MLflow can set: letters, digits, _ and - (at most 255), not 'latest' or v<number>"
        )
    return alias


MAX_WORKERS_PER_CPU = 4


def _workers(count: int) -> int:
    """A typo (1000 for 10) would start workers until the host runs out of memory, and the kernel's
    out-of-memory killer then ends processes of every kind."""
    most = MAX_WORKERS_PER_CPU * (os.cpu_count() or 1)
    if count > most:
        raise ValueError(
            f"at most {most} ({MAX_WORKERS_PER_CPU} per CPU of this host): each worker loads its own copy of "
            "the model (about 340 MB) and opens its own connections to each store"
        )
    return count


MIN_SECRET_LENGTH = 32


def _session_secret(secret: str) -> str:
    """A short secret could be guessed offline from one session cookie, and a guessed secret signs a
    session for any reviewer key id."""
    if secret and len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"at least {MIN_SECRET_LENGTH} characters (this one has {len(secret)}), such as the output of "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; empty for a random one per start"
        )
    return secret


class Settings(BaseSettings):
    # NaN compares false with every bound, so it was refused as "less than or equal to 86400".
    model_config = SettingsConfigDict(env_prefix="REINTEGRA_", extra="ignore", allow_inf_nan=False)

    host: str = "127.0.0.1"
    root_path: Annotated[str, AfterValidator(_root_path)] = ""
    port: int = Field(default=8000, ge=1, le=65535)
    workers: Annotated[int, AfterValidator(_workers)] = Field(default=1, ge=1)
    model_name: Annotated[str, AfterValidator(_model_name)] = DEFAULT_MODEL_NAME
    model_alias: Annotated[str, AfterValidator(_model_alias)] = "champion"
    audit_url: StoreUrl = DEFAULT_DATABASE
    keys_url: StoreUrl = DEFAULT_DATABASE
    audit_key_file: Path = Field(
        default=Path("data/audit.key"),
        description="the key that signs audit rows; keep it off the store's host",
    )
    poll_seconds: float = Field(default=30.0, ge=0, le=86_400, description="0 turns alias polling off")
    db_pool_size: int = Field(default=5, ge=1, description="connections each worker keeps per store")
    db_max_overflow: int = Field(default=10, ge=0, description="extra connections a worker opens when busy")
    max_batch: int = Field(default=1000, ge=1)
    max_in_flight: int = Field(
        default=64, ge=1, description="API requests a worker answers at once; more get a 503 at once"
    )
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="largest request body")
    session_secret: Annotated[str, AfterValidator(_session_secret)] = Field(
        default="", description="signs reviewer page sessions"
    )
    session_hours: float = Field(default=8.0, gt=0, le=24 * 366)
    session_idle_minutes: float = Field(
        default=30.0, gt=0, le=24 * 366 * 60, description="a page session unused this long ends"
    )

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"


# REINTEGRA_ variables that are no setting: the development keys that dev-setup writes for a shell
# to source, and the test suite's own.
NOT_SETTINGS = re.compile(rf"({'|'.join(role.upper() for role in ROLES)})_KEY|TEST_\w*")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A line for each REINTEGRA_ variable that sets nothing: a misspelt REINTEGRA_AUDIT_URL would
    otherwise send the audit trail to the default store without a word."""
    prefix = Settings.model_config["env_prefix"].upper()
    known = [name.upper() for name in Settings.model_fields]
    lines = []
    for variable in sorted(environ):
        name = variable.upper().removeprefix(prefix)
        if name == variable.upper() or name in known or NOT_SETTINGS.fullmatch(name):
            continue
        # Matched without the prefix, which every setting shares.
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {prefix}{close[0]}?" if close else f"settings are {prefix}{{{','.join(known)}}}"
        lines.append(f"{variable} is not a setting and is ignored; {hint}")
    return lines


def store_warnings(settings: Settings) -> list[str]:
    """A line when the audit store is set but the keys store left at its default: keys made on one host
    would then be unknown to the others sharing the audit store, with nothing said."""
    if "keys_url" in settings.model_fields_set or "audit_url" not in settings.model_fields_set:
        return []
    if settings.audit_url == settings.keys_url:  # the default written out: one store, as asked
        return []
    return [
        f"REINTEGRA_KEYS_URL is not set, so API keys and page sessions are kept in {DEFAULT_DATABASE} "
        "(relative to the working folder), not in the audit store of REINTEGRA_AUDIT_URL; set "
        "REINTEGRA_KEYS_URL, to the same URL to keep them there"
    ]
