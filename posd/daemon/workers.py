"""Small named pools of daemon threads that run the API's blocking work.

Not `concurrent.futures.ThreadPoolExecutor`: its threads are joined at interpreter exit, so a
flush waiting out its 120 s would hold `posd run` past SIGTERM. These threads are daemons:
the daemon's stop decides how long work in hand may take (`ApiServer.stop`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class WorkerPool:
    def __init__(self, name: str, threads: int) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, job))
        return future

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except Exception as error:  # noqa: BLE001 (handed to whoever awaits the future)
                future.set_exception(error)

    def close(self) -> None:
        """No new work; each thread ends once the job in its hands returns."""
        for _ in self._threads:
            self._jobs.put(None)
