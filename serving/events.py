"""Administrative events of the audit trail: what each kind records, and who an operator is."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from typing import Literal

from serving.keys import ApiKey

EventKind = Literal["key_created", "key_revoked", "model_served", "key_rotated"]
EVENT_KINDS: tuple[EventKind, ...] = ("key_created", "key_revoked", "model_served", "key_rotated")


@dataclass(frozen=True)
class Event:
    """One event as it is signed: `actor` did `kind` to `subject`; `detail` says with what."""

    kind: EventKind
    actor: str
    subject: str
    detail: dict


def key_event(kind: EventKind, key: ApiKey, command: str) -> Event:
    """A key created or revoked by `command`, run by the operator of this process."""
    return Event(kind, operator(), key.id, {"command": command, "role": key.role, "name": key.name})


def model_event(name: str, version: str, run_id: str, previous: str | None, actor: str) -> Event:
    """A version put into service by one server process: it serves there until that process's next
    model_served event or its end, which is what says which version served when."""
    detail = {
        "model_name": name,
        "version": version,
        "run_id": run_id,
        "previous_version": previous,
        "process": f"{socket.gethostname()}:{os.getpid()}",
    }
    return Event("model_served", actor, f"models:/{name}/{version}", detail)


def rotation_event(old: str, new: str, command: str) -> Event:
    """The audit key `old` handing the chain to `new`: signed by the old key, it is where verification
    changes keys, and its detail names the new one."""
    return Event(
        "key_rotated",
        operator(),
        f"audit key {old} -> {new}",
        {"command": command, "old_key": old, "new_key": new},
    )


def operator() -> str:
    """The account and host a command runs as: who created or revoked a key, as far as the host knows."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"
