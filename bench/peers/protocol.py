"""The line protocol between the coordinator and a worker process: one JSON object per line each way.

    coordinator -> worker:  {"cmd": "<method>", "args": {...}}
    worker -> coordinator:  {"ok": true, "result": {...}}   or   {"ok": false, "error": "<text>", "trace": "<text>"}

`serve(target)` answers requests by calling `target.<method>(**args)` until {"cmd": "exit"} or end of input. The
worker's own stdout (fd 1) is pointed at stderr first, so prints and logs of the frameworks never reach the
protocol stream; only `serve` writes to it.
"""

import json
import os
import sys
import traceback


def protocol_stream():
    """The real stdout as a text stream for protocol lines; fd 1 (what libraries print to) goes to stderr after."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def serve(target, stream_in=None, stream_out=None) -> None:
    """Answer requests on stream_in (default stdin) with `target`'s methods; replies on stream_out."""
    stream_in = stream_in or sys.stdin
    stream_out = stream_out or protocol_stream()
    for line in stream_in:
        if not line.strip():
            continue
        request = json.loads(line)
        cmd = request.get("cmd")
        if cmd == "exit":
            reply = {"ok": True, "result": {}}
            stream_out.write(json.dumps(reply) + "\n")
            stream_out.flush()
            return
        method = getattr(target, str(cmd), None) if not str(cmd).startswith("_") else None
        try:
            if method is None:
                raise ValueError(f"unknown command {cmd!r}")
            reply = {"ok": True, "result": method(**request.get("args", {}))}
        except Exception as err:  # noqa: BLE001 - every failure goes back to the coordinator as text
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()}
        stream_out.write(json.dumps(reply) + "\n")
        stream_out.flush()
