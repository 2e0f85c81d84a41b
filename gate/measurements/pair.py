"""Holding the base and the candidate for a step that takes turns between them (bias, perplexity).

Each model is loaded on first use. Both stay in memory while a second copy
fits (`second_copy_fits`); otherwise the one held is freed before the other
loads, and `before_candidate` runs once first, with the base still loaded,
so the base can do at once all the work the candidate may need of it rather
than be loaded again for every chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from gate.runtime.base import ModelHandle

ROLES = ("base", "candidate")


class HeldPair:
    def __init__(self, load: Callable[[str], ModelHandle], before_candidate: Callable[[], None] = lambda: None):
        self._load, self._before_candidate = load, before_candidate
        self._handles: dict[str, ModelHandle] = {}
        self.swapped = False  # the two did not fit together: the base was freed for the candidate

    def get(self, role: str) -> ModelHandle:
        handle = self._handles.get(role)
        if handle is None:
            handle = self._handles[role] = self._make_room_and_load(role)
        return handle

    def _make_room_and_load(self, role: str) -> ModelHandle:
        from gate.measurements.latency_step import second_copy_fits

        other = ROLES[1 - ROLES.index(role)]
        held = self._handles.get(other)
        if held is not None and not second_copy_fits(held):
            if role == "candidate" and not self.swapped:
                self.swapped = True
                self._before_candidate()
            self._handles.pop(other).close()
        return self._load(role)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
