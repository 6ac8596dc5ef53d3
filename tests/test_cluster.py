"""Several machines: the cluster variables, the shard rule, liveness probes, and real
localhost clusters (1 parameter server + 2 workers, separate processes talking gRPC)."""

import json
import os
import signal
import socket
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from helpers import SMALL_MODEL, Process, only_run_dir, run_main, write_csv

from util.settings.config import ConfigError, from_environ
from util.training.cluster import ClusterRole, Monitor, shard_indices

# The loss comparison, cluster (2 workers x batch 1) against one process (batch 2) on the same
# data and seed. The first step's losses agree to 1e-7 (the same initial weights); later ones
# drift apart as a batch of two is computed with other kernels than a batch of one (a single
# process with batch 1 drifts from batch 2 exactly as much: 8e-5 after 5 steps, 5e-3 after
# 10, while the cluster matches the batch-1 process to 1e-6).
COMPARED_EPOCHS = 5
LOSS_RTOL = 1e-3
WORKER_TIMEOUT = 15  # ds_worker_timeout of the failure test (a loaded machine answers late)
# The chief reports a lost worker within ds_worker_timeout + probe interval + probe timeout
# (5 + 1.25 + 2.5 s) and then stops; the bound leaves room for a loaded machine.
REPORT_BOUND = WORKER_TIMEOUT + 25


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cluster_environ(workers: int = 2) -> dict:
    ps, *worker_ports = free_ports(workers + 1)
    return {
        "ds_ps_hosts": f"127.0.0.1:{ps}",
        "ds_worker_hosts": ",".join(f"127.0.0.1:{p}" for p in worker_ports),
    }


class LocalCluster:
    """A parameter server and workers as real processes; every process group is killed at
    the end whatever happened."""

    def __init__(self, environ: dict, workers: int = 2):
        self.environ = {**environ, **cluster_environ(workers)}
        self.ps = Process({**self.environ, "ds_job_name": "ps", "ds_task_index": "0"})
        self.workers = [
            Process({**self.environ, "ds_job_name": "worker", "ds_task_index": str(i)})
            for i in range(workers)
        ]

    @property
    def processes(self) -> list[Process]:
        return [self.ps, *self.workers]

    def finish(self, timeout: float = 600) -> list[int]:
        return [p.finish(timeout) for p in self.processes]

    def kill(self) -> None:
        for process in self.processes:
            process.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def parse(**variables):
    return from_environ({"ds_checkpoint_dir": "/tmp/unused-checkpoints", **variables})


# -- configuration and the shard rule -----------------------------------------------------------


def test_without_cluster_variables_nothing_changes():
    config = parse()
    assert config.ps_hosts == () and config.worker_hosts == () and config.job_name == ""
    assert ClusterRole.from_config(config) is None
    assert config.worker_timeout == 60 and config.replicas_to_agg == 0


def test_cluster_variables_parse():
    config = parse(
        ds_ps_hosts="10.0.0.1:2222",
        ds_worker_hosts="10.0.0.2:2222, [::1]:2223",
        ds_job_name="Worker",
        ds_task_index="1",
    )
    role = ClusterRole.from_config(config)
    assert role.worker_hosts == ("10.0.0.2:2222", "[::1]:2223") and role.job_name == "worker"
    assert role.replicas_to_aggregate == 2 and not role.is_chief and not role.is_ps
    assert role.name() == "worker 1 ([::1]:2223)"
    assert role.peers() == {
        "worker 0 (10.0.0.2:2222)": "10.0.0.2:2222",
        "parameter server 0 (10.0.0.1:2222)": "10.0.0.1:2222",
    }
    chief = ClusterRole.from_config(
        parse(ds_ps_hosts="a:1", ds_worker_hosts="b:2,c:3", ds_job_name="worker")
    )
    assert chief.is_chief and set(chief.peers().values()) == {"a:1", "c:3"}


@pytest.mark.parametrize(
    "variables, message",
    [
        (
            {"ds_worker_hosts": "b:2", "ds_job_name": "worker", "ds_ps_hosts": "a"},
            "ds_ps_hosts='a': 'a' is not host:port",
        ),
        (
            {"ds_worker_hosts": "b:70000", "ds_job_name": "worker", "ds_ps_hosts": "a:1"},
            "'b:70000' is not host:port (port 1 to 65535)",
        ),
        (
            {"ds_worker_hosts": "b:2,b:2", "ds_job_name": "worker", "ds_ps_hosts": "a:1"},
            "b:2 is listed twice",
        ),
        (
            {"ds_worker_hosts": "b:2", "ds_job_name": "chief", "ds_ps_hosts": "a:1"},
            "ds_job_name='chief': expected ps or worker",
        ),
        (
            {
                "ds_worker_hosts": "b:2,c:3",
                "ds_job_name": "worker",
                "ds_ps_hosts": "a:1",
                "ds_task_index": "2",
            },
            "ds_task_index=2: expected a whole number from 0 to 1",
        ),
        (
            {
                "ds_worker_hosts": "b:2",
                "ds_job_name": "ps",
                "ds_ps_hosts": "a:1",
                "ds_task_index": "1",
            },
            "ds_ps_hosts has 1 host(s)",
        ),
        (
            {
                "ds_worker_hosts": "b:2,c:3",
                "ds_job_name": "worker",
                "ds_ps_hosts": "a:1",
                "ds_replicas_to_agg": "3",
            },
            "ds_replicas_to_agg=3: expected a whole number from 1 to 2",
        ),
        ({"ds_worker_hosts": "b:2", "ds_job_name": "worker"}, "needs ds_ps_hosts too"),
        ({"ds_task_index": "1"}, "ds_task_index is read only with ds_ps_hosts"),
        (
            {"ds_worker_hosts": "a:1", "ds_job_name": "worker", "ds_ps_hosts": "a:1"},
            "a:1 is both in ds_ps_hosts and ds_worker_hosts",
        ),
        ({"ds_worker_timeout": "1"}, "ds_worker_timeout='1': expected a whole number >= 2"),
    ],
)
def test_bad_cluster_variables_are_one_line_errors(variables, message):
    with pytest.raises(ConfigError) as error:
        parse(**variables)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_shards_are_disjoint_equal_and_cover_the_set():
    for count in range(1, 12):
        for shards in range(1, 5):
            parts = [shard_indices(count, i, shards) for i in range(shards)]
            assert len({len(p) for p in parts}) == 1  # the same number of steps everywhere
            assert set().union(*parts) == set(range(count))
            if count % shards == 0:  # nothing to refill: no utterance is trained twice
                assert sum(len(p) for p in parts) == count
            assert all(p == sorted(p) or p[-1] < p[0] for p in parts)  # length order kept
    assert shard_indices(5, 1, 2) == [1, 3, 0] and shard_indices(1, 1, 2) == [0]


# -- liveness -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_monitor_reports_a_peer_that_stops_answering_and_waits_for_an_absent_one():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    (absent,) = free_ports(1)
    failures = []
    peers = {"worker 1": f"127.0.0.1:{port}", "worker 2": f"127.0.0.1:{absent}"}
    monitor = Monitor(peers, timeout=2, on_failure=failures.append, exit_grace=None).start()
    try:
        # Rounds spanning more than the timeout (each waits ``interval``): an absent peer is
        # waited for, a live one is fine. Generous timeouts below only turn a hang into a
        # failure.
        rounds = int(monitor.timeout / monitor.interval) + 2
        assert monitor.wait_for_rounds(rounds, timeout=120)
        assert monitor.failure is None
        server.stop(0)
        waited = 0.0
        while monitor.failure is None and waited < 120:
            time.sleep(0.1)
            waited += 0.1
        assert monitor.failure and monitor.failure.startswith("worker 1 stopped responding")
        assert failures == [monitor.failure]
        # It waited at least its timeout before giving the peer up (its own measure).
        silence = float(monitor.failure.split("no answer for ")[1].split(" s")[0])
        assert silence >= monitor.timeout
    finally:
        monitor.stop()
        server.stop(0)


# -- real clusters ------------------------------------------------------------------------------


def epochs_of(run_dir) -> list[dict]:
    return [json.loads(line) for line in open(os.path.join(run_dir, "epochs.jsonl"))]


@pytest.mark.slow
def test_localhost_cluster_trains_ldc93s1_and_matches_one_process_with_twice_the_batch(
    tmp_path,
):
    epochs = 40
    environ = {
        **SMALL_MODEL,
        "ds_epochs": str(epochs),
        "ds_checkpoint_step": "0",
        "ds_report_count": "1",
        "ds_feature_cache": str(tmp_path / "cache"),
    }
    cluster_dirs = {
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    started = time.time()
    with LocalCluster({**environ, **cluster_dirs}) as cluster:
        codes = cluster.finish()
        ps, chief, worker = (p.text for p in cluster.processes)
    assert codes == [0, 0, 0], chief + worker + ps
    print(f"cluster: {time.time() - started:.1f} s for {epochs} synchronous steps")
    # What each process says.
    assert "serving until the chief ends the run" in ps and "The chief ended the run" in ps
    assert "worker 1 (127.0.0.1:" in worker.lower() and "finished training" in worker
    assert f"epoch {epochs:04d} done" in worker
    assert "(the chief)" in chief and "trains on 1 of the 1 training samples" in chief
    test_line = chief[chief.index("Test loss=") :].splitlines()[0]
    assert "WER: 0.000000" in test_line
    # Only the chief wrote: one run folder, checkpoints, reports.
    run_dir = only_run_dir(tmp_path / "logs")
    assert json.load(open(os.path.join(run_dir, "hyper.json")))["context"]["status"] == "finished"
    reader = tf.train.load_checkpoint(str(tmp_path / "ckpt" / f"model.ckpt-{epochs}"))
    assert reader.get_tensor("training_state/global_step") == epochs  # one update per step
    cluster_losses = [r["train_loss"] for r in epochs_of(run_dir)]

    # One process, twice the batch: the same two utterances (LDC93S1 twice) per update.
    single = {
        **environ,
        "ds_epochs": str(COMPARED_EPOCHS),
        "ds_train_batch_size": "2",
        "ds_test": "0",
        "ds_checkpoint_dir": str(tmp_path / "ckpt1"),
        "ds_logs_dir": str(tmp_path / "logs1"),
    }
    status, out, err = run_main(single)
    assert status == 0, err
    single_losses = [r["train_loss"] for r in epochs_of(only_run_dir(tmp_path / "logs1"))]
    np.testing.assert_allclose(cluster_losses[:COMPARED_EPOCHS], single_losses, rtol=LOSS_RTOL)
    assert cluster_losses[0] == pytest.approx(single_losses[0], rel=1e-6)
    # Averaging two identical batch-1 gradients across workers is the batch-1 update.
    batch_one = {
        **single,
        "ds_epochs": "10",
        "ds_train_batch_size": "1",
        "ds_checkpoint_dir": str(tmp_path / "ckpt2"),
        "ds_logs_dir": str(tmp_path / "logs2"),
    }
    assert run_main(batch_one)[0] == 0
    batch_one_losses = [r["train_loss"] for r in epochs_of(only_run_dir(tmp_path / "logs2"))]
    np.testing.assert_allclose(cluster_losses[:10], batch_one_losses, rtol=1e-5)


@pytest.mark.slow
def test_a_killed_worker_is_reported_and_the_run_restarts_from_the_chief_checkpoints(tmp_path):
    environ = {
        **SMALL_MODEL,
        "ds_epochs": "100000",
        "ds_checkpoint_step": "1",
        "ds_checkpoint_secs": "0",
        "ds_test": "0",
        "ds_worker_timeout": str(WORKER_TIMEOUT),
        "ds_feature_cache": str(tmp_path / "cache"),
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    with LocalCluster(environ) as cluster:
        ps, chief, worker = cluster.processes
        chief.wait_for(lambda line: line.startswith("FINISHED Epoch 0003"))
        worker_address = cluster.environ["ds_worker_hosts"].split(",")[1]
        os.killpg(worker.process.pid, signal.SIGKILL)
        # The chief notices within about REPORT_BOUND seconds; the generous timeout only
        # turns a hang into a failure.
        code = chief.finish(timeout=REPORT_BOUND + 300)
        assert code == 1, chief.text
        assert f"error: worker 1 ({worker_address}) stopped responding" in chief.text
        assert "Traceback" not in chief.text
        # The parameter server was told the run is over and left by itself.
        assert ps.finish(timeout=120) == 0, ps.text
        assert "The chief ended the run" in ps.text
        assert all(p.process.poll() is not None for p in cluster.processes)
    run_dir = only_run_dir(tmp_path / "logs")
    hyper = json.load(open(os.path.join(run_dir, "hyper.json")))
    assert hyper["context"]["status"] == "failed"
    assert "stopped responding" in hyper["context"]["error"]

    # Restart the whole cluster: it resumes from the chief's last checkpoint.
    latest = tf.train.latest_checkpoint(str(tmp_path / "ckpt"))
    done = int(latest.rsplit("model.ckpt-", 1)[1])
    with LocalCluster({**environ, "ds_epochs": str(done + 2)}) as cluster:
        codes = cluster.finish()
        ps, chief, worker = (p.text for p in cluster.processes)
    assert codes == [0, 0, 0], chief + worker + ps
    assert f"Resuming training from {latest} at epoch {done + 1:04d}" in chief
    assert f"goes on at epoch {done + 1:04d}" in worker
    assert f"FINISHED Epoch {done + 2:04d}" in chief and "FINISHED Epoch 0001" not in chief


def test_one_process_and_a_cluster_resume_each_others_checkpoints(tmp_path):
    from util.training.checkpoints import restore

    # Adam's beta powers are "cond/beta1_power" in one process and "beta1_power" in a cluster.
    for saved, restored in (
        ("cond/beta1_power", "beta1_power"),
        ("beta1_power", "cond/beta1_power"),
    ):
        path = str(tmp_path / saved.replace("/", "_") / "model.ckpt-1")
        with tf.Graph().as_default():
            variable = tf.get_variable(saved, initializer=tf.constant(0.25))
            with tf.Session() as session:
                session.run(variable.initializer)
                tf.train.Saver([variable]).save(session, path, write_meta_graph=False)
        with tf.Graph().as_default():
            variable = tf.get_variable(restored, initializer=tf.constant(1.0))
            with tf.Session() as session:
                restore(session, path, [variable], "test")
                assert session.run(variable) == 0.25


def test_csv_sets_are_needed_only_where_they_are_read(tmp_path):
    train = write_csv(tmp_path / "train.csv", [])
    cluster = {"ds_importer": "csv", "ds_ps_hosts": "a:1", "ds_worker_hosts": "b:2,c:3"}
    parse(**cluster, ds_job_name="ps")  # a parameter server reads no data
    parse(
        **cluster,
        ds_job_name="worker",
        ds_task_index="1",
        ds_train_files=str(train),
        ds_test_files="/not/on/this/host.csv",
    )
    with pytest.raises(ConfigError, match="needs ds_test_files"):
        parse(**cluster, ds_job_name="worker", ds_train_files=str(train))  # the chief tests
