"""Resuming a connection's reader (``recv()``, ``async for``) without a second
loop iteration.

``Future.set_result`` runs the waiting task through ``loop.call_soon``: on the
loop's next iteration, one more pass through the selector per message. The
engine's dispatch (a reader callback, where no task runs) instead completes
the future and calls its callbacks itself, so the task resumes in the same
iteration, as picows calls its listener from its read callback. The future is
an ordinary asyncio future: timeouts and cancellation work as usual.
"""
from __future__ import annotations

import asyncio


def resume_now(fut: "asyncio.Future[None]") -> None:
    """Complete ``fut`` and run its callbacks at once. Call only where no
    task is running (a loop callback)."""
    if fut.done():
        return
    # asyncio's futures (C and Python) keep their callbacks here; without it
    # (another loop's future type), the usual scheduling.
    callbacks = getattr(fut, "_callbacks", None)
    if not callbacks:
        fut.set_result(None)
        return
    for fn, _ in callbacks:
        fut.remove_done_callback(fn)
    fut.set_result(None)
    for fn, context in callbacks:
        context.run(fn, fut)
