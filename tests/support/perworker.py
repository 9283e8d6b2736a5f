"""One helper process per test worker (a fork server), started on first use
and again if it has died; shared by the tests of that worker as the Python
interpreter is."""

from __future__ import annotations

import subprocess
import threading
from typing import Any, ClassVar, TypeVar

S = TypeVar("S", bound="PerWorker")


class PerWorker:
    """Base of a class whose instance owns the worker's helper process ``proc``.

    Each subclass gets its own lock and instance (``__init_subclass__``).
    """

    proc: subprocess.Popen[Any]
    _lock: ClassVar[threading.Lock]
    _instance: ClassVar[Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._lock = threading.Lock()
        cls._instance = None

    @classmethod
    def get(cls: type[S]) -> S:
        with cls._lock:
            if cls._instance is None or cls._instance.proc.poll() is not None:
                cls._instance = cls()
            instance: S = cls._instance
            return instance
