"""Importing this package registers every RPC method with ``registry``."""

from . import daemon  # noqa: F401
from . import agents  # noqa: F401
from . import dms  # noqa: F401
from . import events  # noqa: F401
from . import jobs  # noqa: F401
from . import messages  # noqa: F401
from . import projects  # noqa: F401
from . import providers  # noqa: F401
from . import users  # noqa: F401
from ..registry import registry

__all__ = ["registry"]
