"""The evaluation pass: run a dev or test set through the model, decode, score, report.

:class:`Decodings` collects the towers' per-utterance results of any pass (also a training
epoch on display steps) and turns them into a WER report (util.decoding.report). Evaluation
with a language model (``ds_lm_path``) decodes the logits here, outside the graph; training
never does. What training does with a dev pass is validation.py's.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from util.decoding.decoder import DecoderError, DecodingOptions, TextDecoder
from util.decoding.report import Report, build_report, score_sample
from util.settings.config import Config
from util.training.contexts import (
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
    text is decoded as the transcriber decodes it (util.decoding.decoder.TextDecoder) with
    ``decoding`` (default: the run's settings): the towers' beam search, or the language
    model's with ``language_model`` and ``ds_lm_path``, then spelling correction of every
    hypothesis."""

    def __init__(
        self,
        config: Config,
        context: ExecutionContext,
        language_model: bool = False,
        keep_logits: bool = False,
        decoding: DecodingOptions | None = None,
    ):
        self.config, self.data_set, towers = config, context.data_set, context.tower_results
        options = decoding or DecodingOptions.from_config(config)
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
            score_sample(
                samples[i].name,
                samples[i].transcript,
                text,
                sample_loss,
                samples[i].duration,
                correct=self.decoder.correct,
            )
            for i, (text, sample_loss, _) in sorted(self.results.items())
        ]
        avg_cer = sum(d for _, _, d in self.results.values()) / len(self.results)
        return build_report(
            self.data_set.name,
            loss,
            avg_cer,
            scored,
            self.decoder.options.describe(),
            self.decoder.options.spelling,
        )


def progress(steps: range, description: str):
    """``steps`` with a progress bar and ETA when stdout is a terminal."""
    return tqdm(steps, desc=description, unit="batch", leave=False, disable=not sys.stdout.isatty())


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
    run: Run,
    set_name: str,
    model_path: str,
    language_model: bool = True,
    decoding: DecodingOptions | None = None,
) -> tuple[float, Report]:
    """Evaluate a model checkpoint on a whole set (dev or test), writing its report; decoded
    as ``decoding`` says (default: the run's settings), with the language model (when there
    is one) unless ``language_model`` is off."""
    context = create_execution_context(run, set_name)
    session, coord, threads = start_execution_context(run, context, model_path)
    try:
        decodings = Decodings(run.config, context, language_model, decoding=decoding)
        loss, report = evaluate(run, context, session, decodings)
    finally:
        stop_execution_context(context, session, coord, threads, run.log)
    run.log.report(set_name, report.as_dict())
    return loss, report
