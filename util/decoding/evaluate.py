"""The evaluation pass: run a dev or test set through the model, decode, score, report.

:class:`Decodings` collects the towers' per-utterance results of any pass (also a training
epoch on display steps) and turns them into a WER report (report.py). Evaluation with a
language model (``ds_lm_path``) decodes the logits here, outside the graph; training never
does. :func:`validate` is the dev pass of training: it also keeps the best-dev checkpoint and
the early-stopping and learning-rate state.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from util.decoding.decoder import (
    DecoderError,
    DecodingOptions,
    LmDecoder,
    TextDecoder,
    tune_weights,
)
from util.decoding.report import Report, build_report, format_report, score_sample
from util.run.checkpoints import BEST_DEV_DIR, CHECKPOINT_NAME, CheckpointError, save
from util.run.config import Config
from util.run.contexts import (
    ExecutionContext,
    Run,
    RunError,
    create_execution_context,
    start_execution_context,
    stop_execution_context,
)


class Decodings:
    """The decoded text, loss and edit distance of each utterance of a pass, gathered from
    the values of :meth:`fetches` step by step (a refilled utterance is counted once). The
    text is decoded as the transcriber decodes it (util.decoding.decoder.TextDecoder):
    the towers' beam search, or the language model's with ``language_model`` and
    ``ds_lm_path``, then spelling correction of every hypothesis."""

    def __init__(
        self,
        config: Config,
        context: ExecutionContext,
        language_model: bool = False,
        keep_logits: bool = False,
    ):
        self.config, self.data_set, towers = config, context.data_set, context.tower_results
        options = DecodingOptions.from_config(config)
        if not language_model:
            options = dataclasses.replace(options, lm_path="")
        try:
            self.decoder = TextDecoder(options, config.alphabet)
        except DecoderError as error:
            raise RunError(str(error)) from error
        self.lm = self.decoder.lm
        self.fetches = {
            "results": (towers.decodings, towers.total_losses, towers.distances, towers.indices)
        }
        if self.lm is not None or keep_logits:
            self.fetches["logits"] = (towers.logits, towers.logit_lengths)
        self.results: dict[int, tuple[str, float, float]] = {}
        self.keep_logits = keep_logits
        self.logits: dict[int, np.ndarray] = {}  # with keep_logits: [time, classes] of each

    def add(self, values: dict) -> None:
        """Take the results of one step (``values`` holds at least :attr:`fetches`)."""
        for tower, (decoded, losses, distances, indices) in enumerate(
            zip(*values["results"], strict=True)
        ):
            rows = [[] for _ in range(len(indices))]
            for (row, _), label in zip(decoded.indices, decoded.values, strict=True):
                rows[row].append(label)
            for i, index in enumerate(indices):
                if int(index) in self.results:  # a refill: counted once
                    continue
                if "logits" in values:
                    logits, lengths = (tensor[tower] for tensor in values["logits"])
                    if self.keep_logits:
                        self.logits[int(index)] = np.array(logits[: lengths[i], i])
                if self.lm is not None:
                    text = self.decoder.search(logits[: lengths[i], i])
                else:
                    text = self.decoder.labels_to_text(rows[i])
                self.results[int(index)] = (text, float(losses[i]), float(distances[i]))

    def report(self, loss: float) -> Report:
        """The WER report of the pass, whose mean loss is ``loss``."""
        samples = self.data_set.samples
        scored = [
            score_sample(samples[i].name, samples[i].transcript, text, sample_loss,
                         samples[i].duration, correct=self.decoder.correct)
            for i, (text, sample_loss, _) in sorted(self.results.items())
        ]  # fmt: skip
        avg_cer = sum(d for _, _, d in self.results.values()) / len(self.results)
        return build_report(self.data_set.name, loss, avg_cer, scored,
                            self.decoder.options.describe(),
                            self.decoder.options.spelling)  # fmt: skip


def progress(steps: range, description: str):
    """``steps`` with a progress bar and ETA when stdout is a terminal."""
    return tqdm(steps, desc=description, unit="batch", leave=False,
                disable=not sys.stdout.isatty())  # fmt: skip


def run_step(session, fetches: dict, data_set_name: str, **options) -> dict:
    """One ``session.run``; a queue closed under it (a feeder thread failed) is a RunError."""
    try:
        return session.run(fetches, **options)
    except tf.errors.OutOfRangeError as error:
        raise RunError(
            f"the {data_set_name} queue was closed: a feeder thread stopped (see the message above)"
        ) from error


def evaluate(
    run: Run, context: ExecutionContext, session, decodings: Decodings | None = None
) -> tuple[float, Report]:
    """One pass over the context's data set without training: the mean loss over the
    batches with a finite loss, and the WER report (decoded by ``decodings``, by default
    with the language model)."""
    data_set = context.data_set
    decodings = decodings or Decodings(run.config, context, language_model=True)
    fetches = {"loss": context.tower_results.mean_loss, **decodings.fetches}
    total_loss, counted = 0.0, 0
    for _ in progress(range(data_set.steps_per_epoch), data_set.name):
        values = run_step(session, fetches, data_set.name)
        if np.isfinite(values["loss"]):
            total_loss += float(values["loss"])
            counted += 1
        decodings.add(values)
    loss = total_loss / counted if counted else float("nan")
    return loss, decodings.report(loss)


def run_set(
    run: Run, set_name: str, model_path: str, language_model: bool = True
) -> tuple[float, Report]:
    """Evaluate a model checkpoint on a whole set (dev or test), writing its report; decoded
    with the language model (when ``ds_lm_path`` has one) unless ``language_model`` is off."""
    context = create_execution_context(run, set_name)
    session, coord, threads = start_execution_context(run, context, model_path)
    try:
        decodings = Decodings(run.config, context, language_model=language_model)
        loss, report = evaluate(run, context, session, decodings)
    finally:
        stop_execution_context(context, session, coord, threads)
    run.log.report(set_name, report.as_dict())
    return loss, report


TUNE_ALPHAS = (0.3, 0.5, 0.8, 1.2, 1.6)  # ds_lm_tune's grid
TUNE_BETAS = (0.0, 1.0, 2.0, 4.0)
# Beams of the grid search (at most ds_beam_width): the search's cost grows with the beams,
# the best weights hardly do.
TUNE_BEAM_WIDTH = 32


def tune_language_model(run: Run, model_path: str) -> dict:
    """ds_lm_tune: the language model's weights that decode the dev set best (lowest WER,
    then CER) with the checkpoint ``model_path``, from a grid search over
    :data:`TUNE_ALPHAS` and :data:`TUNE_BETAS` (the dev set's logits computed once, decoded
    with :data:`TUNE_BEAM_WIDTH` beams), set in ``run.config`` for the test and the export
    and printed. Returns alpha, beta, dev_wer, dev_cer and utterances; the test set plays no
    part."""
    config = run.config
    context = create_execution_context(run, "dev")
    session, coord, threads = start_execution_context(run, context, model_path)
    try:
        decodings = Decodings(config, context, keep_logits=True)
        evaluate(run, context, session, decodings)
    finally:
        stop_execution_context(context, session, coord, threads)
    samples = context.data_set.samples
    indices = sorted(decodings.logits)
    try:
        decoder = LmDecoder(config.lm_path, config.lm_alpha, config.lm_beta,
                            min(config.beam_width, TUNE_BEAM_WIDTH), config.alphabet)  # fmt: skip
    except DecoderError as error:
        raise RunError(str(error)) from error
    best, _ = tune_weights(decoder, [decodings.logits[i] for i in indices],
                           [samples[i].transcript for i in indices], TUNE_ALPHAS,
                           TUNE_BETAS)  # fmt: skip
    run.config = dataclasses.replace(config, lm_alpha=best["alpha"], lm_beta=best["beta"])
    print(f"Language model weights chosen on {len(indices)} dev utterances: "
          f"ds_lm_alpha={best['alpha']:g} ds_lm_beta={best['beta']:g} (dev WER "
          f"{best['wer']:.4f}, CER {best['cer']:.4f})", flush=True)  # fmt: skip
    return {"alpha": best["alpha"], "beta": best["beta"], "dev_wer": best["wer"],
            "dev_cer": best["cer"], "utterances": len(indices)}  # fmt: skip


def validate(run: Run, context: ExecutionContext, session, checkpoint: str, number: int):
    """Evaluate the dev set on ``checkpoint``, the one just saved after epoch ``number``; keep
    the best-dev checkpoint and update the early-stopping and plateau counters of the
    training ``context``. Returns (dev loss, report, stop early?)."""
    config, state = run.config, context.training.state
    dev_loss, dev_report = run_set(run, "dev", checkpoint, language_model=config.validation_lm)
    print(format_report("Validation", dev_report, config.report_count))
    best, es_count, plateau_count, learning_rate = session.run(
        [state["best_dev_loss"], state["es_count"], state["plateau_count"],
         state["learning_rate"]]
    )  # fmt: skip
    if dev_loss < best - config.es_min_delta or not np.isfinite(best):
        best, es_count, plateau_count = dev_loss, 0, 0
        state["best_dev_loss"].load(best, session)
        prefix = os.path.join(config.checkpoint_dir, BEST_DEV_DIR, CHECKPOINT_NAME)
        try:
            path = save(context.best_dev_saver, session, f"{prefix}-{number}", None)
        except CheckpointError as error:
            raise RunError(str(error)) from error
        print(f"New best dev loss {dev_loss:.4f}: saved {path}")
    else:
        es_count, plateau_count = es_count + 1, plateau_count + 1
    stop = config.early_stop and es_count >= config.es_epochs
    if stop:
        print(f"Early stop: the dev loss has not improved by ds_es_min_delta="
              f"{config.es_min_delta:g} in {es_count} validations")  # fmt: skip
    if config.reduce_lr_on_plateau and plateau_count >= config.plateau_epochs:
        learning_rate *= config.plateau_reduction
        plateau_count = 0
        state["learning_rate"].load(learning_rate, session)
        print(f"Dev loss on a plateau: learning rate lowered to {learning_rate:g}")
    state["es_count"].load(es_count, session)
    state["plateau_count"].load(plateau_count, session)
    return dev_loss, dev_report, stop
