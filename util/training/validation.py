"""What training does with the dev set: validation after an epoch (the best-dev checkpoint,
early stopping, a lower learning rate on a plateau) and, after training, the choice of the
language model's weights (``ds_lm_tune``)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from util.decoding.decoder import DecoderError, DecodingOptions, LmDecoder, tune_weights
from util.decoding.report import format_report
from util.training.checkpoints import BEST_DEV_DIR, CHECKPOINT_NAME, CheckpointError, save
from util.training.contexts import (
    ExecutionContext,
    Run,
    RunError,
    create_execution_context,
    start_execution_context,
    stop_execution_context,
)
from util.training.evaluate import Decodings, evaluate, run_set

TUNE_ALPHAS = (0.3, 0.5, 0.8, 1.2, 1.6)  # ds_lm_tune's grid
TUNE_BETAS = (0.0, 1.0, 2.0, 4.0)
# Beams of the grid search (at most ds_beam_width): the search's cost grows with the beams,
# the best weights hardly do.
TUNE_BEAM_WIDTH = 32


@dataclasses.dataclass(frozen=True)
class LmChoice:
    """The language model's weights ``ds_lm_tune`` chose on the dev set, and what they scored."""

    alpha: float
    beta: float
    dev_wer: float
    dev_cer: float
    utterances: int

    def applied_to(self, options: DecodingOptions) -> DecodingOptions:
        """``options`` decoding with these weights (for the test report and the export)."""
        return dataclasses.replace(options, lm_alpha=self.alpha, lm_beta=self.beta)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        return (
            f"Language model weights chosen on {self.utterances} dev utterances: "
            f"ds_lm_alpha={self.alpha:g} ds_lm_beta={self.beta:g} "
            f"(dev WER {self.dev_wer:.4f}, CER {self.dev_cer:.4f})"
        )


def dev_logits(run: Run, model_path: str) -> tuple[list[np.ndarray], list[str]]:
    """The logits [time, classes] of every dev utterance under the checkpoint ``model_path``,
    and their transcripts, in the set's order."""
    context = create_execution_context(run, "dev")
    session, coord, threads = start_execution_context(run, context, model_path)
    try:
        decodings = Decodings(run.config, context, keep_logits=True)
        evaluate(run, context, session, decodings)
    finally:
        stop_execution_context(context, session, coord, threads, run.log)
    indices = sorted(decodings.logits)
    samples = context.data_set.samples
    return [decodings.logits[i] for i in indices], [samples[i].transcript for i in indices]


def tune_language_model(run: Run, model_path: str) -> LmChoice:
    """ds_lm_tune: the language model's weights that decode the dev set best (lowest WER,
    then CER) with the checkpoint ``model_path``, from a grid search over
    :data:`TUNE_ALPHAS` and :data:`TUNE_BETAS` (the dev set's logits computed once, decoded
    with :data:`TUNE_BEAM_WIDTH` beams). The test set plays no part; the run's settings are
    left as they are: the caller decodes with :meth:`LmChoice.applied_to`."""
    config = run.config
    logits, transcripts = dev_logits(run, model_path)
    try:
        decoder = LmDecoder(
            config.lm_path,
            config.lm_alpha,
            config.lm_beta,
            min(config.beam_width, TUNE_BEAM_WIDTH),
            config.alphabet,
        )
    except DecoderError as error:
        raise RunError(str(error)) from error
    best, _ = tune_weights(decoder, logits, transcripts, TUNE_ALPHAS, TUNE_BETAS)
    return LmChoice(best["alpha"], best["beta"], best["wer"], best["cer"], len(logits))


def validate(run: Run, context: ExecutionContext, session, checkpoint: str, number: int):
    """Evaluate the dev set on ``checkpoint``, the one just saved after epoch ``number``; keep
    the best-dev checkpoint and update the early-stopping and plateau counters of the
    training ``context``. Returns (dev loss, report, stop early?)."""
    config, state = run.config, context.training.state
    dev_loss, dev_report = run_set(run, "dev", checkpoint, language_model=config.validation_lm)
    print(format_report("Validation", dev_report, config.report_count))
    best, es_count, plateau_count, learning_rate = session.run(
        [state["best_dev_loss"], state["es_count"], state["plateau_count"], state["learning_rate"]]
    )
    if dev_loss < best - config.es_min_delta or not np.isfinite(best):
        best, es_count, plateau_count = dev_loss, 0, 0
        state["best_dev_loss"].load(best, session)
        prefix = os.path.join(config.checkpoint_dir, BEST_DEV_DIR, CHECKPOINT_NAME)
        try:
            path = save(context.best_dev_saver, session, f"{prefix}-{number}", None, keep=1)
        except CheckpointError as error:
            raise RunError(str(error)) from error
        print(f"New best dev loss {dev_loss:.4f}: saved {path}")
    else:
        es_count, plateau_count = es_count + 1, plateau_count + 1
    stop = config.early_stop and es_count >= config.es_epochs
    if stop:
        print(
            f"Early stop: the dev loss has not improved by ds_es_min_delta="
            f"{config.es_min_delta:g} in {es_count} validations"
        )
    if config.reduce_lr_on_plateau and plateau_count >= config.plateau_epochs:
        learning_rate *= config.plateau_reduction
        plateau_count = 0
        state["learning_rate"].load(learning_rate, session)
        print(f"Dev loss on a plateau: learning rate lowered to {learning_rate:g}")
    state["es_count"].load(es_count, session)
    state["plateau_count"].load(plateau_count, session)
    return dev_loss, dev_report, stop
