"""Clean data handling shared by all importers: every bad-input class is skipped with its reason
(or, with ds_strict=1, stops the run naming the file); audio in other formats is read; a run
over a mixed good/bad set trains to the end and lists what it skipped in its log folder."""

import importlib
import json
import os

import numpy as np
import pytest
import soundfile
import tensorflow.compat.v1 as tf
from helpers import (
    only_run_dir,
    run_main,
    write_csv,
    write_shortened_sphere,
    write_speech,
    write_speech_wav,
)

from util.data import audio as ds_audio
from util.data.audio import time_steps
from util.data.feeding import DataOptions, read_data_sets
from util.data.samples import (
    EMPTY_TRANSCRIPT,
    NOT_UTF8,
    OUTSIDE_ALPHABET,
    SHOWN_SKIPPED,
    SKIP_REASONS,
    TOO_SHORT,
    Candidate,
    DataError,
    check_candidates,
)

tf.disable_v2_behavior()

csv_importer = importlib.import_module("importers.csv")
ted = importlib.import_module("importers.ted")


def read_csv_set(csv_path, strict=False):
    with tf.Graph().as_default():
        options = DataOptions(train_files=(str(csv_path),), strict=strict)
        sets = read_data_sets(csv_importer, "", ("train",), options)
    return sets.train


# Each bad-input class: a function writing the bad sample into a folder and returning
# (wav_filename as the CSV names it, transcript) and the reason it must be skipped for.


def missing(folder):
    return ("gone.wav", "hello"), ds_audio.MISSING


def zero_length(folder):
    (folder / "zero.wav").write_bytes(b"")
    return ("zero.wav", "hello"), ds_audio.ZERO_LENGTH


def corrupt(folder):
    noise = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (folder / "corrupt.wav").write_bytes(noise)
    return ("corrupt.wav", "hello"), ds_audio.UNREADABLE


def truncated_header(folder):
    good = write_speech_wav(folder / "whole.wav", 1.0)
    (folder / "cut.wav").write_bytes(good.read_bytes()[:30])  # cut inside the WAV header
    return ("cut.wav", "hello"), ds_audio.UNREADABLE


def empty_audio(folder):
    soundfile.write(str(folder / "empty.wav"), np.zeros(0, np.int16), 16000, subtype="PCM_16")
    return ("empty.wav", "hello"), ds_audio.EMPTY_AUDIO


def not_utf8(folder):
    write_speech_wav(folder / "latin1.wav", 1.0, seed=5)
    return ("latin1.wav", "caf\xe9".encode("latin-1")), NOT_UTF8


def empty_transcript(folder):
    write_speech_wav(folder / "blank.wav", 1.0, seed=6)
    return ("blank.wav", " ... "), EMPTY_TRANSCRIPT


def outside_alphabet(folder):
    write_speech_wav(folder / "digits.wav", 1.0, seed=7)
    return ("digits.wav", "call 911"), OUTSIDE_ALPHABET


def too_short(folder):
    write_speech_wav(folder / "tiny.wav", 0.2, seed=8)
    return ("tiny.wav", "she had your dark suit in greasy wash water"), TOO_SHORT


def shortened_sphere(folder):
    write_shortened_sphere(folder / "sw02001.sph", 8000)
    return ("sw02001.sph", "hello"), ds_audio.NEEDS_SPH2PIPE


BAD_INPUTS = {
    "missing": missing,
    "zero_length": zero_length,
    "corrupt": corrupt,
    "truncated_header": truncated_header,
    "empty_audio": empty_audio,
    "not_utf8": not_utf8,
    "empty_transcript": empty_transcript,
    "outside_alphabet": outside_alphabet,
    "too_short": too_short,
    "shortened_sphere_without_sph2pipe": shortened_sphere,
}


@pytest.fixture
def no_sph2pipe(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))


@pytest.mark.parametrize("make_bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_skipped_with_its_reason(tmp_path, make_bad, no_sph2pipe, capsys):
    good = write_speech_wav(tmp_path / "good.wav", 1.0)
    (bad_file, transcript), reason = make_bad(tmp_path)
    csv_path = write_csv(tmp_path / "set.csv", [("good.wav", "good"), (bad_file, transcript)])
    data_set = read_csv_set(csv_path)
    assert [s.wav_filename for s in data_set.samples] == [str(good)]
    bad_path = str(tmp_path / bad_file)
    assert data_set.skipped == {reason: [bad_path]}
    out = capsys.readouterr().out
    # The characters outside the alphabet are counted: "call 911" has '1' twice, '9' once.
    shown = f"{reason}: '1' x 2, '9' x 1" if reason == OUTSIDE_ALPHABET else reason
    assert f"Skipped 1 sample(s) of the train set ({shown}): {bad_path}\n" in out
    assert "The train set: 1 sample(s), 0:00:01 of audio; 1 skipped" in out
    # Shortened SPHERE says what to install.
    assert ("gcc -o sph2pipe *.c -lm" in out) == (reason == ds_audio.NEEDS_SPH2PIPE)


@pytest.mark.parametrize("make_bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_with_strict_stops_naming_it(tmp_path, make_bad, no_sph2pipe):
    write_speech_wav(tmp_path / "good.wav", 1.0)
    (bad_file, transcript), reason = make_bad(tmp_path)
    csv_path = write_csv(tmp_path / "set.csv", [("good.wav", "good"), (bad_file, transcript)])
    with pytest.raises(DataError) as info:
        read_csv_set(csv_path, strict=True)
    message = str(info.value)
    assert message.startswith("ds_strict=1 and 1 sample(s) of the train set cannot be used: ")
    shown = f"{reason}: '1' x 2, '9' x 1" if reason == OUTSIDE_ALPHABET else reason
    assert f"{shown} (1): {tmp_path / bad_file}" in message and "\n" not in message


def test_segment_outside_the_audio(tmp_path):
    base = tmp_path / "TEDLIUM_release2" / "dev"
    write_speech(base / "sph" / "Talk.sph", 3.0, format="NIST")
    (base / "stm").mkdir(parents=True)
    (base / "stm" / "Talk.stm").write_text(
        "Talk 1 Talk 0.50 2.00 <o,f0,male> inside\n"
        "Talk 1 Talk 2.50 3.30 <o,f0,male> rounding\n"  # ends 0.3 s late: clipped, kept
        "Talk 1 Talk 3.50 4.50 <o,f0,male> after the end\n"
        "Talk 1 Talk 2.00 4.50 <o,f0,male> far beyond the end\n"
        "Talk 1 Talk 2.00 1.00 <o,f0,male> backwards\n"
    )
    with tf.Graph().as_default():
        dev = read_data_sets(ted, str(tmp_path), ("dev",), DataOptions()).dev
    assert [(s.transcript, s.duration) for s in dev.samples] == [
        ("rounding", pytest.approx(0.5)),
        ("inside", pytest.approx(1.5)),
    ]
    sph = tmp_path / "TEDLIUM_release2" / "dev" / "sph" / "Talk.sph"
    assert dev.skipped == {
        ds_audio.OUTSIDE: [f"{sph}[3.50-4.50s]", f"{sph}[2.00-4.50s]", f"{sph}[2.00-1.00s]"]
    }
    assert dev.features(dev.samples[0]).shape[0] == time_steps(0.5)


def test_channel_outside_the_audio(speech_wav):
    stereo = str(speech_wav("stereo.wav", channels=2))
    samples, skipped = check_candidates(
        [Candidate(stereo, "left", 0.0, 0.8, 0), Candidate(stereo, "third", 0.0, 0.8, 2)]
    )
    assert [s.transcript for s in samples] == ["left"]
    assert skipped == {ds_audio.OUTSIDE: [f"{stereo}[ch3 0.00-0.80s]"]}


@pytest.mark.parametrize(
    "options",
    [
        {"subtype": "PCM_U8"},
        {"subtype": "PCM_24"},
        {"subtype": "PCM_32"},
        {"subtype": "FLOAT"},
        {"subtype": "DOUBLE"},
        {"rate": 8000},
        {"rate": 44100},
        {"rate": 22050, "channels": 2},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_other_formats_rates_and_stereo_are_read(tmp_path, options):
    write_speech_wav(tmp_path / "clip.wav", 1.2, **options)
    write_speech_wav(tmp_path / "reference.wav", 1.2)
    csv_path = write_csv(
        tmp_path / "set.csv", [("clip.wav", "a clip"), ("reference.wav", "the reference")]
    )
    data_set = read_csv_set(csv_path)
    assert data_set.skipped == {}
    clip, reference = sorted(data_set.samples, key=lambda s: len(s.transcript))
    assert clip.duration == pytest.approx(1.2)
    features = data_set.features(clip)
    assert features.shape == (time_steps(1.2), 494) and np.isfinite(features).all()
    if set(options) == {"subtype"}:  # the same sound at another bit depth: nearly the same
        expected = data_set.features(reference)
        assert np.corrcoef(features.ravel(), expected.ravel())[0, 1] > 0.99


def test_reasons_are_listed_in_check_order():
    assert SKIP_REASONS[0] == ds_audio.MISSING and SKIP_REASONS[-1] == TOO_SHORT
    assert len(set(SKIP_REASONS)) == len(SKIP_REASONS)


def test_mixed_good_and_bad_set_trains_to_the_end(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = [(f"clips/good{i}.wav", text) for i, text in enumerate(["yes", "no", "hello", "ok"])]
    for i in range(4):
        write_speech_wav(clips / f"good{i}.wav", 0.8 + 0.1 * i, seed=i)
    reasons = {}
    for name, make_bad in BAD_INPUTS.items():
        if name == "shortened_sphere_without_sph2pipe":
            continue  # whether sph2pipe is installed here is not the test's business
        (bad_file, transcript), reason = make_bad(clips)
        rows.append((f"clips/{bad_file}", transcript))
        reasons.setdefault(reason, []).append(str(clips / bad_file))
    many_missing = [f"clips/lost{i}.wav" for i in range(SHOWN_SKIPPED + 2)]
    rows += [(path, "lost") for path in many_missing]
    reasons[ds_audio.MISSING] += [str(tmp_path / path) for path in many_missing]
    train_csv = write_csv(tmp_path / "train.csv", rows)
    test_csv = write_csv(tmp_path / "test.csv", rows[:2] + rows[4:5])
    environ = {
        "ds_importer": "csv",
        "ds_train_files": str(train_csv),
        "ds_test_files": str(test_csv),
        "ds_n_hidden": "20",
        "ds_epochs": "2",
        "ds_train_batch_size": "2",
        "ds_report_count": "1",
        "ds_checkpoint_dir": str(tmp_path / "checkpoints"),
        "ds_logs_dir": str(tmp_path / "logs"),
        "ds_feature_cache": str(tmp_path / "cache"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert "FINISHED Epoch 0002" in out and "Test loss=" in out
    assert "The train set: 4 sample(s)" in out
    missing_line = next(
        line for line in out.splitlines() if f"({ds_audio.MISSING})" in line
    )  # the first few names, then "..."
    assert missing_line.startswith(f"Skipped {len(reasons[ds_audio.MISSING])} sample(s)")
    assert missing_line.endswith(" ...")
    run_dir = only_run_dir(tmp_path / "logs")
    skipped = json.load(open(os.path.join(run_dir, "skipped_train.json")))
    assert skipped == reasons  # the full list, every reason
    assert f"listed in {os.path.join(run_dir, 'skipped_train.json')}" in out
    test_skipped = json.load(open(os.path.join(run_dir, "skipped_test.json")))
    assert test_skipped == {ds_audio.MISSING: [str(tmp_path / rows[4][0])]}

    environ["ds_strict"] = "1"
    environ["ds_logs_dir"] = str(tmp_path / "strict-logs")
    status, out, err = run_main(environ)
    assert status == 1
    assert "error: cannot read the train set: ds_strict=1 and " in err
    assert str(clips / "corrupt.wav") in err


def test_a_file_that_breaks_during_training_stops_a_strict_run_naming_it(tmp_path):
    paths = [str(write_speech_wav(tmp_path / f"{i}.wav", 0.5 + 0.1 * i, seed=i)) for i in range(3)]
    csv_path = write_csv(tmp_path / "set.csv", [(p, "ok") for p in paths])
    graph = tf.Graph()
    with graph.as_default():
        options = DataOptions(train_batch_size=3, train_files=(str(csv_path),), strict=True)
        sets = read_data_sets(csv_importer, "", ("train",), options)
        data_set = sets.train
        batch = data_set.next_batch()
    os.remove(paths[1])  # after the checks
    session = tf.Session(graph=graph)
    coord = tf.train.Coordinator()
    threads = data_set.start_queue_threads(session, coord)
    with pytest.raises(tf.errors.OutOfRangeError):
        session.run(batch.indices)
    data_set.close_queue(session)
    with pytest.raises(ValueError, match=f"ds_strict=1 and .*{paths[1]}"):
        coord.join(threads, stop_grace_period_secs=5)
    session.close()
