"""Several machines: between-graph replicated training on TensorFlow's distributed runtime.

A cluster is ``ds_ps_hosts`` parameter servers and ``ds_worker_hosts`` workers; every process
gets the same two lists plus its own ``ds_job_name`` and ``ds_task_index``, and runs a gRPC
``tf.train.Server``. The model's variables (with Adam's slots, the training state and the
global step) live on the parameter servers (``tf.train.replica_device_setter``). Each worker
builds its own graph with towers over its own devices, feeds its own shard of the training
set (:func:`shard_indices`) and averages its towers' gradients; ``SyncReplicasOptimizer``
then averages the gradients of ``ds_replicas_to_agg`` workers into each update. Worker 0, the
chief, initialises or restores the model and writes checkpoints, logs, reports and exports.

What this module adds around TensorFlow's pieces:

- a control channel of shared queues on the parameter servers (:class:`Control`): the chief
  tells each parameter server that the run is over, and the other workers tell the chief that
  they have finished;
- liveness (:class:`Monitor`): every process probes the gRPC servers it depends on. A peer
  that answered once and then stays silent for ``ds_worker_timeout`` seconds ends the run
  with a message naming it, and the synchronisation queue is closed so that no step waits
  for it forever. Peers that never answered are waited for: processes start in any order.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from math import ceil

import tensorflow.compat.v1 as tf
from tensorflow.python.client.session import SessionInterface

from util.training.checkpoints import STATE_SCOPE

PS, WORKER = "ps", "worker"
CONTROL_TIMEOUT_MS = 5000  # a control operation on a parameter server that takes longer failed
# After a failure the process has this long to end by itself; then SIGALRM ends it (an
# operation stuck in the runtime cannot be interrupted from Python).
EXIT_GRACE_SECONDS = 30
TOKEN_QUEUE = "sync_token_q"  # SyncReplicasOptimizer's shared queue of step tokens


class ClusterError(RuntimeError):
    """The cluster cannot go on: a peer stopped responding, or the run ended under us."""


class RunEnded(ClusterError):
    """The step-token queue was closed: the chief ended the run (or another worker gave up)."""


def first_line(error: BaseException) -> str:
    text = (getattr(error, "message", None) or str(error) or type(error).__name__).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class ClusterRole:
    """The cluster as the ``ds_*`` variables describe it, and this process's place in it."""

    ps_hosts: tuple[str, ...]
    worker_hosts: tuple[str, ...]
    job_name: str
    task_index: int
    replicas_to_aggregate: int
    worker_timeout: float

    @classmethod
    def from_config(cls, config) -> ClusterRole | None:
        """The role a Config describes; None without ``ds_ps_hosts`` (one process)."""
        if not config.ps_hosts:
            return None
        return cls(
            tuple(config.ps_hosts),
            tuple(config.worker_hosts),
            config.job_name,
            config.task_index,
            config.replicas_to_agg or len(config.worker_hosts),
            float(config.worker_timeout),
        )

    @property
    def num_workers(self) -> int:
        return len(self.worker_hosts)

    @property
    def is_ps(self) -> bool:
        return self.job_name == PS

    @property
    def is_chief(self) -> bool:
        return self.job_name == WORKER and self.task_index == 0

    @property
    def device(self) -> str:
        return f"/job:{self.job_name}/task:{self.task_index}"

    def hosts(self, job: str) -> tuple[str, ...]:
        return self.ps_hosts if job == PS else self.worker_hosts

    def name(self, job: str | None = None, index: int | None = None) -> str:
        """``worker 1 (host:port)``, ``parameter server 0 (host:port)``; this process's by
        default."""
        job = self.job_name if job is None else job
        index = self.task_index if index is None else index
        title = "parameter server" if job == PS else "worker"
        return f"{title} {index} ({self.hosts(job)[index]})"

    def spec(self) -> tf.train.ClusterSpec:
        return tf.train.ClusterSpec({PS: list(self.ps_hosts), WORKER: list(self.worker_hosts)})

    def peers(self) -> dict[str, str]:
        """The processes this one cannot train without (name -> address): for the chief every
        other process, for another worker the chief and the parameter servers, for a parameter
        server the chief."""
        chief = {self.name(WORKER, 0): self.worker_hosts[0]}
        if self.is_ps:
            return chief
        servers = {self.name(PS, i): host for i, host in enumerate(self.ps_hosts)}
        if not self.is_chief:
            return {**chief, **servers}
        others = {self.name(WORKER, i): self.worker_hosts[i] for i in range(1, self.num_workers)}
        return {**others, **servers}


def shard_indices(count: int, shard: int, shards: int) -> list[int]:
    """Positions of worker ``shard``'s samples among ``count`` length-ordered ones:
    ``shard``, ``shard + shards``, ... Every worker gets ``ceil(count / shards)`` samples, the
    short shards refilled from the start of the list (as an epoch's last step is), because
    synchronous training needs the same number of steps per epoch on every worker."""
    return [(shard + k * shards) % count for k in range(ceil(count / shards))]


# -- TensorFlow's pieces --------------------------------------------------------------------------


def start_server(role: ClusterRole, config: tf.ConfigProto) -> tf.train.Server:
    """This process's gRPC server (its devices made as ``config`` says)."""
    try:
        return tf.train.Server(
            role.spec(), job_name=role.job_name, task_index=role.task_index, config=config
        )
    except (tf.errors.OpError, ValueError) as error:
        raise ClusterError(
            f"cannot start the gRPC server of {role.name()}: {first_line(error)}"
        ) from error


def device_setter(role: ClusterRole):
    """Variables to the parameter servers (round robin), everything else to this worker."""
    return tf.train.replica_device_setter(
        ps_tasks=len(role.ps_hosts), worker_device=role.device, cluster=role.spec()
    )


def worker_session_config(base: tf.ConfigProto, role: ClusterRole) -> tf.ConfigProto:
    """``base`` limited to the parameter servers and this worker: another worker's death, or
    its late start, never touches this worker's session."""
    config = tf.ConfigProto()
    config.CopyFrom(base)
    config.device_filters[:] = [f"/job:{PS}", role.device]
    return config


def _done_queue(ps_index: int) -> tf.FIFOQueue:
    """Parameter server ``ps_index``'s queue of "the run is over" messages from the chief."""
    with tf.device(f"/job:{PS}/task:{ps_index}"):
        return tf.FIFOQueue(-1, tf.int32, shapes=[()], shared_name=f"ds_run_over_{ps_index}")


def _finished_queue() -> tf.FIFOQueue:
    """The task indices of the workers that have finished training (on parameter server 0)."""
    with tf.device(f"/job:{PS}/task:0"):
        return tf.FIFOQueue(-1, tf.int32, shapes=[()], shared_name="ds_workers_finished")


class Control:
    """Small operations on the parameter servers, in a graph and session of their own so that
    they work whatever the training session is doing (even while a step is stuck)."""

    def __init__(self, role: ClusterRole, target: str, token_device: str | None = None):
        self.role = role
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._done = [_done_queue(i).enqueue(1) for i in range(len(role.ps_hosts))]
            finished = _finished_queue()
            self._report = finished.enqueue(role.task_index)
            self._finished_size = finished.size()
            self._count = tf.placeholder(tf.int32, [])
            self._drain = finished.dequeue_many(self._count)
            self._close_tokens = None
            if token_device:
                # The same queue as SyncReplicasOptimizer's (shared by name): closing it makes
                # every step waiting for a token fail at once.
                with tf.device(token_device):
                    tokens = tf.FIFOQueue(-1, tf.int64, shapes=[()], shared_name=TOKEN_QUEUE)
                self._close_tokens = tokens.close(cancel_pending_enqueues=True)
        config = tf.ConfigProto(device_filters=[f"/job:{PS}"])
        self.session = tf.Session(target, graph=self.graph, config=config)
        self._options = tf.RunOptions(timeout_in_ms=CONTROL_TIMEOUT_MS)
        self._stuck = False  # a call never returned: closing the session would hang too

    def _run(self, fetches, feed_dict=None, wait_s: float = CONTROL_TIMEOUT_MS / 1000 + 1):
        """``session.run`` bounded in time: RunOptions' timeout does not cover the session's
        creation, which waits for absent parameter servers forever; such a call is left
        behind in its thread."""
        outcome: dict = {}

        def call():
            try:
                outcome["value"] = self.session.run(fetches, feed_dict, options=self._options)
            except Exception as error:  # handed to the caller
                outcome["error"] = error

        thread = threading.Thread(target=call, name="cluster-control", daemon=True)
        thread.start()
        thread.join(wait_s)
        if thread.is_alive():
            self._stuck = True
            raise tf.errors.DeadlineExceededError(None, None, "the parameter servers do not answer")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def end_run(self) -> list[str]:
        """Tell every parameter server that the run is over; returns the ones that did not
        take the message."""
        missed = []
        for index, op in enumerate(self._done):
            try:
                self._run(op)
            except tf.errors.OpError:
                missed.append(self.role.name(PS, index))
        return missed

    def stop_training(self) -> None:
        """Close the step-token queue: every worker's waiting or next step fails."""
        if self._close_tokens is not None:
            try:
                self._run(self._close_tokens)
            except tf.errors.OpError:
                pass  # its parameter server is gone: the steps fail anyway

    def report_finished(self) -> bool:
        """Tell the chief (through parameter server 0) that this worker has finished. The
        first call also opens the session, which takes seconds on a loaded machine: allow it
        the chief's whole waiting time, or the chief waits that long for nothing."""
        try:
            self._run(self._report, wait_s=self.role.worker_timeout)
            return True
        except tf.errors.OpError:
            return False

    def finished_workers(self) -> list[int]:
        """Task indices of the workers that reported their end since the last call."""
        count = int(self._run(self._finished_size))
        return [int(i) for i in self._run(self._drain, {self._count: count})] if count else []

    def close(self) -> None:
        if not self._stuck:
            self.session.close()


# -- liveness -------------------------------------------------------------------------------------


def probe(address: str, timeout: float) -> bool:
    """Whether a gRPC server answers at ``address`` within ``timeout`` seconds (an HTTP/2
    handshake on a fresh channel, so that no earlier failure is remembered)."""
    import grpc

    channel = grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)])
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


class Monitor:
    """Probes the gRPC servers of ``peers`` (name -> address) from a thread.

    A peer that answered once and then stays silent for ``timeout`` seconds is a failure:
    ``failure`` gets a message naming it, ``on_failure`` runs once, and the process gets
    ``exit_grace`` seconds to end by itself before SIGALRM ends it (None: no alarm). A
    failure is reported at most ``timeout + interval + probe_timeout`` seconds after the
    peer's last answer. Peers that never answered are waited for; those ``finished()``
    names are left alone.
    """

    def __init__(
        self,
        peers: dict[str, str],
        timeout: float,
        on_failure: Callable[[str], None] | None = None,
        finished: Callable[[], Iterable[str]] | None = None,
        exit_grace: int | None = EXIT_GRACE_SECONDS,
    ):
        self.peers = dict(peers)
        self.exit_grace = exit_grace
        self.timeout = timeout
        self.interval = min(2.0, timeout / 4)
        self.probe_timeout = min(5.0, timeout / 2)
        self.on_failure = on_failure
        self.finished = finished
        self.failure: str | None = None
        self.rounds = 0  # probe rounds completed (every peer probed once)
        self._round_done = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cluster-monitor", daemon=True)

    def start(self) -> Monitor:
        if self.peers:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        last_seen: dict[str, float] = {}
        announced: set[str] = set()
        while not self._stop.is_set():
            try:
                for name in self.finished() if self.finished else ():
                    self.peers.pop(name, None)
            except tf.errors.OpError:
                pass  # the parameter servers are probed below
            for name, address in list(self.peers.items()):
                if self._stop.is_set():
                    return
                if probe(address, self.probe_timeout):
                    last_seen[name] = time.monotonic()
                elif name not in last_seen:
                    if name not in announced:
                        print(f"Waiting for {name} to start", flush=True)
                        announced.add(name)
                elif time.monotonic() - last_seen[name] >= self.timeout:
                    silence = time.monotonic() - last_seen[name]
                    self._fail(f"{name} stopped responding (no answer for {silence:.0f} s)")
                    return
            with self._round_done:
                self.rounds += 1
                self._round_done.notify_all()
            self._stop.wait(self.interval)

    def wait_for_rounds(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` probe rounds are done (False after ``timeout`` seconds)."""
        with self._round_done:
            return self._round_done.wait_for(lambda: self.rounds >= count, timeout)

    def _fail(self, message: str) -> None:
        self.failure = message
        print(f"{message}: stopping", file=sys.stderr, flush=True)
        if self.exit_grace:
            # SIGALRM's default action ends the process, even one stuck in the runtime.
            signal.alarm(self.exit_grace)
        if self.on_failure is not None:
            self.on_failure(message)


# -- a worker's training session ------------------------------------------------------------------


class _CaptureSession(tf.train.SessionRunHook):
    """Keeps the raw session MonitoredSession creates."""

    session: tf.Session | None = None

    def after_create_session(self, session, coord):
        self.session = session


class _WorkerSessionCreator(tf.train.SessionCreator):
    """A non-chief worker's session: wait until the chief has made the model ready, checking
    every second (MonitoredTrainingSession's creator checks every 30 s)."""

    def __init__(self, scaffold: tf.train.Scaffold, master: str, config: tf.ConfigProto):
        self.scaffold, self.master, self.config = scaffold, master, config

    def create_session(self) -> tf.Session:
        self.scaffold.finalize()
        manager = tf.train.SessionManager(
            local_init_op=self.scaffold.local_init_op,
            local_init_feed_dict=self.scaffold.local_init_feed_dict,
            ready_op=self.scaffold.ready_op,
            ready_for_local_init_op=self.scaffold.ready_for_local_init_op,
            graph=tf.get_default_graph(),
            recovery_wait_secs=1,
        )
        return manager.wait_for_session(self.master, config=self.config)


class ClusterSession(SessionInterface):
    """A worker's training session: the raw session under a MonitoredSession, which created
    it (the chief initialises or restores, the others wait) and ran SyncReplicasOptimizer's
    hook (the chief's token queue runner). Steps run on the raw session so that the project's
    own loop, savers and error handling apply: MonitoredSession would quietly re-create the
    session after an UnavailableError, hiding a lost parameter server. A step that fails
    because the cluster failed raises :class:`ClusterError` naming the cause."""

    def __init__(
        self,
        monitored: tf.train.MonitoredSession,
        raw: tf.Session,
        monitor: Monitor,
        on_close: Callable[[], None] | None = None,
    ):
        self.monitored, self.raw, self.monitor = monitored, raw, monitor
        self.on_close = on_close

    @property
    def graph(self) -> tf.Graph:
        return self.raw.graph

    @property
    def sess_str(self) -> str:
        return self.raw.sess_str

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        try:
            return self.raw.run(fetches, feed_dict, options, run_metadata)
        except tf.errors.OpError as error:
            if self.monitor.failure:
                raise ClusterError(self.monitor.failure) from error
            if TOKEN_QUEUE in (error.message or ""):
                raise RunEnded(
                    "the run was ended by the chief or another worker (the synchronisation "
                    "queue was closed)"
                ) from error
            if isinstance(error, tf.errors.UnavailableError | tf.errors.AbortedError):
                raise ClusterError(f"lost the cluster: {first_line(error)}") from error
            raise

    def close(self) -> None:
        """Training is over: stop the monitor, run ``on_close`` and close both sessions. The
        raw one goes first: closing it cancels the chief's token queue runner, which would
        otherwise hold MonitoredSession.close for its grace period."""
        self.monitor.stop()
        if self.on_close is not None:
            self.on_close()
        self.raw.close()
        try:
            self.monitored.close()
        except (tf.errors.OpError, RuntimeError):
            pass  # the cancelled queue runner's error: training is over anyway


class Cluster:
    """This process's part in a cluster: its role, gRPC server, liveness monitor, control
    channel and, once the training graph is built, the global step, SyncReplicasOptimizer and
    the step the chief starts at (which tells the other workers that the model is ready)."""

    def __init__(self, role: ClusterRole, server_config: tf.ConfigProto):
        self.role = role
        self.server = start_server(role, server_config)
        self.session_config = worker_session_config(server_config, role)
        self.control: Control | None = None
        self.monitor = Monitor(
            role.peers(), role.worker_timeout, self._stop_training, self._finished_peers
        )
        self.global_step: tf.Variable | None = None
        self.sync_optimizer: tf.train.SyncReplicasOptimizer | None = None
        self.start_step: tf.Variable | None = None

    # -- graph (inside the training graph, under device_setter) --

    def apply_gradients(self, optimizer: tf.train.Optimizer, grads_and_vars) -> tf.Operation:
        """The synchronous update: ``grads_and_vars`` of ``replicas_to_aggregate`` workers
        averaged, then applied by ``optimizer``. Builds the global step (a training-state
        variable, so that older checkpoints without it still restore)."""
        with tf.variable_scope(STATE_SCOPE), tf.device("/cpu:0"):
            self.global_step = tf.get_variable(
                "global_step",
                [],
                tf.int64,
                tf.zeros_initializer(),
                trainable=False,
                collections=[tf.GraphKeys.GLOBAL_VARIABLES, tf.GraphKeys.GLOBAL_STEP],
            )
        self.sync_optimizer = tf.train.SyncReplicasOptimizer(
            optimizer,
            replicas_to_aggregate=self.role.replicas_to_aggregate,
            total_num_replicas=self.role.num_workers,
        )
        return self.sync_optimizer.apply_gradients(grads_and_vars, global_step=self.global_step)

    def scaffold(self, saver: tf.train.Saver, init_fn=None) -> tf.train.Scaffold:
        """How sessions start: the chief initialises everything, then ``init_fn(scaffold,
        session)`` restores and calls :meth:`mark_ready`; the others wait for that (waiting
        for the variables alone would race with the restore)."""
        # The chief's first global step + 1, 0 until the model is ready. Outside
        # GLOBAL_VARIABLES: never saved, never restored.
        self.start_step = tf.Variable(
            tf.constant(0, tf.int64), trainable=False, collections=[], name="cluster_start_step"
        )
        waiting = tf.cond(
            self.start_step > 0,
            lambda: tf.zeros([0], tf.string),
            lambda: tf.constant(["the chief has not made the model ready yet"]),
        )
        return tf.train.Scaffold(
            init_op=tf.group(tf.global_variables_initializer(), self.start_step.initializer),
            ready_op=tf.concat([tf.report_uninitialized_variables(), waiting], 0),
            init_fn=init_fn,
            saver=saver,
        )

    def mark_ready(self, session: tf.Session, global_step: int) -> None:
        """The chief, once the model is restored: set the global step, let the others in."""
        self.global_step.load(global_step, session)
        self.start_step.load(global_step + 1, session)

    def starting_step(self, session) -> int:
        """The global step the chief started at: where the others start too (the global
        step itself may have moved on when fewer than all workers make an update)."""
        return int(session.run(self.start_step)) - 1

    # -- sessions --

    def open_session(self, scaffold: tf.train.Scaffold) -> ClusterSession:
        """The training session (call inside the graph and device_setter). The monitor starts
        first, so that a peer lost while this waits is reported too."""
        self.monitor.start()
        capture = _CaptureSession()
        # num_tokens=0: no spare tokens, so that each update holds one gradient per worker
        # (with spares a fast worker could contribute twice).
        hooks = [
            self.sync_optimizer.make_session_run_hook(self.role.is_chief, num_tokens=0),
            capture,
        ]
        target, config = self.server.target, self.session_config
        if self.role.is_chief:
            creator = tf.train.ChiefSessionCreator(scaffold, target, config)
        else:
            creator = _WorkerSessionCreator(scaffold, target, config)
        monitored = tf.train.MonitoredSession(creator, hooks, stop_grace_period_secs=5)
        self.control = Control(self.role, target, self.global_step.device)
        # When the chief stops training (the last epoch, early stopping, a time budget, an
        # error), the workers still waiting for a step stop too, while the chief tests.
        on_close = self.control.stop_training if self.role.is_chief else None
        return ClusterSession(monitored, capture.session, self.monitor, on_close)

    def _stop_training(self, message: str) -> None:
        if self.control is not None:
            self.control.stop_training()

    def _finished_peers(self) -> list[str]:
        if self.control is None or not self.role.is_chief:
            return []
        return [self.role.name(WORKER, i) for i in self.control.finished_workers()]

    # -- the end --

    def finish(self, succeeded: bool) -> None:
        """End this process's part: a worker reports that it has finished; the chief waits
        (on success) for the others to report, stops any worker still training, and tells
        the parameter servers that the run is over."""
        self.monitor.stop()
        control = self.control or Control(self.role, self.server.target)
        try:
            if not self.role.is_chief:
                if not control.report_finished():
                    print(
                        "warning: could not tell the chief that this worker has finished",
                        file=sys.stderr,
                    )
                return
            if succeeded:
                self._wait_for_workers(control)
            control.stop_training()
            missed = control.end_run()
            if missed:
                print(
                    f"warning: {', '.join(missed)} did not take the end of the run; "
                    "stop it by hand",
                    file=sys.stderr,
                )
        finally:
            control.close()

    def _wait_for_workers(self, control: Control) -> None:
        waiting = set(range(1, self.role.num_workers))
        deadline = time.monotonic() + self.role.worker_timeout
        while waiting and time.monotonic() < deadline:
            try:
                waiting -= set(control.finished_workers())
            except tf.errors.OpError:
                break
            if waiting:
                time.sleep(0.2)
        if waiting:
            names = ", ".join(self.role.name(WORKER, i) for i in sorted(waiting))
            print(f"warning: {names} did not report the end of training", file=sys.stderr)


# -- a parameter server ---------------------------------------------------------------------------


def serve(role: ClusterRole, server_config: tf.ConfigProto) -> None:
    """A parameter server's life: serve the variables until the chief says the run is over.

    Raises:
        ClusterError: when the chief, once seen, stops responding for ``ds_worker_timeout``.
    """
    server = start_server(role, server_config)
    graph = tf.Graph()
    with graph.as_default():
        message = _done_queue(role.task_index).dequeue()
    config = tf.ConfigProto(device_filters=[role.device])
    session = tf.Session(server.target, graph=graph, config=config)
    monitor = Monitor(role.peers(), role.worker_timeout).start()
    print(f"{role.name().capitalize()} serving until the chief ends the run", flush=True)
    wait = tf.RunOptions(timeout_in_ms=1000)
    try:
        while monitor.failure is None:
            try:
                session.run(message, options=wait)
            except tf.errors.DeadlineExceededError:
                continue
            print(f"The chief ended the run: {role.name()} stops", flush=True)
            return
        raise ClusterError(f"{monitor.failure}; {role.name()} stops")
    finally:
        monitor.stop()
        session.close()
