"""util.training.validation: ds_lm_tune's choice is returned, not written into the settings
(the end-to-end search on a trained model is tests/test_transcriber.py's)."""

import dataclasses

from util.decoding.decoder import DecodingOptions
from util.settings.config import Config
from util.training.validation import TUNE_ALPHAS, TUNE_BETAS, LmChoice


def test_the_choice_changes_only_the_weights_of_the_options_it_is_applied_to():
    choice = LmChoice(alpha=1.2, beta=2.0, dev_wer=0.25, dev_cer=0.1, utterances=16)
    config = Config(lm_alpha=0.5, lm_beta=1.0, beam_width=64, checkpoint_dir="unused")
    options = DecodingOptions.from_config(config)
    tuned = choice.applied_to(options)
    assert (tuned.lm_alpha, tuned.lm_beta) == (1.2, 2.0)
    assert dataclasses.replace(tuned, lm_alpha=0.5, lm_beta=1.0) == options
    assert (config.lm_alpha, config.lm_beta) == (0.5, 1.0)  # the settings are left alone
    assert choice.as_dict() == {
        "alpha": 1.2,
        "beta": 2.0,
        "dev_wer": 0.25,
        "dev_cer": 0.1,
        "utterances": 16,
    }
    assert choice.describe() == (
        "Language model weights chosen on 16 dev utterances: ds_lm_alpha=1.2 ds_lm_beta=2 "
        "(dev WER 0.2500, CER 0.1000)"
    )
    assert 1.2 in TUNE_ALPHAS and 2.0 in TUNE_BETAS
