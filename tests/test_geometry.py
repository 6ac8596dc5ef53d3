"""util.settings.geometry: the feature recipe's numbers, named once, are the 2017 recipe's:
python_speech_features' own defaults for what the original left to them."""

import inspect

import numpy as np
from helpers import synth_speech
from python_speech_features import mfcc

from util.data.audio import mfcc_frames
from util.settings import geometry


def test_the_named_numbers_are_python_speech_features_defaults():
    defaults = {
        name: parameter.default for name, parameter in inspect.signature(mfcc).parameters.items()
    }
    assert defaults["samplerate"] == geometry.SAMPLE_RATE
    assert defaults["winlen"] == geometry.WINDOW_SECONDS
    assert defaults["winstep"] == geometry.STEP_SECONDS
    assert defaults["nfilt"] == geometry.N_FILTERS
    assert defaults["nfft"] == geometry.FFT_SIZE
    assert defaults["preemph"] == geometry.PREEMPHASIS
    assert defaults["ceplifter"] == geometry.CEP_LIFTER
    assert geometry.N_FEATURES == geometry.feature_width() == 494
    assert geometry.TIME_STEP_SECONDS == 0.02 and geometry.INT16_MAX == 32767


def test_the_frames_are_every_second_frame_of_the_library_s_defaults():
    audio = synth_speech(1.3, noise=0.01) * 20000
    ours = mfcc_frames(audio)
    theirs = mfcc(audio, numcep=geometry.N_INPUT)[:: geometry.FRAME_STRIDE]
    assert ours.shape == (len(theirs), geometry.N_INPUT)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)
