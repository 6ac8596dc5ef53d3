"""Training on several machines (``ds_ps_hosts`` ...): this process's part in a cluster.

A parameter server serves the variables (util/training/cluster.py); every worker builds the training
context of util/training/contexts.py with the variables on the parameter servers, its own shard of
the training set and SyncReplicasOptimizer's update. The chief (worker 0) then runs the whole story
of DeepSpeech.py (checkpoints, validation, logs, test, export); the other workers only train,
through the same epoch loop, and write nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import tensorflow.compat.v1 as tf

from util.settings.config import Config
from util.settings.devices import session_config, tower_devices
from util.training.checkpoints import (
    CheckpointError,
    Position,
    latest_checkpoint,
    restore,
)
from util.training.cluster import (
    Cluster,
    ClusterError,
    ClusterRole,
    device_setter,
    serve,
    shard_indices,
)
from util.training.contexts import (
    ExecutionContext,
    Run,
    RunError,
    batch_files,
    model_restoration,
    read_data_set,
    run_hint,
    set_feature_statistics,
    training_context,
)
from util.training.logs import RunLog
from util.training.source import Source


def create_distributed_context(run: Run) -> ExecutionContext:
    """A cluster worker's training context: the one of
    util.training.contexts.create_execution_context, with the variables on the parameter servers,
    this worker's shard of the training set, and SyncReplicasOptimizer's update (this worker's
    averaged tower gradients averaged again across the workers) in place of the local one."""
    config, role = run.config, run.cluster.role
    graph = tf.Graph()
    # Ops are made in the order create_execution_context makes them, so that the same seed
    # gives the same initial weights.
    with graph.as_default(), tf.device(device_setter(role)):
        tf.set_random_seed(config.random_seed)
        data_set = read_data_set(run, "train")
        total = len(data_set.samples)
        data_set.keep_only(shard_indices(total, role.task_index, role.num_workers))
        print(
            f"{role.name().capitalize()} trains on {len(data_set.samples)} of the {total} "
            f"training samples: {data_set.steps_per_epoch} step(s) per epoch"
        )

        def sync_update(optimizer, gradients, finite):
            # Each update waits for a gradient from every worker: a worker whose batch is not
            # finite sends zeros rather than nothing, and the model stays finite.
            gradients = [
                (g if g is None else tf.where_v2(finite, g, tf.zeros_like(g)), v)
                for g, v in gradients
            ]
            return run.cluster.apply_gradients(optimizer, gradients)

        return training_context(run, graph, data_set, sync_update)


def open_distributed_context(
    run: Run,
    context: ExecutionContext,
    model_path: str | None = None,
    position=None,
    source: Source | None = None,
):
    """Open a cluster worker's training session and start its feeder threads. The chief
    initialises the model, or restores ``model_path`` or what it takes of ``source``, and sets
    the global step to ``position``; the others wait for that and take their position from the
    global step. Returns (session, coordinator, threads, position)."""
    cluster, steps = run.cluster, context.data_set.steps_per_epoch
    position = position or Position()
    with context.graph.as_default(), tf.device(device_setter(cluster.role)):
        # The graph is finalised before the chief restores: the saver is built now.
        restoration = model_restoration(run, model_path, source)
        restore_saver = None if restoration is None else tf.train.Saver(restoration[1])

        def init_fn(scaffold, session):
            if restore_saver is not None:
                restore(session, restoration[0], [], run_hint(run), saver=restore_saver)
            else:
                set_feature_statistics(session, context, run.config)
            cluster.mark_ready(session, position.epoch * steps + position.step)

        scaffold = cluster.scaffold(context.saver, init_fn if cluster.role.is_chief else None)
        if not cluster.role.is_chief:
            print(
                f"{cluster.role.name().capitalize()} waits for the chief to make the model ready",
                flush=True,
            )
        try:
            session = cluster.open_session(scaffold)
        except CheckpointError as error:
            raise RunError(str(error)) from error
        if not cluster.role.is_chief:
            step = cluster.starting_step(session)
            position = Position(step // steps, step % steps)
        coord = tf.train.Coordinator()
        threads = context.data_set.start_queue_threads(
            session, coord, position.epoch, position.step
        )
    return session, coord, threads, position


def start_distributed_context(
    run: Run,
    context: ExecutionContext,
    model_path: str | None = None,
    position=None,
    source: Source | None = None,
):
    """start_execution_context for the chief of a cluster (see open_distributed_context)."""
    return open_distributed_context(run, context, model_path, position, source)[:3]


class WorkerHook:
    """What a worker other than the chief does between steps: name the files of a batch
    whose loss or gradient was not finite (it sent zeros), and stop after
    ``ds_max_non_finite`` such batches in a row."""

    def __init__(self, run: Run, context: ExecutionContext):
        self.run, self.context = run, context
        self.in_a_row = 0

    def after_step(self, epoch: int, step: int, values: dict) -> None:
        if values["finite"]:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        name = self.run.cluster.role.name()
        files = batch_files(self.context, values["indices"])
        print(
            f"warning: {name}: non-finite loss or gradient in epoch {epoch + 1}, step "
            f"{step + 1}; zeros were sent. Files: {', '.join(files)}",
            file=sys.stderr,
        )
        if self.in_a_row >= self.run.config.max_non_finite:
            raise RunError(
                f"{self.in_a_row} batches in a row had a non-finite loss or gradient on "
                f"{name} (ds_max_non_finite={self.run.config.max_non_finite})"
            )


def run_distributed(
    config: Config,
    execute: Callable[[Config, Cluster], dict],
    train_worker: Callable[[Run], None],
) -> dict:
    """This process's part in a cluster (``ds_ps_hosts`` ...): a parameter server serves the
    variables until the chief ends the run; the chief (worker 0) trains, checkpoints,
    validates, logs, tests and exports (``execute(config, cluster)``); the other workers
    only train (``train_worker(run)``).
    Returns the ``results`` object (the duration alone for the others)."""
    role = ClusterRole.from_config(config)
    started = time.time()
    if not config.train and not role.is_ps:
        raise RunError("a cluster only trains (ds_train=0): test without ds_ps_hosts")
    if role.is_ps:
        serve(role, session_config(config))
        return {"duration": time.time() - started}
    cluster = Cluster(role, session_config(config, training=True))
    print(
        f"{role.name().capitalize()} of {role.num_workers}"
        f"{' (the chief)' if role.is_chief else ''}; parameter servers "
        f"{', '.join(role.ps_hosts)}; each update averages "
        f"{role.replicas_to_aggregate} worker(s)' gradients",
        flush=True,
    )
    succeeded = False
    try:
        if role.is_chief:
            try:
                results = execute(config, cluster)
            except ClusterError as error:
                latest = latest_checkpoint(config.checkpoint_dir)
                advice = f"; start every process again to resume from {latest}" if latest else ""
                raise ClusterError(f"{error}{advice}") from error
        else:
            # No log folder and no summaries: only the chief writes.
            train_worker(Run(config, tower_devices(config), RunLog(None), cluster=cluster))
            results = {"duration": time.time() - started}
        succeeded = True
        return results
    finally:
        cluster.finish(succeeded)
