"""Which engine a ``db`` setting names, and how it is shown; imports no driver.

A path is a SQLite file; a ``postgresql://`` (or ``postgres://``) URL a
PostgreSQL database (libpq's URL: ``postgresql://user:password@host/name``,
or ``postgresql:///name?host=/run/postgresql`` for a Unix socket).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("postgresql://", "postgres://")
_ANY_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(db: object) -> bool:
    """Whether a ``db`` setting is a URL (else a SQLite file's path): any
    ``scheme://``, so that a URL wizd cannot use (``postgresql+psycopg://``,
    ``mysql://``) is refused by ``unknown_scheme`` instead of becoming a file."""
    return isinstance(db, str) and _ANY_SCHEME.match(db) is not None


def unknown_scheme(url: str) -> str | None:
    """Why wizd cannot use ``url`` (its scheme is not PostgreSQL's), or None."""
    if url.startswith(SCHEMES):
        return None
    scheme = url.partition("://")[0]
    return (f"{scheme}:// is not a database wizd knows: a path names a SQLite file, "
            "postgresql://user@host/name a PostgreSQL database")


def shown(url: str) -> str:
    """``url`` fit for logs and RPC results: a password replaced by ``***``
    (in the user part, or any parameter whose name ends in ``password``, as
    libpq's ``password`` and ``sslpassword``)."""
    parts = urlsplit(url)
    secret_query = any(item.partition("=")[0].lower().endswith("password")
                       for item in parts.query.split("&"))
    if parts.password is None and not secret_query:
        return url  # as given (urlunsplit would drop the // of an empty host)
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}")
    if secret_query:
        query = "&".join(
            f"{item.partition('=')[0]}=***"
            if item.partition("=")[0].lower().endswith("password") else item
            for item in parts.query.split("&"))
        parts = parts._replace(query=query)
    shown_url = urlunsplit(parts)
    return shown_url if parts.netloc else shown_url.replace(":", "://", 1)
