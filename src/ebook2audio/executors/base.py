"""What an executor is: something that runs every batch of a plan through ``synthesize_batch``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ..model import Batch, BatchResult, Plan

OnBatch = Callable[[BatchResult], None]


class Executor(Protocol):
    def run(self, plan: Plan, batches: Sequence[Batch], on_batch: OnBatch) -> None:
        """Synthesise every chunk of ``batches`` into storage; call ``on_batch`` as each one finishes."""
        ...
