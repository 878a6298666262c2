"""SIGTERM as an interrupt: inside `sigterm_interrupts()` a SIGTERM raises `Terminated` in the main thread.

`Terminated` is a KeyboardInterrupt, so code that saves its work on Ctrl-C (a `finally`, an `except
KeyboardInterrupt`) saves it on `kill` too. Only the default SIGTERM action is replaced, and only in the main
thread (where Python runs signal handlers); a second SIGTERM kills the process at once, as a supervisor expects.
"""
from __future__ import annotations

import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM inside `sigterm_interrupts()`; `signum` gives the exit status 128 + 15 = 143."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the next SIGTERM is not delayed by the cleanup
    raise Terminated("terminated by SIGTERM")


@contextlib.contextmanager
def sigterm_interrupts():
    """Within the block SIGTERM raises `Terminated`; the previous handler is back afterwards. A no-op outside
    the main thread or where SIGTERM already has a handler other than the default."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
