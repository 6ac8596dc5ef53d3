"""The files a run writes in ``<ds_logs_dir>/<run>/`` and the keys inside them.

The trainer writes these files (util/training/logs.py), the dashboard reads them (dashboard/runs.py)
and the tests check them; all three take the names from here, so a renamed key cannot leave
one of them behind. Nothing here imports TensorFlow.

- ``hyper.json``: ``context`` (times, git, status), ``parameters`` (the original's field
  names), ``results`` (the run's figures) and ``config`` (every setting, util/settings/config.py).
- ``epochs.jsonl``: one object per finished epoch.
- ``report_<set>.json``: the WER report of a dev or test pass (util/decoding/report.py).
- ``skipped_<set>.json``: the samples of a set that could not be used, by reason.
- ``non_finite_files.json``: the batches whose loss or gradient was not finite.
- ``events.out.tfevents.*``: TensorBoard summaries (the tags are below).
"""

from __future__ import annotations

import re

HYPER = "hyper.json"
EPOCHS = "epochs.jsonl"
NON_FINITE = "non_finite_files.json"
REPORT_PATTERN = re.compile(r"^report_([A-Za-z0-9_-]+)\.json$")  # group 1: the set's name


def report_file(set_name: str) -> str:
    """``report_<set>.json``: the WER report of ``set_name``."""
    return f"report_{set_name}.json"


# The reason under which skipped_<set>.json lists samples that passed the checks before the
# run but could not be read when fed (the check reads headers; decoding finds the rest).
LEFT_OUT_WHEN_FED = "unreadable when fed"


def skipped_file(set_name: str) -> str:
    """``skipped_<set>.json``: reason -> names of the samples of ``set_name`` left out."""
    return f"skipped_{set_name}.json"


class Hyper:
    """The four sections of ``hyper.json``."""

    CONTEXT = "context"
    PARAMETERS = "parameters"
    RESULTS = "results"
    CONFIG = "config"
    SECTIONS = (CONTEXT, PARAMETERS, RESULTS, CONFIG)


class Context:
    """Keys of ``hyper.json``'s ``context``."""

    TIME_STARTED = "time_started"
    TIME_FINISHED = "time_finished"
    GIT_HASH = "git_hash"
    GIT_BRANCH = "git_branch"
    STATUS = "status"
    ERROR = "error"  # failed or interrupted runs: what stopped them
    SOURCE = "source"  # a fine-tuning run: the model it started from (Source's keys)


class Source:
    """Keys of the model a run started from (``context.source`` in ``hyper.json``, ``source``
    in a checkpoint's lineage and in an export's metadata)."""

    FOLDER = "folder"  # ds_load_checkpoint_dir
    CHECKPOINT = "checkpoint"  # the checkpoint read
    KIND = "kind"  # best (its best-dev checkpoint), last, or given (a checkpoint's path)
    RUN = "run"  # the logs folder of the run that trained it, when known
    COMMIT = "commit"  # that run's git commit, when known
    LAYERS_DROPPED = "layers_dropped"  # ds_drop_source_layers
    OPTIMIZER = "optimizer_state"  # ds_load_optimizer
    SOURCE = "source"  # the source's own source, when it was fine-tuned too


class Status:
    """Values of ``context.status``; ``UNKNOWN`` is the dashboard's word for anything else."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    UNKNOWN = "unknown"
    ALL = (RUNNING, FINISHED, FAILED, INTERRUPTED, UNKNOWN)


class Parameters:
    """Keys of ``hyper.json``'s ``parameters`` that are read back (the original's names)."""

    N_HIDDEN = "n_hidden_1"
    DATA_SET = "data_set"  # {"name": importer}
    DATA_SET_NAME = "name"


class Results:
    """Keys of ``hyper.json``'s ``results``."""

    DURATION = "duration"  # seconds
    LAST_TRAIN_WER = "last_train_wer"
    LAST_VALIDATION_WER = "last_validation_wer"
    TEST_WER = "test_wer"
    TEST_CER = "test_cer"
    TEST_LOSS = "test_loss"
    TEST_WER_RAW = "test_wer_raw"
    STOPPED_BY_BUDGET = "stopped_by_budget"  # ds_max_train_seconds ran out
    STOPPED_EARLY = "stopped_early"  # early stopping ended training before ds_epochs
    EXPORT = "export"  # the written export paths
    LM_WEIGHTS = "lm_weights"  # ds_lm_tune's choice: alpha, beta, dev_wer, dev_cer, utterances


class Epoch:
    """Keys of one ``epochs.jsonl`` record."""

    EPOCH = "epoch"  # 1-based
    TRAIN_LOSS = "train_loss"
    TRAIN_WER = "train_wer"  # on display steps, else null
    DEV_LOSS = "dev_loss"  # on validation steps, else null
    DEV_WER = "dev_wer"
    DEV_CER = "dev_cer"
    SECONDS = "seconds"
    RESUMED_AT_STEP = "resumed_at_step"  # only in the first epoch of a resumed run
    NON_FINITE_FILES = "non_finite_files"  # only when a batch was skipped


class Report:
    """Keys of ``report_<set>.json`` (the fields of util.decoding.report.Report)."""

    SET = "set"
    LOSS = "loss"
    AVG_CER = "avg_cer"
    WER = "wer"
    CER = "cer"
    WER_RAW = "wer_raw"
    CER_RAW = "cer_raw"
    MEAN_WER = "mean_wer"
    SAMPLES = "samples"
    DECODER = "decoder"
    SPELLING = "spelling"
    KEYS = (SET, LOSS, AVG_CER, WER, CER, WER_RAW, CER_RAW, MEAN_WER, SAMPLES, DECODER, SPELLING)


class Sample:
    """Keys of each of a report's ``samples`` (the fields of util.decoding.report.SampleResult)."""

    WAV_FILENAME = "wav_filename"
    SRC = "src"  # the reference transcript
    RES = "res"  # the hypothesis after spelling correction
    RES_RAW = "res_raw"  # the decoder's hypothesis
    LOSS = "loss"
    WER = "wer"
    CER = "cer"
    WER_RAW = "wer_raw"
    DURATION = "duration"
    KEYS = (WAV_FILENAME, SRC, RES, RES_RAW, LOSS, WER, CER, WER_RAW, DURATION)


class NonFinite:
    """Keys of each batch listed in ``non_finite_files.json``."""

    EPOCH = "epoch"
    STEP = "step"
    FILES = "files"


class Scalars:
    """TensorBoard scalar tags."""

    STEP_LOSS = "train/step_loss"
    TEST_LOSS = "test/loss"
    TEST_WER = "test/wer"
    EPOCH_TRAIN_LOSS = "epoch/train_loss"
    EPOCH_TRAIN_WER = "epoch/train_wer"
    EPOCH_DEV_LOSS = "epoch/dev_loss"
    EPOCH_DEV_WER = "epoch/dev_wer"
