"""Streaming (ds_model=unidirectional): the streaming export, the incremental features and beam
search, Transcriber.stream(), against the whole-utterance path of the same model.

The quick tests use a model with random weights (its logits are as good as any for comparing
two ways of computing them) and a language model of a few sentences; the slow ones a model
trained here, the documented plain clients and bin/transcribe.py --stream."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow.compat.v1 as tf
from helpers import (
    LDC93S1_WAV,
    REPO_ROOT,
    SENTENCE,
    SMALL_MODEL,
    documented_client,
    run_isolated,
    run_main,
    synth_speech,
)
from pyctcdecode import build_ctcdecoder
from pygtrie import CharTrie

from util.data.audio import audio_to_input_vector
from util.decoding.arpa import build_arpa
from util.decoding.decoder import UNKNOWN_WORD_OFFSET, HotWords, LmDecoder
from util.decoding.search import IncrementalSearch
from util.model.birnn import BiRNN, ModelGeometry
from util.model.export_files import OP_GRAPH, STREAMING_GRAPH, STREAMING_TFLITE, TFLITE
from util.training.checkpoints import feature_norm_variable
from util.training.export import ExportOptions, export
from util.transcriber import ModelError, Transcriber
from util.transcriber.streaming import StreamFeatures

tf.disable_v2_behavior()

SENTENCES = [
    "she had your dark suit in greasy wash water all year",
    "the red cat sat on the mat",
    "a dog ran in the sun",
    "green trees grow by the moon",
]
CHUNK_MS = (20, 80, 320)
TRANSCRIBE = os.path.join(REPO_ROOT, "bin", "transcribe.py")


def random_checkpoint(folder, geometry: ModelGeometry) -> str:
    """A checkpoint of ``geometry``'s model with random weights (features unnormalised)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(7)
        features = tf.placeholder(tf.float32, [None, None, geometry.n_features])
        BiRNN(features, tf.placeholder(tf.int32, [None]), [0.0] * 6, geometry, training=False)
        feature_norm_variable("none")
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            return tf.train.Saver().save(session, os.path.join(folder, "model.ckpt"))


@pytest.fixture(scope="module")
def random_export(tmp_path_factory):
    """A unidirectional model of width 48 with random weights, exported with a language model
    (and the TFLite models); and the same with the BiRNN."""
    root = tmp_path_factory.mktemp("streaming")
    lm = root / "lm.arpa"
    lm.write_text(build_arpa(SENTENCES))
    exports = {}
    for kind in ("unidirectional", "birnn"):
        geometry = ModelGeometry(n_hidden=48, kind=kind, default_stddev=0.3)
        (root / kind).mkdir()
        checkpoint = random_checkpoint(str(root / kind), geometry)
        options = ExportOptions(
            feature_norm="none",
            lm_path=str(lm),
            decoding={"beam_width": 32, "lm_alpha": 0.5, "lm_beta": 1.0, "spelling": "off"},
        )
        export(checkpoint, str(root / kind / "export"), geometry, None, options)
        exports[kind] = root / kind / "export"
    return {"export": exports["unidirectional"], "birnn": exports["birnn"], "lm": str(lm)}


def speech(seconds: float, seed: int) -> np.ndarray:
    """Speech-like float samples in [-1, 1]."""
    return synth_speech(seconds, seed=seed).astype(np.float32)


def streamed(model: Transcriber, audio: np.ndarray, sizes):
    """Feed ``audio`` in pieces of ``sizes`` samples (cycled); returns (transcript, the
    stream's logits, the intermediate results after each piece)."""
    stream = model.stream()
    intermediate, start, index = [], 0, 0
    while start < len(audio):
        size = sizes[index % len(sizes)]
        stream.feed(audio[start : start + size])
        intermediate.append(stream.intermediate())
        start, index = start + size, index + 1
    result = stream.finish()
    return result, stream.last_logits, intermediate


def odd_sizes(seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(1, 9000, 40).tolist()


@pytest.mark.parametrize("sizes", [[ms * 16] for ms in CHUNK_MS] + [odd_sizes(1), [1, 7, 333]])
def test_a_stream_gives_the_whole_utterance_logits_and_transcript(random_export, sizes):
    model = Transcriber(str(random_export["export"]))
    assert model.decoder.lm is not None  # the export's language model: the incremental search
    audio = speech(3.1, seed=3)
    whole = model.transcribe(audio)
    whole_logits = model.backend.run(audio * 32768.0)
    result, logits, _ = streamed(model, audio, sizes)
    assert logits.shape == whole_logits.shape
    np.testing.assert_allclose(logits, whole_logits, rtol=1e-4, atol=1e-4)
    assert result.text == whole.text and result.raw == whole.raw
    assert [(w.word, w.start, w.end) for w in result.words] == [
        (w.word, w.start, w.end) for w in whole.words
    ]


def test_the_tflite_stream_agrees_with_the_frozen_stream_and_its_whole_utterance(random_export):
    folder = random_export["export"]
    assert (folder / STREAMING_GRAPH).is_file() and (folder / STREAMING_TFLITE).is_file()
    audio = speech(2.3, seed=5)
    graph_result, graph_logits, _ = streamed(Transcriber(str(folder)), audio, [1000])
    tflite = Transcriber(str(folder / TFLITE["float32"]))
    result, logits, _ = streamed(tflite, audio, [2222])
    np.testing.assert_allclose(logits, graph_logits, rtol=1e-4, atol=1e-4)
    assert result.text == graph_result.text == tflite.transcribe(audio).text


def test_no_state_passes_from_one_utterance_or_stream_to_another(random_export):
    model = Transcriber(str(random_export["export"]))
    first, second = speech(2.0, seed=8), speech(1.7, seed=9)
    alone, alone_logits, _ = streamed(model, second, [640])
    # After a finished utterance, after one dropped half way, and beside another stream.
    stream = model.stream()
    stream.feed(first)
    stream.finish()
    stream.feed(first[:9000])
    stream.reset()
    other = model.stream()
    other.feed(first[:5000])
    for start in range(0, len(second), 640):
        stream.feed(second[start : start + 640])
        other.feed(first[5000 + start : 5640 + start])
    result = stream.finish()
    np.testing.assert_array_equal(stream.last_logits, alone_logits)
    assert result.text == alone.text


def test_features_in_pieces_are_the_whole_utterance_features():
    audio = (speech(1.3, seed=11) * 32768).astype(np.float32)
    whole = audio_to_input_vector(audio, norm="none")
    for sizes, batch in (([1], 0), ([320], 0), ([401, 7], 0), (odd_sizes(2), 0), ([320], 5120)):
        features = StreamFeatures(26, 9, 8000, batch=batch)
        pieces, start, index = [], 0, 0
        while start < len(audio):
            size = sizes[index % len(sizes)]
            pieces.append(features.feed(audio[start : start + size]))
            start, index = start + size, index + 1
        pieces.append(features.finish())
        np.testing.assert_array_equal(np.concatenate(pieces), whole)
        if batch:  # computed only once a batch of samples has come
            assert sum(len(p) > 0 for p in pieces) <= len(audio) // batch + 1
    for length in (1, 250, 400, 721):  # shorter than a window, a window, a little more
        features = StreamFeatures(26, 9, 8000)
        got = np.concatenate([features.feed(audio[:length]), features.finish()])
        np.testing.assert_array_equal(got, audio_to_input_vector(audio[:length], norm="none"))


def noisy_spelling(text: str, seed: int) -> np.ndarray:
    """Logits that spell ``text`` with doubt: every letter followed by blanks, noise on all."""
    alphabet = " abcdefghijklmnopqrstuvwxyz'"
    rng = np.random.default_rng(seed)
    steps = []
    for char in text:
        for boost, index in ((4.0, alphabet.index(char)), (3.0, 28), (2.0, 28)):
            row = rng.normal(0, 2.0, 29)
            row[index] += boost
            steps.append(row)
    return np.array(steps, np.float32)


def pyctcdecode_best(lm, logits, hot_words, hot: bool) -> tuple[str, float]:
    """pyctcdecode's own whole-utterance search (its decode, or its search with hot-words):
    the best transcript and its score."""
    return lm._search(logits, hot_words if hot else None, prune_history=True)[0]


@pytest.mark.parametrize("with_lm", [True, False])
def test_the_incremental_search_ends_where_the_whole_search_does(random_export, with_lm):
    lm = LmDecoder(random_export["lm"] if with_lm else "", alpha=0.5, beta=1.0, beam_width=24)
    hot_words = HotWords({"greasy": 4.0, "dog": -6.0})
    rng = np.random.default_rng(0)
    for seed, text in enumerate(SENTENCES):
        logits = noisy_spelling(text.replace("greasy", "greacy"), seed)
        expected = {hot: pyctcdecode_best(lm, logits, hot_words, hot) for hot in (False, True)}
        for hot in (False, True) if with_lm else (True,):
            search = IncrementalSearch(lm, hot_words if hot else None)
            start = 0
            while start < len(logits):
                size = int(rng.integers(1, 20))
                search.advance(logits[start : start + size])
                start += size
            assert (search.finish(), search.score) == expected[hot], (text, hot)
    assert IncrementalSearch(lm).finish() == ""  # no audio, no words


def test_searches_share_what_they_learn_while_the_weights_and_hot_words_stay(random_export):
    # One decoder's searches share their language-model scores (a stream's utterances, the
    # sentences of a file); new weights or hot-words start afresh: the transcripts and scores
    # are a new decoder's with those weights, to the last bit.
    lm = LmDecoder(random_export["lm"], alpha=0.5, beta=1.0, beam_width=24)
    logits = [noisy_spelling(text, seed) for seed, text in enumerate(SENTENCES)]
    first = [lm.decode_beams(x)[0] for x in logits]
    caches = lm.search_caches()
    assert lm.search_caches() is caches and len(caches.text_scores) > len(SENTENCES)
    lm.set_weights(1.5, -0.5)
    again = [lm.decode_beams(x)[0] for x in logits]
    fresh = LmDecoder(random_export["lm"], alpha=1.5, beta=-0.5, beam_width=24)
    assert again == [fresh.decode_beams(x)[0] for x in logits]
    assert again == [pyctcdecode_best(fresh, x, None, False) for x in logits]
    assert [score for _, score in again] != [score for _, score in first]
    assert lm.search_caches() is not caches
    hot_words = HotWords({"dog": 3.0})
    assert lm.search_caches(hot_words) is not lm.search_caches(HotWords({"dog": 3.0}))


def test_partial_words_score_as_pyctcdecode_scores_them(random_export):
    lm = LmDecoder(random_export["lm"])
    language_model = lm._decoder._language_model
    words = sorted(language_model._unigram_set)
    rng = np.random.default_rng(3)
    parts = [w[:n] for w in words for n in range(1, len(w) + 1)]
    parts += ["".join(rng.choice(list("abcdeht'"), int(rng.integers(1, 12)))) for _ in range(500)]
    parts += [words[-1] + "z", "zzzzzzzzzzzzzz", words[0][:1]]
    scores = [lm.partial_word_score(p) for p in parts]
    # pyctcdecode's own numbers, from its character trie (which LmDecoder replaces)
    assert not isinstance(language_model._char_trie, CharTrie)
    pristine = build_ctcdecoder(
        [*" abcdefghijklmnopqrstuvwxyz'", ""],
        kenlm_model_path=random_export["lm"],
        unigrams=words,
        unk_score_offset=UNKNOWN_WORD_OFFSET,
    )._language_model
    assert isinstance(pristine._char_trie, CharTrie) and pristine._unigram_set == set(words)
    assert scores == [pristine.score_partial_token(p) for p in parts]
    assert [language_model.score_partial_token(p) for p in parts + [""]] == [
        pristine.score_partial_token(p) for p in parts + [""]
    ]
    assert 0.0 in scores and min(scores) < 2 * UNKNOWN_WORD_OFFSET  # known, and long unknown
    assert scores == [lm.partial_word_score(p) for p in parts]  # remembered, the same


def confident_spelling(text: str, seed: int) -> np.ndarray:
    """Logits of a confident model: each letter a peak or two, then a run of near-certain
    blanks (where only the blank is likely), some letters in doubt with another."""
    alphabet = " abcdefghijklmnopqrstuvwxyz'"
    rng = np.random.default_rng(seed)
    steps = []
    for char in text:
        for _ in range(int(rng.integers(1, 3))):
            row = rng.normal(0, 1.0, 29)
            row[alphabet.index(char)] += 9.0
            if rng.random() < 0.3:  # a second letter in doubt
                row[int(rng.integers(1, 27))] += 8.0
            steps.append(row)
        for _ in range(int(rng.integers(0, 6))):
            row = rng.normal(0, 1.0, 29)
            row[28] += 14.0
            steps.append(row)
    return np.array(steps, np.float32)


@pytest.mark.parametrize("with_lm", [True, False])
def test_the_incremental_search_scores_a_confident_model_as_the_whole_search(
    random_export, with_lm
):
    # Most steps of a confident model take the search's short way (only the blank likely):
    # transcript and score must still be the whole search's to the last bit.
    lm = LmDecoder(random_export["lm"] if with_lm else "", alpha=0.5, beta=1.0, beam_width=16)
    hot_words = HotWords({"greasy": 4.0, "dog": -6.0})
    quiet = 0
    for seed, text in enumerate(SENTENCES):
        logits = confident_spelling(text, seed)
        for hot in (False, True) if with_lm else (True,):
            expected = pyctcdecode_best(lm, logits, hot_words, hot)
            search = IncrementalSearch(lm, hot_words if hot else None)
            for start in range(0, len(logits), 7):
                search.advance(logits[start : start + 7])
            assert (search.finish(), search.score) == expected, (text, hot)
            quiet += search.quiet_steps
    assert quiet > 0 if with_lm else quiet == 0


def test_intermediate_results_grow_and_a_birnn_export_cannot_stream(random_export):
    model = Transcriber(str(random_export["export"]))
    _, _, intermediate = streamed(model, speech(3.0, seed=4), [3200])
    assert intermediate[0] == "" or len(intermediate[0]) <= len(intermediate[-1])
    assert intermediate[-1]  # words before the end (random weights still spell something)
    birnn = Transcriber(str(random_export["birnn"]))
    with pytest.raises(ModelError, match="only a model trained with ds_model=unidirectional"):
        birnn.stream()


# -- a trained streaming model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_stream(tmp_path_factory):
    """ds_model=unidirectional trained on LDC93S1 in two towers until it knows the sentence,
    resumed for one more epoch, exported with a language model of it; and a BiRNN checkpoint
    beside it."""
    root = tmp_path_factory.mktemp("trained-stream")
    lm = root / "lm.arpa"
    lm.write_text(build_arpa([SENTENCE]))
    environ = {
        **SMALL_MODEL,
        "ds_model": "unidirectional",
        "ds_cpu_towers": "2",
        "ds_epochs": "80",
        "ds_lm_path": str(lm),
        "ds_checkpoint_dir": str(root / "ckpt"),
        "ds_logs_dir": str(root / "logs"),
        "ds_export_dir": str(root / "export"),
    }
    status, out, err = run_main({**environ, "ds_export_dir": ""})
    assert status == 0, out + err
    status, out, err = run_main({**environ, "ds_epochs": "81"})  # resumed at epoch 80
    assert status == 0, out + err
    assert "STARTING Epoch 0081" in out and "STARTING Epoch 0080" not in out
    assert " WER: 0.000000 " in out.split("Test loss=")[1]
    birnn = {**SMALL_MODEL, "ds_epochs": "1", "ds_checkpoint_dir": str(root / "birnn")}
    status, out, err = run_main({**birnn, "ds_logs_dir": str(root / "birnn-logs")})
    assert status == 0, out + err
    return {"root": root, "environ": environ, "export": root / "export", "birnn": birnn}


@pytest.mark.slow
def test_a_trained_stream_says_the_first_words_before_the_audio_ends(trained_stream):
    # The compiled op is the BiRNN's: a streaming model's export has no op graph.
    assert not (trained_stream["export"] / OP_GRAPH).exists()
    model = Transcriber(str(trained_stream["export"]))
    audio, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    stream = model.stream()
    heard_at = None
    for first in range(0, len(audio), 320):
        stream.feed(audio[first : first + 320])
        if heard_at is None and stream.intermediate().startswith("she had your"):
            heard_at = first / 16000
    assert heard_at is not None and heard_at < 1.0  # "your" ends at 0.6 s
    assert stream.finish().text == SENTENCE == model.transcribe(LDC93S1_WAV).text


@pytest.mark.slow
@pytest.mark.parametrize(
    "client, model",
    [("stream-client", STREAMING_GRAPH), ("stream-tflite-client", STREAMING_TFLITE)],
)
def test_the_documented_streaming_clients_transcribe_ldc93s1(
    trained_stream, tmp_path, client, model
):
    """docs/export.md's streaming scripts, as written there, in a process with no project
    code."""
    script, _ = documented_client(client, tmp_path)
    model_path = trained_stream["export"] / model
    assert run_isolated(script, model_path, LDC93S1_WAV, cwd=tmp_path) == SENTENCE


@pytest.mark.slow
def test_transcribe_stream_prints_intermediate_results_from_a_file_and_from_stdin(trained_stream):
    command = [sys.executable, TRANSCRIBE, "--model", str(trained_stream["export"]), "--stream"]
    from_file = subprocess.run(
        [*command, LDC93S1_WAV, "--chunk-ms", "80"], capture_output=True, text=True, timeout=300
    )
    assert from_file.returncode == 0, from_file.stderr[-3000:]
    lines = from_file.stdout.splitlines()
    assert lines[-1] == SENTENCE and len(lines) >= 4
    assert all(line.startswith("... ") for line in lines[:-1])
    assert SENTENCE.startswith(lines[-2][4:])
    audio, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    from_stdin = subprocess.run(
        [*command, "-", "--json", "--chunk-ms", "20"],
        input=audio.astype("<i2").tobytes(),
        capture_output=True,
        timeout=300,
    )
    assert from_stdin.returncode == 0, from_stdin.stderr[-3000:]
    records = [json.loads(line) for line in from_stdin.stdout.decode().splitlines()]
    assert [r["partial"] for r in records[:-1]] and records[-1]["transcript"] == SENTENCE
    assert [w["word"] for w in records[-1]["words"]] == SENTENCE.split()


@pytest.mark.slow
def test_a_checkpoint_of_one_kind_given_to_a_run_of_the_other_stops_with_a_message(
    trained_stream, tmp_path
):
    streaming = {**trained_stream["environ"], "ds_train": "0", "ds_export_dir": ""}
    birnn = trained_stream["birnn"]
    cases = [
        ({**streaming, "ds_model": "birnn", "ds_feature_norm": "none"}, "birnn"),
        ({**birnn, "ds_model": "unidirectional", "ds_train": "0"}, "unidirectional"),
        # fine-tuning a streaming model from a BiRNN
        (
            {
                **birnn,
                "ds_model": "unidirectional",
                "ds_load_checkpoint_dir": birnn["ds_checkpoint_dir"],
                "ds_checkpoint_dir": str(tmp_path / "ft"),
            },
            "unidirectional",
        ),
    ]
    for environ, kind in cases:
        status, out, err = run_main({**environ, "ds_logs_dir": str(tmp_path / f"logs-{kind}")})
        assert status == 1, out + err
        other = "birnn" if kind == "unidirectional" else "unidirectional"
        assert f"set ds_model={other}" in err, err


def test_the_stream_command_keeps_the_loaded_model_out_of_full_collections(random_export, tmp_path):
    # A live stream should not pause for the garbage collector walking the loaded model: the
    # command freezes what it has loaded before the first feed (and only with --stream).
    wav = tmp_path / "clip.wav"
    soundfile.write(wav, speech(1.0, 5), 16000)
    code = (
        "import gc, sys\n"
        "from util.transcriber.command import main\n"
        "status = main(sys.argv[1:])\n"
        "print('frozen', gc.get_freeze_count(), status)\n"
    )
    counts = {}
    for flags in (["--stream", "--no-wait"], []):
        done = subprocess.run(
            [sys.executable, "-c", code, str(wav), "--model", str(random_export["export"]), *flags],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        last = done.stdout.strip().splitlines()[-1].split()
        assert last[0] == "frozen" and last[2] == "0", done.stdout
        counts[bool(flags)] = int(last[1])
    assert counts[True] > 10_000 and counts[False] == 0


def test_without_a_language_model_the_stream_spells_the_likeliest_letters(random_export):
    from util.decoding.decoder import DecodingOptions, greedy_labels

    model = Transcriber(str(random_export["export"]), decoding=DecodingOptions(spelling="off"))
    audio = speech(2.4, seed=6)
    stream = model.stream()
    stream.feed(audio)
    shown = stream.intermediate()
    result = stream.finish()
    labels = greedy_labels(stream.last_logits, model.alphabet.n_classes - 1)
    assert (
        shown
        and model.alphabet.decode(labels).split()[: len(shown.split()) - 1] == (shown.split()[:-1])
    )
    assert result.text == model.transcribe(audio).text  # TensorFlow's beam search, as whole
