"""The corpus importers on generated fixtures in each corpus's real layout: LibriSpeech (folder
and .tar.gz archives, FLAC), TED-LIUM 2 (NIST SPHERE + STM), CSV, Fisher and Switchboard."""

import importlib
import os
import stat
import tarfile

import numpy as np
import pytest
import soundfile
import tensorflow.compat.v1 as tf
from helpers import write_csv, write_shortened_sphere, write_speech

from util.data.audio import SPH2PIPE_HELP, audio_to_input_vector, load_audio, time_steps
from util.data.corpus import LayoutError
from util.data.feeding import DataOptions, read_data_sets

tf.disable_v2_behavior()

librivox = importlib.import_module("importers.librivox")
ted = importlib.import_module("importers.ted")
csv_importer = importlib.import_module("importers.csv")
fisher = importlib.import_module("importers.fisher")
swb = importlib.import_module("importers.LDC97S62")


def read(module, data_dir, sets=("train", "dev", "test"), **options):
    """``module``'s data sets in a fresh graph, batch size 1, no feature cache."""
    with tf.Graph().as_default():
        return read_data_sets(module, str(data_dir), sets, DataOptions(**options))


def pairs(data_set):
    """(file name, transcript) of each sample, in the data set's (length) order."""
    return [(os.path.basename(s.wav_filename), s.transcript) for s in data_set.samples]


# -- LibriSpeech -------------------------------------------------------------------------------

LIBRISPEECH = {
    "train-clean-100": {("19", "198"): ["NORTHANGER ABBEY", "THIS LITTLE WORK WAS FINISHED"]},
    "train-clean-360": {("14", "208"): ["IT'S A DOG"]},
    "dev-clean": {("84", "121"): ["GO DO YOU HEAR"]},
    "test-clean": {("61", "70968"): ["HE BEGAN A CONFUSED COMPLAINT", "AND HE SAID"]},
}


def make_librispeech(root):
    """LibriSpeech/<subset>/<speaker>/<chapter>/ with FLAC files and a .trans.txt each."""
    for subset, chapters in LIBRISPEECH.items():
        for (speaker, chapter), texts in chapters.items():
            folder = root / "LibriSpeech" / subset / speaker / chapter
            lines = []
            for i, text in enumerate(texts):
                utterance = f"{speaker}-{chapter}-{i:04d}"
                write_speech(folder / f"{utterance}.flac", 1.0 + 0.3 * i, format="FLAC", seed=i)
                lines.append(f"{utterance} {text}")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def expected_librispeech(subsets):
    return sorted(
        (f"{speaker}-{chapter}-{i:04d}.flac", text.lower())
        for subset in subsets
        for (speaker, chapter), texts in LIBRISPEECH[subset].items()
        for i, text in enumerate(texts)
    )


def test_librispeech_folder(tmp_path):
    data = make_librispeech(tmp_path / "librivox")
    sets = read(librivox, data)
    assert sorted(pairs(sets.train)) == expected_librispeech(["train-clean-100", "train-clean-360"])
    assert pairs(sets.dev) == expected_librispeech(["dev-clean"])
    assert pairs(sets.test) == expected_librispeech(["test-clean"])
    assert [s.duration for s in sets.train.samples] == pytest.approx([1.0, 1.0, 1.3])
    assert all(
        s.wav_filename.endswith(".flac") and os.path.isabs(s.wav_filename)
        for s in sets.train.samples
    )
    # FLAC is read directly: the features are those of the decoded audio.
    sample = sets.test.samples[0]
    features = sets.test.features(sample)
    assert features.shape == (time_steps(sample.duration), 494)


def test_librispeech_subset_folders_directly_in_the_data_path(tmp_path):
    data = make_librispeech(tmp_path / "inner")
    sets = read(librivox, data / "LibriSpeech", sets=("dev",))
    assert pairs(sets.dev) == expected_librispeech(["dev-clean"])
    assert sets.train is None and sets.test is None


def test_librispeech_archives_are_unpacked_once(tmp_path, capsys):
    source = make_librispeech(tmp_path / "source")
    data = tmp_path / "librivox"
    data.mkdir()
    for subset in LIBRISPEECH:
        with tarfile.open(data / f"{subset}.tar.gz", "w:gz") as tar:
            tar.add(source / "LibriSpeech" / subset, arcname=f"LibriSpeech/{subset}")
    sets = read(librivox, data)
    assert sorted(pairs(sets.train)) == expected_librispeech(["train-clean-100", "train-clean-360"])
    assert pairs(sets.test) == expected_librispeech(["test-clean"])
    out = capsys.readouterr().out
    assert out.count("Extracting") == len(LIBRISPEECH)
    assert (data / "LibriSpeech" / "dev-clean" / "84" / "121" / "84-121.trans.txt").is_file()
    assert not [p for p in os.listdir(data) if p.startswith(".extract-")]
    sets = read(librivox, data, sets=("dev",))
    assert pairs(sets.dev) == expected_librispeech(["dev-clean"])
    assert "Extracting" not in capsys.readouterr().out


def test_librispeech_missing_or_wrong_path_says_what_it_expects(tmp_path):
    for data, missing in ((tmp_path / "nowhere", True), (tmp_path, False)):
        with pytest.raises(LayoutError) as info:
            read(librivox, data, sets=("train",))
        message = str(info.value)
        assert "\n" not in message
        assert repr(str(data)) in message
        assert "LibriSpeech/<subset>/<speaker>/<chapter>" in message
        assert "train-clean-100" in message and ".tar.gz" in message
        assert ("(the folder does not exist)" in message) == missing


# -- TED-LIUM release 2 ------------------------------------------------------------------------

TED_STM = {
    "train": (
        "TalkOne_2010",
        6.0,
        [
            "TalkOne_2010 1 inter_segment_gap 0.00 0.50 <o,,unknown> "
            "ignore_time_segment_in_scoring",
            "TalkOne_2010 1 TalkOne_2010 0.50 2.20 <o,f0,male> i 'm going to talk today",
            "TalkOne_2010 1 TalkOne_2010 2.20 4.00 <o,f0,male> about {NOISE} energy and climate",
            "TalkOne_2010 1 TalkOne_2010 4.00 5.50 <o,f0,male> and that <unk> might seem",
        ],
    ),
    "dev": ("TalkTwo_2011", 3.0, ["TalkTwo_2011 1 TalkTwo_2011 0.20 2.00 <o,f0,female> hello"]),
    "test": ("TalkThree_2012", 3.0, ["TalkThree_2012 1 TalkThree_2012 1.00 3.00 <o,f0,male> bye"]),
}


def make_tedlium(root):
    for set_name, (talk, seconds, lines) in TED_STM.items():
        base = root / "TEDLIUM_release2" / set_name
        write_speech(base / "sph" / f"{talk}.sph", seconds, format="NIST", seed=len(talk))
        (base / "stm").mkdir(parents=True)
        (base / "stm" / f"{talk}.stm").write_text(";; a comment\n" + "\n".join(lines) + "\n")
    return root


def test_tedlium_segments(tmp_path, capsys):
    data = make_tedlium(tmp_path / "ted")
    sph = data / "TEDLIUM_release2" / "train" / "sph" / "TalkOne_2010.sph"
    assert soundfile.info(str(sph)).format == "NIST"
    sets = read(ted, data)
    train = sets.train.samples
    assert [(s.transcript, s.start, s.end) for s in train] == [
        ("i'm going to talk today", 0.5, 2.2),
        ("about energy and climate", 2.2, 4.0),
    ]
    assert [s.duration for s in train] == pytest.approx([1.7, 1.8])
    assert all(s.wav_filename == str(sph) for s in train)
    assert train[0].name == f"{sph}[0.50-2.20s]"
    assert [(s.transcript, s.start) for s in sets.dev.samples] == [("hello", 0.2)]
    assert [(s.transcript, s.end) for s in sets.test.samples] == [("bye", 3.0)]
    out = capsys.readouterr().out
    assert (
        "ted: left out of the train set: 1 segments marked ignore_time_segment_in_scoring, "
        "1 segments with <unk> words" in out
    )
    # The segment is cut in memory: its features are those of that stretch of the talk.
    whole = load_audio(str(sph))
    expected = audio_to_input_vector(whole[8000:35200])
    np.testing.assert_array_equal(sets.train.features(train[0]), expected)
    assert len(expected) == time_steps(1.7)


def test_tedlium_archive(tmp_path):
    source = make_tedlium(tmp_path / "source")
    data = tmp_path / "ted"
    data.mkdir()
    with tarfile.open(data / "TEDLIUM_release2.tar.gz", "w:gz") as tar:
        tar.add(source / "TEDLIUM_release2", arcname="TEDLIUM_release2")
    sets = read(ted, data, sets=("dev",))
    assert [s.transcript for s in sets.dev.samples] == ["hello"]


def test_tedlium_missing_or_wrong_path_says_what_it_expects(tmp_path):
    for data in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(LayoutError) as info:
            read(ted, data)
        message = str(info.value)
        assert "\n" not in message and repr(str(data)) in message
        assert "TEDLIUM_release2/<train|dev|test>/sph/<talk>.sph" in message


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_relative_and_absolute_paths_and_several_files(tmp_path):
    corpus = tmp_path / "corpus"
    a = write_speech(corpus / "clips" / "a.wav", 1.0, seed=1)
    b = write_speech(tmp_path / "elsewhere" / "b.wav", 1.5, seed=2)
    c = write_speech(corpus / "clips" / "c.wav", 0.8, seed=3)
    train1 = write_csv(corpus / "train1.csv", [("clips/a.wav", "Hello there"), (str(b), "b two")])
    train2 = write_csv(corpus / "train2.csv", [("clips/c.wav", "see")])
    test = write_csv(corpus / "test.csv", [("./clips/a.wav", "hello")])
    sets = read(
        csv_importer,
        "unused",
        sets=("train", "test"),
        train_files=(str(train1), str(train2)),
        test_files=(str(test),),
    )
    assert [(s.wav_filename, s.transcript) for s in sets.train.samples] == [
        (str(c), "see"),
        (str(a), "hello there"),
        (str(b), "b two"),
    ]
    assert [s.transcript for s in sets.test.samples] == ["hello"]
    assert sets.dev is None
    limited = read(
        csv_importer, "", sets=("train",), train_files=(str(train1), str(train2)), limit_train=2
    )
    assert [s.transcript for s in limited.train.samples] == ["see", "hello there"]


def test_csv_with_byte_order_mark_and_quoted_transcripts(tmp_path):
    write_speech(tmp_path / "a.wav", 1.0)
    path = tmp_path / "bom.csv"
    path.write_bytes(b'\xef\xbb\xbfwav_filename,wav_filesize,transcript\na.wav,0,"well, yes"\n')
    sets = read(csv_importer, "", sets=("dev",), dev_files=(str(path),))
    assert [s.transcript for s in sets.dev.samples] == ["well yes"]


def test_csv_errors_are_one_line(tmp_path):
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("path,text\na.wav,hello\n")
    cases = [
        ({"train_files": (str(tmp_path / "none.csv"),)}, "ds_train_files: no such CSV file"),
        ({"train_files": (str(bad_header),)}, "expected the columns wav_filename,wav_filesize"),
        ({}, "ds_importer=csv needs ds_train_files"),
    ]
    for options, text in cases:
        with pytest.raises(LayoutError) as info:
            read(csv_importer, "", sets=("train",), **options)
        assert text in str(info.value) and "\n" not in str(info.value)


# -- Fisher --------------------------------------------------------------------------------------

FISHER_LINES = [
    "# fe_03_00001.sph",
    "",
    "0.50 2.00 A: hello [laughter] how are you",
    "2.20 3.80 B: ((fine)) thanks",
    "4.00 5.00 A: [noise]",
    "5.20 6.50 B: (( )) yes",
    "6.60 8.00 A: what do you do",
    "8.10 9.50 B: i teach",
    "10.00 11.50 A: oh nice",
]


def make_fisher(root):
    audio = root / "LDC2004S13" / "fisher_eng_tr_sp_d1" / "audio" / "000" / "fe_03_00001.sph"
    write_speech(audio, 12.0, rate=8000, channels=2, format="NIST", subtype="ULAW")
    trans = root / "LDC2004T19" / "fe_03_p1_tran" / "data" / "trans" / "000"
    trans.mkdir(parents=True)
    (trans / "fe_03_00001.txt").write_text("\n".join(FISHER_LINES) + "\n")
    (trans / "fe_03_00002.txt").write_text("0.5 1.5 A: no audio for this one\n")
    return root, audio


def test_fisher_channels_segments_and_split(tmp_path, capsys):
    data, audio = make_fisher(tmp_path / "fisher")
    sets = read(fisher, data)
    train = sorted(sets.train.samples, key=lambda s: s.start)
    assert [(s.transcript, s.channel, s.start, s.end) for s in train] == [
        ("hello how are you", 0, 0.5, 2.0),
        ("fine thanks", 1, 2.2, 3.8),
        ("what do you do", 0, 6.6, 8.0),
    ]
    assert [(s.transcript, s.channel) for s in sets.dev.samples] == [("i teach", 1)]
    assert [(s.transcript, s.channel) for s in sets.test.samples] == [("oh nice", 0)]
    assert train[0].name == f"{audio}[ch1 0.50-2.00s]"
    out = capsys.readouterr().out
    assert "1 conversations without audio" in out
    assert "1 segments with unintelligible speech" in out and "1 non-speech segments" in out
    # Channel B of the segment, resampled from 8 kHz.
    sample = sets.dev.samples[0]
    expected = audio_to_input_vector(load_audio(str(audio), 8.1, 9.5, channel=1))
    np.testing.assert_array_equal(sets.dev.features(sample), expected)
    assert not np.array_equal(
        expected, audio_to_input_vector(load_audio(str(audio), 8.1, 9.5, channel=0))
    )


def test_fisher_missing_layout(tmp_path):
    with pytest.raises(LayoutError, match="LDC2004T19 and/or LDC2005T19") as info:
        read(fisher, tmp_path)
    assert "found no fe_03_*.txt transcripts" in str(info.value)


# -- Switchboard (LDC97S62) ----------------------------------------------------------------------


SWB_A = [
    "sw2001A-ms98-a-0001 0.000000 0.977625 [silence]",
    "sw2001A-ms98-a-0002 0.977625 2.500000 hi um yeah [laughter-i'm] abso[lutely]- sure",
    "sw2001A-ms98-a-0003 2.500000 4.000000 [noise] it's [stereotypical/stereotypically] okay_1",
    "sw2001A-ms98-a-0004 4.000000 6.000000 i [laughter] do",
]
SWB_B = [
    "sw2001B-ms98-a-0001 0.500000 2.000000 <b_aside> well {ackshually} -[th]at's fine <e_aside>",
    "sw2001B-ms98-a-0002 6.000000 8.000000 [vocalized-noise]",
    "sw2001B-ms98-a-0003 8.000000 9.500000 right",
]


def make_switchboard(root):
    audio = write_shortened_sphere(root / "LDC97S62" / "swb1_d1" / "data" / "sw02001.sph", 80000)
    # What sph2pipe would decode: the fake sph2pipe below prints this WAV.
    write_speech(str(audio) + ".wav", 10.0, rate=8000, channels=2)
    trans = root / "swb_ms98_transcriptions" / "20" / "2001"
    trans.mkdir(parents=True)
    (trans / "sw2001A-ms98-a-trans.text").write_text("\n".join(SWB_A) + "\n")
    (trans / "sw2001B-ms98-a-trans.text").write_text("\n".join(SWB_B) + "\n")
    (trans / "sw2001A-ms98-a-word.text").write_text("word alignments are not read\n")
    return root, audio


@pytest.fixture
def fake_sph2pipe(tmp_path, monkeypatch):
    """A ``sph2pipe`` on the PATH that prints ``<file>.wav`` (what the real one would
    decode); returns a function that removes it from the PATH again."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sph2pipe"
    script.write_text('#!/bin/sh\nfor last in "$@"; do :; done\nexec cat "$last.wav"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def remove():
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    return remove


def test_switchboard_transcripts_channels_and_split(tmp_path, fake_sph2pipe, capsys):
    data, audio = make_switchboard(tmp_path / "swb")
    sets = read(swb, data)
    every = [*sets.train.samples, *sets.dev.samples, *sets.test.samples]
    assert sorted((s.channel, s.start, s.transcript) for s in every) == [
        (0, 0.977625, "hi um yeah i'm abso sure"),
        (0, 2.5, "it's stereotypically okay"),
        (0, 4.0, "i do"),
        (1, 0.5, "well ackshually at's fine"),
        (1, 8.0, "right"),
    ]
    assert (len(sets.train.samples), len(sets.dev.samples), len(sets.test.samples)) == (3, 1, 1)
    assert "LDC97S62: left out of the data set: 2 non-speech segments" in capsys.readouterr().out
    # Decoded through sph2pipe: channel B from 8 s to 9.5 s of the decoded WAV.
    (right,) = [s for s in every if s.transcript == "right"]
    decoded, rate = soundfile.read(str(audio) + ".wav", dtype="int16")
    expected = audio_to_input_vector(
        load_audio(str(audio) + ".wav", 8.0, 9.5, channel=1)
    )  # same samples, read without sph2pipe
    assert rate == 8000 and decoded.shape == (80000, 2)
    features = {"train": sets.train, "dev": sets.dev, "test": sets.test}
    owner = next(d for d in features.values() if right in d.samples)
    np.testing.assert_array_equal(owner.features(right), expected)


def test_switchboard_without_sph2pipe_says_what_to_install(tmp_path, fake_sph2pipe):
    data, audio = make_switchboard(tmp_path / "swb")
    fake_sph2pipe()  # off the PATH
    with pytest.raises(LayoutError) as info:
        read(swb, data)
    message = str(info.value)
    assert str(audio) in message and SPH2PIPE_HELP in message
    assert "gcc -o sph2pipe *.c -lm" in message and "\n" not in message


def test_switchboard_transcripts_from_their_archive(tmp_path, fake_sph2pipe):
    source, _ = make_switchboard(tmp_path / "source")
    data = tmp_path / "swb"
    (data / "LDC97S62").mkdir(parents=True)
    os.rename(source / "LDC97S62", data / "LDC97S62")
    with tarfile.open(data / "switchboard_word_alignments.tar.gz", "w:gz") as tar:
        tar.add(source / "swb_ms98_transcriptions", arcname="swb_ms98_transcriptions")
    sets = read(swb, data, sets=("test",))
    assert len(sets.test.samples) == 1


def test_switchboard_missing_layout(tmp_path):
    with pytest.raises(LayoutError, match="swb_ms98_transcriptions") as info:
        read(swb, tmp_path / "nowhere")
    assert "does not exist" in str(info.value)
