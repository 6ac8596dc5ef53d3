"""util.training.evaluate: the decodings of a pass gathered step by step into a WER report; the real
evaluation pass is exercised end to end by test_deepspeech.py and test_decoder.py."""

from types import SimpleNamespace

import numpy as np
import tensorflow.compat.v1 as tf

from util.data.samples import Sample
from util.data.text import text_to_char_array
from util.settings.config import Config
from util.training.evaluate import Decodings


def sparse(rows: list[str]) -> tf.SparseTensorValue:
    """A decoder's best paths for ``rows`` as the session returns them."""
    indices, values = [], []
    for row, text in enumerate(rows):
        for column, label in enumerate(text_to_char_array(text)):
            indices.append((row, column))
            values.append(label)
    width = max((len(text) for text in rows), default=0)
    return tf.SparseTensorValue(
        np.array(indices, np.int64).reshape(-1, 2), np.array(values, np.int32), (len(rows), width)
    )


def context(transcripts: list[str]):
    samples = [
        Sample(f"/data/{i}.wav", text, duration=1.0 + i) for i, text in enumerate(transcripts)
    ]
    towers = SimpleNamespace(
        decodings=["d"],
        total_losses=["l"],
        distances=["e"],
        indices=["i"],
        logits=["x"],
        logit_lengths=["n"],
    )
    return SimpleNamespace(
        data_set=SimpleNamespace(name="dev", samples=samples), tower_results=towers
    )


def step(rows, losses, distances, indices):
    """One tower's fetched values."""
    return {
        "results": ([sparse(rows)], [np.array(losses)], [np.array(distances)], [np.array(indices)])
    }


def test_a_pass_is_gathered_once_per_utterance_and_reported():
    config = Config(checkpoint_dir="unused", spelling="off")
    decodings = Decodings(config, context(["one two", "three four", "five"]))
    assert set(decodings.fetches) == {"results"}  # no language model: no logits fetched
    decodings.add(step(["one two", "three for"], [1.0, 2.0], [0.0, 0.1], [0, 1]))
    # The last step is refilled with the first sample: it counts once.
    decodings.add(step(["five", "one tw"], [3.0, 9.0], [0.0, 0.2], [2, 0]))
    assert sorted(decodings.results) == [0, 1, 2]
    assert decodings.results[0] == ("one two", 1.0, 0.0)
    report = decodings.report(2.0)
    assert report.set == "dev" and report.loss == 2.0
    assert [s.res for s in report.samples] == ["one two", "three for", "five"]
    assert [s.wav_filename for s in report.samples] == ["/data/0.wav", "/data/1.wav", "/data/2.wav"]
    assert report.wer == 1 / 5  # one wrong word of five
    assert report.avg_cer == np.mean([0.0, 0.1, 0.0])
    assert report.decoder == "beam search" and report.spelling == "off"
