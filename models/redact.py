"""Passwords kept out of what is printed: a store or MLflow URL may carry one, and so may an error
message that quotes the URL (MLflow's, a driver's), whether or not the URL parses. Here, below training
and serving, as both print such messages."""

import re

# scheme://user:password@ — the password is whatever stands between the first ':' after the user and '@'.
_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]*@")


def hide_passwords(text: str) -> str:
    """`text` with the password of every URL in it shown as ***."""
    return _PASSWORD.sub(r"\1***@", text)
