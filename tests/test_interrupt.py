"""SIGTERM as an interrupt: raised as Terminated inside the block, the previous handler back afterwards."""
import signal
import threading

import pytest

from diffviz.interrupt import Terminated, sigterm_interrupts


def test_sigterm_raises_terminated_inside_and_the_default_is_back_after():
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with pytest.raises(Terminated) as info:
        with sigterm_interrupts():
            # a missing handler would end the test process here: check it is there before signalling
            assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
            signal.raise_signal(signal.SIGTERM)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signal.SIGTERM == 15
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_handler_someone_else_installed_is_left_alone():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with sigterm_interrupts():
            signal.raise_signal(signal.SIGTERM)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_nothing_is_installed():
    inside = []

    def run():
        with sigterm_interrupts():
            inside.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert inside == [signal.SIG_DFL]
