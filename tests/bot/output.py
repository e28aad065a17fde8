"""A child process's output, read as it comes, for tests that wait for a line instead of sleeping."""
from __future__ import annotations

import queue
import threading
import time


class Output:
    """Every line the stream gives, kept; `wait_for` blocks until one contains a text (or it ends)."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._new: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._new.put(line.rstrip("\n"))
        self._new.put(None)  # the stream ended: the process closed it or exited

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The first line (from the start) holding `text`; fails when the stream ends or time runs out."""
        found = next((line for line in self.lines if text in line), None)
        deadline = time.monotonic() + timeout
        while found is None:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {timeout} s; so far:\n" + self.text) from None
            if line is None:
                self._new.put(None)
                raise AssertionError(f"the output ended without {text!r}:\n" + self.text)
            self.lines.append(line)
            if text in line:
                found = line
        return found

    def rest(self, timeout: float = 60) -> str:
        """Everything, once the stream has ended."""
        deadline = time.monotonic() + timeout
        while (line := self._new.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            self.lines.append(line)
        self._new.put(None)
        return self.text

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
