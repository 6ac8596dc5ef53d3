"""The feature geometry every layer agrees on, named once.

The recipe is the 2017 original's: 16 kHz mono audio on the 16-bit scale; MFCC frames from
25 ms windows every 10 ms (python_speech_features' settings: pre-emphasis 0.97, a 512-point
FFT, 26 mel filters, the lifter 22); every second frame kept, so a time step is 20 ms; 9
frames of context each side, giving 19 x 26 = 494 values a step. util.data.audio computes it
in numpy, util.data.audio_graph in TensorFlow ops, util.data.augment perturbs it.
"""

from __future__ import annotations

import math

SAMPLE_RATE = 16000  # Hz
WINDOW_SECONDS = 0.025
STEP_SECONDS = 0.010
FRAME_STRIDE = 2  # keep every second MFCC frame
TIME_STEP_SECONDS = STEP_SECONDS * FRAME_STRIDE  # 0.02: one step of the model
N_INPUT = 26  # MFCC coefficients per frame
N_FILTERS = 26  # mel filters
FFT_SIZE = 512
CEP_LIFTER = 22
PREEMPHASIS = 0.97
MAX_HZ = SAMPLE_RATE // 2  # upper edge of the mel filterbank; 4000 suits telephone audio
N_CONTEXT = 9  # frames of context on each side
# Audio is float on the 16-bit scale: int16 samples as they are, float files times 32768.
# Perturbed audio is clipped to the largest int16 value.
INT16_SCALE = 32768.0
INT16_MAX = INT16_SCALE - 1  # 32767
# How features are normalised per utterance (ds_feature_norm): all together (the 2017 recipe)
# or each MFCC coefficient on its own (cepstral mean and variance normalisation).
# "none" leaves them as they are: what a streaming model needs, which cannot wait for the end of
# an utterance to know its mean (ds_model=unidirectional). "global" normalises each coefficient
# by the training set's mean and deviation, which the model keeps and applies itself (so a
# stream can use it too); its input features are the un-normalised ones. "speech" is
# "coefficient" with the statistics taken over the frames within SILENCE_FLOOR of the
# utterance's loudest, so that silence around the speech (a segment cut from a long recording
# keeps some) neither moves them nor stands out: its log energy is raised to that floor.
FEATURE_NORMS = ("utterance", "coefficient", "none", "global", "speech")
# Frames quieter than this below an utterance's loudest count as silence for ds_feature_norm=
# speech: 40 dB, in the natural-log energy units of the first MFCC coefficient.
SILENCE_FLOOR = math.log(1e4)
# The normalisations that take each coefficient by its own statistics over the utterance.
PER_COEFFICIENT = ("coefficient", "speech")
# The normalisations whose input features are the frames as they are (the model may still
# normalise them: "global").
UNNORMALISED_INPUTS = ("none", "global")
# The acoustic model (ds_model): the 2017 bidirectional LSTM, or a forward-only one whose only
# look-ahead is the context window, which can transcribe audio as it arrives.
MODEL_KINDS = ("birnn", "unidirectional")


def feature_width(numcep: int = N_INPUT, numcontext: int = N_CONTEXT) -> int:
    """Width of one time step's features: a frame and ``numcontext`` frames each side."""
    return numcep + 2 * numcep * numcontext


N_FEATURES = feature_width()  # 494
