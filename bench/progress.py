"""A small progress bar on stderr: steps weighted by their expected seconds.

On a terminal it redraws in place twice a second; otherwise (make's output
piped to a file, pytest) it prints one line per step.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    def __init__(
        self, total_seconds: float, *, enabled: bool = True, stream: TextIO | None = None
    ) -> None:
        self.total = max(total_seconds, 1e-9)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done = 0.0
        self.label = ""
        self.weight = 0.0
        self.step_started = time.monotonic()
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if enabled and self.tty:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def _fraction(self) -> float:
        in_step = min(time.monotonic() - self.step_started, self.weight)
        return min((self.done + in_step) / self.total, 1.0)

    def _render(self) -> str:
        frac = self._fraction()
        width = 30
        filled = int(frac * width)
        elapsed = time.monotonic() - self.started
        return (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {frac * 100:3.0f}% "
            f"{int(elapsed) // 60}:{int(elapsed) % 60:02d}  {self.label[:60]:<60}"
        )

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                self.stream.write(self._render())
                self.stream.flush()

    @contextmanager
    def step(self, label: str, weight: float) -> Iterator[None]:
        """A step expected to take ``weight`` seconds."""
        with self._lock:
            self.label, self.weight, self.step_started = label, weight, time.monotonic()
            if self.enabled:
                if self.tty:
                    self.stream.write(self._render())
                else:
                    self.stream.write(f"[{self._fraction() * 100:3.0f}%] {label}\n")
                self.stream.flush()
        try:
            yield
        finally:
            with self._lock:
                self.done += weight

    def note(self, message: str) -> None:
        """A line of its own, above the bar."""
        if not self.enabled:
            return
        with self._lock:
            self.stream.write(("\r" + " " * 110 + "\r" if self.tty else "") + message + "\n")
            self.stream.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self.enabled and self.tty:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()
