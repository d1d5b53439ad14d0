"""A worker process of the local backend: `python -m vae_tfp.jobs.worker --events-fd N [--threads T] [--nice K]`.

It imports TensorFlow once, then trains one job at a time for as long as it lives. It talks to its parent in JSON
lines, never pickles:

    stdin (from the parent)   {"op": "run", "job": id, "spec": JobSpec.to_dict(), "submitted": t}
                              {"op": "stop", "job": id}
    fd N  (to the parent)     {"event": "hello", "pid"}  {"event": "ready"}  {"event": "started", "job"}
                              {"event": "run_dir", "job", "path"}  {"event": "end", "job", "status": {...}}

A job's progress is not sent: it goes into the run directory's job.json (see `vae_tfp.jobs.execute`). When stdin
closes (the parent exited, or closed the pool) the current job is stopped (its model saved) and the worker exits.
After each job it drops the job's model and Keras' state and hands freed memory back to the system. `--nice` lowers
its CPU priority, so that the process serving pages stays quick while workers train.
"""

import argparse
import gc
import json
import os
import queue
import sys
import threading


def _send(stream, lock, **event) -> None:
    """One event to the backend. The backend gone (its process ended: the pipe is broken) ends this worker quietly;
    the job's state is in its run directory (job.json) either way."""
    try:
        with lock:
            stream.write(json.dumps(event) + "\n")
            stream.flush()
    except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
        os._exit(0)


def _release_memory() -> None:
    """After a job: Keras' global state (safe here: one job at a time, no other thread builds models), the garbage
    of the job's graphs, and free heap pages back to the system (glibc's malloc_trim)."""
    import keras

    keras.backend.clear_session()
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="a job worker of vae_tfp.jobs.LocalBackend")
    parser.add_argument("--events-fd", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: TensorFlow's default)")
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--recycle-after", type=int, default=0, help="exit after this many jobs (0: never)")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    events = os.fdopen(args.events_fd, "w", buffering=1)
    lock = threading.Lock()
    _send(events, lock, event="hello", pid=os.getpid())

    from vae_tfp._tf import tf  # once per worker, not per job

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import vae_tfp.training  # noqa: F401 - the trainer's modules, once
    from vae_tfp.jobs.backend import JobSpec
    from vae_tfp.jobs.execute import StopSignal, execute

    _send(events, lock, event="ready")
    tasks = queue.Queue()
    current = {"job": None, "stop": None}
    stopped = set()  # stop requests for jobs not started yet
    guard = threading.Lock()

    def control():
        for line in sys.stdin:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if msg.get("op") == "run":
                tasks.put(msg)
            elif msg.get("op") == "stop":
                with guard:
                    if current["job"] == msg.get("job"):
                        current["stop"].request()
                    else:
                        stopped.add(msg.get("job"))
        with guard:  # the parent is gone: stop what runs, then leave
            if current["stop"] is not None:
                current["stop"].request()
        tasks.put(None)

    threading.Thread(target=control, name="vae-tfp-worker-control", daemon=True).start()
    done = 0
    while True:
        msg = tasks.get()
        if msg is None:
            break
        job_id = msg["job"]
        stop = StopSignal()
        with guard:
            current["job"], current["stop"] = job_id, stop
            if job_id in stopped:
                stopped.discard(job_id)
                stop.request()
        _send(events, lock, event="started", job=job_id)
        try:
            spec = JobSpec.from_dict(msg["spec"])
        except (ValueError, TypeError, KeyError) as err:
            _send(events, lock, event="end", job=job_id,
                  status={"job_id": job_id, "state": "failed", "message": f"a malformed job: {err}"})
            continue
        status = execute(job_id, spec, stop=stop, submitted=msg.get("submitted"),
                         on_run_dir=lambda path, j=job_id: _send(events, lock, event="run_dir", job=j, path=path))
        with guard:
            current["job"], current["stop"] = None, None
        _send(events, lock, event="end", job=job_id, status=status.to_dict())
        del status
        _release_memory()
        done += 1
        if args.recycle_after and done >= args.recycle_after:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
