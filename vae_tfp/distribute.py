"""Training on several devices or machines with tf.distribute: the strategy the environment offers, each worker's
role, bounded waits, the workers' agreement, and a launcher of local workers. TensorFlow is imported only when a
strategy is built (the launcher runs without it).

    strategy = make_strategy("multiworker")     # TF_CONFIG names the cluster and this worker; DistributeError if not
    info = worker_info(strategy)                # rank, workers, is_chief, the cluster
    python -m vae_tfp launch --workers 2 -- train --dataset digits --epochs 5 --json

Strategies (`--strategy`):
    default      one device, the fast single-replica step
    mirrored     MirroredStrategy over every local device (one device works: one replica)
    multiworker  MultiWorkerMirroredStrategy over the workers TF_CONFIG names, each with its local devices

TF_CONFIG (JSON, set before the process starts; the same "cluster" on every worker, "task" naming this one):
    {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, "task": {"type": "worker", "index": 0}}
Worker 0 is the chief (or the one "chief" task, when the cluster has a "chief" job): it writes the run directory
(history, checkpoints, metrics) and prints the results; the other workers train alongside and write nothing (the
checkpoint reads each variable's local copy, no collective, so they need no temporary checkpoints either).

Bounded waits:
- start-up: building the strategy waits for every worker; after `startup_timeout` seconds the worker exits with a
  message naming the workers whose address never answered;
- a worker that dies: the others learn it from TensorFlow's coordination service (missed heartbeats, about
  `heartbeat_timeout` seconds, or a connection reset), stop, and say which worker; the chief then saves a checkpoint
  of the last completed step, so `--resume` continues from there;
- a collective that does not complete within `collective_timeout` seconds (a worker alive but stuck) fails with a
  message naming the workers that did not answer.
SIGTERM or SIGINT on any worker stops every worker after the same step (the stop flag travels in the step's
collective), with a checkpoint: TensorFlow's own SIGTERM handler (the preemption notifier) is replaced for that.
"""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STRATEGIES = ("default", "mirrored", "multiworker")
STARTUP_TIMEOUT = 180.0  # seconds for every worker to join (importing TensorFlow on a busy machine takes a while)
COLLECTIVE_TIMEOUT = 600.0  # seconds a collective may wait (a slower worker compiling its step, the chief's eval)
HEARTBEAT_TIMEOUT = 10.0  # seconds of missed heartbeats before a worker counts as dead
JOBS = ("chief", "worker")  # the task types that train (no parameter servers, no evaluator)

EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')


class DistributeError(ValueError):
    """The environment cannot give the strategy asked for (no TF_CONFIG, a malformed one)."""


class WorkersDisagree(ValueError):
    """The workers do not train the same thing: config, data, step or weights differ."""


class WorkerLost(RuntimeError):
    """A worker stopped answering during training; the message names it and says how to continue."""


# --- the cluster --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    """A TF_CONFIG: `jobs` {job: (address, ...)}, and this worker's `task_type` and `task_index`."""

    jobs: dict
    task_type: str
    task_index: int

    @property
    def members(self) -> list[tuple[str, int, str]]:
        """(job, index, address) of every training task in rank order: the chief first, then the workers."""
        return [(job, i, a) for job in JOBS for i, a in enumerate(self.jobs.get(job, ()))]

    @property
    def workers(self) -> int:
        return len(self.members)

    @property
    def rank(self) -> int:
        return [(j, i) for j, i, _ in self.members].index((self.task_type, self.task_index))

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def name(self, rank: int) -> str:
        """'the chief (host:port)' or 'worker 2 (host:port)' (the words used in every message)."""
        job, index, address = self.members[rank]
        if rank == 0:
            return f"the chief ({job} {index}, {address})" if job == "worker" else f"the chief ({address})"
        return f"{job} {index} ({address})"

    def rank_of(self, job: str, index: int) -> int | None:
        for rank, (j, i, _) in enumerate(self.members):
            if (j, i) == (job, index):
                return rank
        return None


def parse_tf_config(text: str) -> Cluster:
    """A Cluster from TF_CONFIG's text; DistributeError naming what is missing or wrong."""
    def bad(what):
        return DistributeError(f"TF_CONFIG {what}. It should look like {EXAMPLE} (the same cluster on every worker, "
                               "the task naming this one)")

    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise bad(f"is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise bad(f"must be a JSON object, got {type(value).__name__}")
    cluster, task = value.get("cluster"), value.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise bad('has no "cluster" (an object {job: [host:port, ...]})')
    jobs = {}
    for job, addresses in cluster.items():
        if job not in JOBS:
            raise bad(f'names the job {job!r}; allowed: {", ".join(JOBS)} (no parameter servers or evaluator)')
        if not isinstance(addresses, list) or not addresses:
            raise bad(f'"cluster"."{job}" must be a non-empty list of "host:port" strings')
        for address in addresses:
            if not isinstance(address, str) or not re.fullmatch(r"[^\s:]+:\d{1,5}", address) \
                    or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
                raise bad(f'"cluster"."{job}" holds {address!r}, not a "host:port" address')
        jobs[job] = tuple(addresses)
    if len(jobs.get("chief", ())) > 1:
        raise bad('has more than one "chief"')
    everyone = [a for addresses in jobs.values() for a in addresses]
    if len(set(everyone)) != len(everyone):
        raise bad("lists an address twice")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise bad('has no "task" ({"type": "worker", "index": i}: which member of the cluster this process is)')
    kind, index = task["type"], task["index"]
    if kind not in jobs:
        raise bad(f'names the task type {kind!r}, which is not a job of its cluster ({", ".join(jobs)})')
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[kind]):
        raise bad(f'has task index {index!r}; the job {kind!r} has {len(jobs[kind])} member(s): 0 to '
                  f"{len(jobs[kind]) - 1}")
    return Cluster(jobs, kind, index)


def cluster_from_environment(environ=None) -> Cluster:
    """The cluster TF_CONFIG describes; DistributeError when it is missing or malformed."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not text or not text.strip():
        raise DistributeError(
            "--strategy multiworker needs the environment variable TF_CONFIG, which is not set: it names every "
            f"worker of the cluster and which one this process is, e.g. TF_CONFIG='{EXAMPLE}'. To try it on this "
            "machine, `python -m vae_tfp launch --workers 2 -- train ...` starts the workers with it; one machine "
            "alone needs no multiworker (use --strategy default or mirrored)")
    return parse_tf_config(text)


# --- strategies ---------------------------------------------------------------------------------------------------
def make_strategy(name: str, *, startup_timeout: float = STARTUP_TIMEOUT,
                  collective_timeout: float = COLLECTIVE_TIMEOUT, heartbeat_timeout: float = HEARTBEAT_TIMEOUT):
    """The strategy `name` on this machine and cluster, or None for "default". Call it before TensorFlow runs any
    op. DistributeError when the environment cannot give it (multiworker: TF_CONFIG missing or malformed)."""
    if name not in STRATEGIES:
        raise DistributeError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}")
    if name == "default":
        return None
    if name == "mirrored":
        from vae_tfp._tf import tf

        return tf.distribute.MirroredStrategy()  # every local device; one device gives one replica
    cluster = cluster_from_environment()
    from vae_tfp._tf import tf

    _configure_coordination(cluster, heartbeat_timeout, collective_timeout)
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=float(collective_timeout))
    watchdog = _start_watchdog(cluster, startup_timeout)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    finally:
        watchdog.stdin.close()
        watchdog.wait(timeout=10)


def _configure_coordination(cluster: Cluster, heartbeat_timeout: float, shutdown_timeout: float) -> None:
    """TensorFlow's coordination service (what MultiWorkerMirroredStrategy would set up) with our bounds: missed
    heartbeats for `heartbeat_timeout` seconds mark a worker dead, and a worker waits at most `shutdown_timeout`
    seconds for the others when it exits."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    job, index, _ = cluster.members[0]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{job}/replica:0/task:{index}",
        heartbeat_timeout_in_ms=int(heartbeat_timeout * 1000), shutdown_barrier_timeout_in_ms=int(shutdown_timeout
                                                                                                  * 1000),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=j, num_tasks=len(a))
                          for j, a in cluster.jobs.items()])


def _answers(address: str, timeout: float = 0.5) -> bool:
    """Does something listen at host:port?"""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _start_watchdog(cluster: Cluster, timeout: float) -> subprocess.Popen:
    """A small process (no TensorFlow) that ends this one, with a message, if the strategy has not been built within
    `timeout` seconds (TensorFlow waits for the cluster in C++ holding the GIL: no thread of ours could run). Closing
    its stdin tells it the cluster formed."""
    tf_config = {"cluster": {j: list(a) for j, a in cluster.jobs.items()},
                 "task": {"type": cluster.task_type, "index": cluster.task_index}}
    code = "from vae_tfp.distribute import watch_startup; watch_startup()"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])]))
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(tf_config), str(timeout), str(os.getpid())],
                            stdin=subprocess.PIPE, env=env)


def watch_startup(argv=None) -> None:
    """The watchdog's body (see `_start_watchdog`): polls the other workers' addresses until its stdin closes; after
    the timeout, prints which never answered and kills the waiting worker (SIGKILL: TensorFlow holds its SIGTERM)."""
    import select

    tf_config, timeout, parent = (argv or sys.argv[1:])[:3]
    cluster, timeout, parent = parse_tf_config(tf_config), float(timeout), int(parent)
    others = [r for r in range(cluster.workers) if r != cluster.rank]
    seen = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([sys.stdin], [], [], 1.0)[0] and not sys.stdin.buffer.read1(1):
            return  # stdin closed: the strategy is built, or the worker is gone
        seen |= {r for r in others if r not in seen and _answers(cluster.members[r][2])}
    missing = [cluster.name(r) for r in others if r not in seen]
    if missing:
        why = (f"{', '.join(missing)} did not answer within {timeout:.0f} s (--startup-timeout; nothing listens at "
               f"{'that address' if len(missing) == 1 else 'those addresses'}): start every worker of TF_CONFIG, or "
               "check the addresses and the network")
    else:
        why = (f"every worker's address answered, but the cluster did not form within {timeout:.0f} s "
               "(--startup-timeout): check that every worker has the same TF_CONFIG cluster and its own task")
    print(f"error (start-up): {cluster.name(cluster.rank)}: {why}", file=sys.stderr, flush=True)
    try:
        os.kill(parent, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass(frozen=True)
class WorkerInfo:
    rank: int  # 0 = the chief
    workers: int  # processes training together
    cluster: Cluster | None  # None for one process

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def name(self, rank: int | None = None) -> str:
        rank = self.rank if rank is None else rank
        return self.cluster.name(rank) if self.cluster else "this process"


def worker_info(strategy) -> WorkerInfo:
    """This process's place among the workers of `strategy` (one worker for anything but a multi-worker strategy)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec or resolver.task_type is None:
        return WorkerInfo(0, 1, None)
    jobs = {job: tuple(addresses) for job, addresses in spec.items() if job in JOBS}
    cluster = Cluster(jobs, resolver.task_type, int(resolver.task_id))
    return WorkerInfo(cluster.rank, cluster.workers, cluster)


def is_default(strategy) -> bool:
    """Is this TensorFlow's default (no-op) strategy, i.e. no strategy at all?"""
    from tensorflow.python.distribute import distribute_lib

    return strategy is None or isinstance(strategy, distribute_lib._DefaultDistributionStrategy)


# --- agreement ----------------------------------------------------------------------------------------------------
FINGERPRINT = ("config", "data", "step", "weights")


def _digest(*arrays_or_text) -> float:
    """48 bits of a SHA-256, as a float64 (exact)."""
    h = hashlib.sha256()
    for item in arrays_or_text:
        h.update(item.encode() if isinstance(item, str) else memoryview(item).cast("B"))
    return float(int.from_bytes(h.digest()[:6], "big"))


def fingerprint(trainer) -> list[float]:
    """What every worker must share before training, as numbers: config, data, step, weights + optimizer state."""
    import numpy as np

    arrays = [np.ascontiguousarray(v.numpy()) for v in [*trainer.model.weights, *trainer.optimizer.variables]]
    return [_digest(trainer.config.to_json()),
            _digest(np.ascontiguousarray(trainer.data.x_train), np.ascontiguousarray(trainer.data.x_test)),
            float(trainer.step), _digest(*arrays)]


def check_agreement(trainer) -> None:
    """Every worker trains the same config on the same data from the same step and weights; else WorkersDisagree,
    on every worker, naming who differs in what. One collective (a [workers, 4] table, SUM)."""
    from vae_tfp._tf import tf

    info, strategy = trainer.cluster, trainer.strategy
    if info.workers == 1:
        return
    local = strategy.num_replicas_in_sync // info.workers
    row = tf.one_hot(info.rank, info.workers, dtype=tf.float64)[:, None] * tf.constant([fingerprint(trainer)],
                                                                                         tf.float64)

    def mine(ctx):  # the first local replica of each worker contributes its row
        return row * float(ctx.replica_id_in_sync_group % local == 0)

    @tf.function
    def gather(values):
        # identity: a value computed on the replica's device (an input as such has no device to reduce to)
        return strategy.run(lambda v: tf.distribute.get_replica_context().all_reduce("SUM", tf.identity(v)),
                            args=(values,))

    try:
        table = strategy.experimental_local_results(
            gather(strategy.experimental_distribute_values_from_function(mine)))[0].numpy()  # [workers, 4]
    except Exception as err:  # noqa: BLE001 - a worker lost before training began
        message = failure_message(err, trainer)
        if message is None:
            raise
        raise WorkerLost(message) from None
    differ = [k for j, k in enumerate(FINGERPRINT) if len(set(table[:, j])) > 1]
    if not differ:
        return
    steps = ", ".join(f"{info.name(r)} at step {int(table[r, 2])}" for r in range(info.workers))
    same = {k: [r for r in range(info.workers) if table[r, FINGERPRINT.index(k)] == table[0, FINGERPRINT.index(k)]]
            for k in differ}
    detail = "; ".join(f"{k} differs from the chief's on "
                       + ", ".join(info.name(r) for r in range(info.workers) if r not in same[k]) for k in differ)
    raise WorkersDisagree(
        f"the workers do not hold the same run ({detail}; {steps}). Every worker must be started with the same "
        "flags and data and, to resume, read the same run directory (shared storage, or an identical copy of the "
        "chief's); refusing to train rather than mixing them")


# --- failures -----------------------------------------------------------------------------------------------------
def cluster_errors() -> tuple:
    from vae_tfp._tf import tf

    e = tf.errors
    return (e.UnavailableError, e.DeadlineExceededError, e.AbortedError, e.CancelledError, e.InternalError,
            e.UnknownError, e.FailedPreconditionError)


_TASK = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")


def failure_message(err, trainer) -> str | None:
    """What to tell a person when `err` (raised by a step, an evaluation or the agreement check of a multi-worker
    trainer) means the cluster failed: which worker stopped answering, where the run stands, how to continue.
    None when it is not such a failure (then the caller re-raises it)."""
    info = trainer.cluster
    if info.workers == 1 or not isinstance(err, cluster_errors()):
        return None
    from vae_tfp._tf import tf

    text = str(err)
    named = {info.cluster.rank_of(job, int(i)) for job, i in _TASK.findall(text)} - {None, info.rank}
    gone = {r for r in range(info.workers) if r != info.rank and not _answers(info.cluster.members[r][2])}
    suspects = sorted(gone or named) or [r for r in range(info.workers) if r != info.rank]  # gone: nothing listens
    who = ", ".join(info.name(r) for r in suspects)
    if isinstance(err, tf.errors.DeadlineExceededError):
        what = (f"{who} did not answer within the collective timeout (--collective-timeout): alive but stuck, or "
                "too slow")
    else:
        what = f"{who} stopped answering (crashed, killed, or cut off from the network)"
    where = (f"The chief keeps step {trainer.step} in the run directory" if info.is_chief
             else "The chief's run directory keeps its last checkpoint")
    return (f"{info.name()}: {what} during step {trainer.step + 1}; training stopped. {where}; to continue, start "
            "every worker again with the same command plus --resume --run-dir <that directory>")


def stop_on_signals(trainer):
    """SIGTERM and SIGINT ask `trainer` to stop (every worker after the same step); a second signal acts as usual.
    Returns a function that restores the previous handlers."""
    previous = {}

    def handler(signum, frame):
        print(f"\n{trainer.cluster.name()}: {signal.Signals(signum).name}: stopping every worker after this step "
              "(again to abort)", file=sys.stderr, flush=True)
        trainer.stop()
        for s, h in previous.items():
            signal.signal(s, h)

    for s in (signal.SIGTERM, signal.SIGINT):
        previous[s] = signal.signal(s, handler)

    def restore():
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


# --- a launcher of local workers ----------------------------------------------------------------------------------
def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n ports free on `host` right now (held together while chosen, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def local_cluster(workers: int, host: str = "127.0.0.1") -> list[dict]:
    """The TF_CONFIG of each of `workers` local workers, worker 0 (the chief) first."""
    addresses = [f"{host}:{p}" for p in free_ports(workers, host)]
    return [{"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}} for i in range(workers)]


def launch(workers: int, argv: list[str], *, host: str = "127.0.0.1", grace: float = 60.0) -> int:
    """Run `python -m vae_tfp <argv> --strategy multiworker` as `workers` processes on `host`, each with its
    TF_CONFIG and a share of the CPU threads. The chief's output passes through (its progress bar on stderr, its
    --json as the last line of stdout); the others train quietly into log files, whose last lines are printed if
    they fail. A worker that exits leaves the others `grace` seconds (plus TensorFlow's own failure detection) before
    they are killed. Returns the chief's exit status (1 if it succeeded but another worker failed)."""
    if not argv or argv[0] != "train":
        raise ValueError(f"launch runs the train command: `launch --workers N -- train [flags]`, got {argv[:1]}")
    for flag in ("--strategy",):
        if flag in argv or any(a.startswith(flag + "=") for a in argv):
            raise ValueError(f"launch sets {flag} multiworker itself; leave it out of the train flags")
    configs = local_cluster(workers, host)
    threads = max(1, (os.cpu_count() or 1) // workers)
    root = str(Path(__file__).resolve().parents[1])
    logs = Path(tempfile.mkdtemp(prefix="vae-tfp-workers-"))
    procs = []
    for rank, tf_config in enumerate(configs):
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config),
                   PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))
        env.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
        env.setdefault("TF_NUM_INTEROP_THREADS", "2")
        cmd = [sys.executable, "-m", "vae_tfp", *argv, "--strategy", "multiworker"]
        if rank == 0:
            procs.append(subprocess.Popen(cmd, env=env))
        else:
            log = open(logs / f"worker-{rank}.log", "w")
            procs.append(subprocess.Popen([*cmd, "--quiet"], env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()
    print(f"launch: {workers} workers on {host} ({', '.join(c['cluster']['worker'][i] for i, c in enumerate(configs))}"
          f"); worker 0 is the chief; the others log to {logs}", file=sys.stderr, flush=True)
    first_exit = None
    try:
        while any(p.poll() is None for p in procs):
            if first_exit is None and any(p.poll() is not None for p in procs):
                first_exit = time.monotonic()
            if first_exit is not None and time.monotonic() - first_exit > grace + HEARTBEAT_TIMEOUT:
                for rank, p in enumerate(procs):
                    if p.poll() is None:
                        print(f"launch: worker {rank} still runs {grace:.0f} s after another exited; killing it",
                              file=sys.stderr, flush=True)
                        p.kill()
            time.sleep(0.2)
    except KeyboardInterrupt:  # the workers got the signal too and stop after their current step
        deadline = time.monotonic() + grace
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        for p in procs:
            if p.poll() is None:
                p.kill()
    codes = [p.wait() for p in procs]
    codes = [128 - c if c < 0 else c for c in codes]  # killed by signal s: 128 + s, as a shell reports it
    for rank, code in enumerate(codes[1:], start=1):
        if code != 0:
            tail = (logs / f"worker-{rank}.log").read_text(errors="replace").splitlines()[-15:]
            print(f"launch: worker {rank} exited with status {code}; the end of its log:\n  " + "\n  ".join(tail),
                  file=sys.stderr, flush=True)
    if codes[0] == 0 and all(c == 0 for c in codes):
        for f in logs.iterdir():
            f.unlink()
        logs.rmdir()
    return codes[0] if codes[0] != 0 else (1 if any(codes) else 0)
