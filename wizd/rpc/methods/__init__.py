"""Importing this package registers every RPC method with ``registry``."""

from . import daemon  # noqa: F401
from ..registry import registry

__all__ = ["registry"]
