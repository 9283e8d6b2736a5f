"""Which engine a ``db`` setting names, and how it is shown; imports no driver.

A path is a SQLite file; a ``postgresql://`` (or ``postgres://``) URL a
PostgreSQL database (libpq's URL: ``postgresql://user:password@host/name``,
or ``postgresql:///name?host=/run/postgresql`` for a Unix socket).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("postgresql://", "postgres://")


def is_url(db: object) -> bool:
    """Whether a ``db`` setting names a PostgreSQL database (else a SQLite file)."""
    return isinstance(db, str) and db.startswith(SCHEMES)


def shown(url: str) -> str:
    """``url`` fit for logs and RPC results: a password replaced by ``***``
    (in the user part, or a ``password=`` parameter)."""
    parts = urlsplit(url)
    if parts.password is None and "password=" not in parts.query:
        return url  # as given (urlunsplit would drop the // of an empty host)
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}")
    if "password=" in parts.query:
        query = "&".join("password=***" if item.startswith("password=") else item
                         for item in parts.query.split("&"))
        parts = parts._replace(query=query)
    shown_url = urlunsplit(parts)
    return shown_url if parts.netloc else shown_url.replace(":", "://", 1)
