"""Sessions that end trigger one delayed full garbage collection (the server's per-run collection is off)."""

import gc
import time
import weakref

from dashboard import state


class _Cycle:
    def __init__(self):
        self.me = self  # a reference cycle: only the cycle collector frees it


def test_collect_soon_frees_reference_cycles_off_the_script_thread():
    gc.disable()  # no automatic collection may free the cycle before the timer does
    try:
        ref = weakref.ref(_Cycle())
        assert ref() is not None
        state._collect_soon(delay=0.05)
        state._collect_soon(delay=0.05)  # sessions closing together share one collection
        assert len(state._collect_timer) == 1
        deadline = time.monotonic() + 30
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ref() is None
        assert state._collect_timer == []
    finally:
        gc.enable()
