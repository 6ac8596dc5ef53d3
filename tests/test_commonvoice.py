"""importers/commonvoice.py: a Common Voice release made here as one is downloaded (German
sentences spoken by espeak-ng voices, 48 kHz MP3 clips, every TSV file of a release), read as
a folder and as its .tar.gz, with bad rows skipped and counted by reason."""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import soundfile
from helpers import REPO_ROOT, only_run_dir, run_main
from scipy.signal import resample_poly

from importers import commonvoice
from util.data.corpus import LayoutError
from util.data.feeding import DataOptions
from util.settings.config import ConfigError, from_environ

NEW_COLUMNS = (
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
)
OLD_COLUMNS = (
    "client_id",
    "path",
    "sentence",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accent",
    "locale",
    "segment",
)
SENTENCES = [
    "„Grüße aus der Straße“, sagte er.",
    "Die Bäcker öffnen früh.",
    "Über den Fluss fährt ein Boot.",
    "Wir müssen heute noch einkaufen.",
    "Das Mädchen liest ein Buch.",
    "Es ist schön draußen.",
]
VOICES = {"speaker-a": "de", "speaker-b": "de+m3", "speaker-c": "de+f2"}


def write_tsv(path, columns, rows) -> None:
    lines = ["\t".join(columns)]
    for row in rows:
        lines.append("\t".join(str(row.get(column, "")) for column in columns))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def speak_mp3(path, sentence: str, voice: str) -> None:
    """espeak-ng's speech of ``sentence``, resampled to 48 kHz and encoded as MP3."""
    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), sentence], check=True, timeout=60)
    audio, rate = soundfile.read(wav)
    soundfile.write(path, resample_poly(audio, 48000, rate), 48000, format="MP3")
    wav.unlink()


def row(client_id: str, clip: str, sentence: str, index: int) -> dict:
    return {
        "client_id": client_id,
        "path": clip,
        "sentence_id": f"s{index}",
        "sentence": sentence,
        "sentence_domain": "",
        "up_votes": 2,
        "down_votes": 0,
        "locale": "de",
    }


def make_release(root, columns=NEW_COLUMNS):
    """A release's language folder: clips and every TSV file, bad rows included."""
    folder = root / "cv-corpus-99.0-2026-12-01" / "de"
    clips = folder / "clips"
    clips.mkdir(parents=True)
    sets = {"train": [], "dev": [], "test": []}
    index = 0
    for speaker, voice in VOICES.items():
        for sentence in SENTENCES:
            clip = f"common_voice_de_{index}.mp3"
            speak_mp3(clips / clip, sentence, voice)
            target = {"speaker-a": "train", "speaker-b": "train", "speaker-c": "test"}[speaker]
            sets[target].append(row(speaker, clip, sentence, index))
            index += 1
    sets["dev"] = [dict(r, client_id="speaker-d") for r in sets["test"][:2]]
    # Bad rows: a clip that cannot be decoded, one that is missing, an empty sentence, a digit.
    (clips / "broken.mp3").write_bytes(b"ID3" + bytes(range(256)) * 4)
    whole = (clips / "common_voice_de_1.mp3").read_bytes()
    (clips / "cut.mp3").write_bytes(whole[: len(whole) // 3])  # its header still says whole
    sets["train"] += [
        row("speaker-a", "cut.mp3", "Die Bäcker öffnen früh.", 89),
        row("speaker-a", "broken.mp3", "Ein kaputter Clip.", 90),
        row("speaker-a", "gone.mp3", "Ein fehlender Clip.", 91),
        row("speaker-b", "common_voice_de_0.mp3", "", 92),
    ]
    sets["dev"].append(row("speaker-d", "common_voice_de_1.mp3", "Es ist 5 Uhr.", 93))
    for name, rows in sets.items():
        write_tsv(folder / f"{name}.tsv", columns, rows)
    validated = [r for rows in sets.values() for r in rows]
    write_tsv(folder / "validated.tsv", columns, validated)
    for name in ("invalidated", "other", "reported"):
        write_tsv(folder / f"{name}.tsv", columns, [])
    durations = [{"clip": r["path"], "duration[ms]": 2000} for r in validated]
    write_tsv(folder / "clip_durations.tsv", ("clip", "duration[ms]"), durations)
    return folder


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_release(tmp_path_factory.mktemp("cv"))


def environ_for(dataset_path, tmp_path, alphabet) -> dict:
    return {
        "ds_importer": "commonvoice",
        "ds_dataset_path": str(dataset_path),
        "ds_alphabet_config_path": str(alphabet),
        "ds_n_hidden": "32",
        "ds_epochs": "2",
        "ds_display_step": "0",
        "ds_report_count": "1",
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
        "ds_feature_cache": str(tmp_path / "cache"),
        "ds_export_tflite": "off",
    }


@pytest.mark.slow
def test_a_release_trains_and_tests_with_bad_rows_skipped_by_reason(release, tmp_path):
    alphabet = tmp_path / "alphabet.txt"
    made = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "make-alphabet.py"),
            str(release / "train.tsv"),
            "-o",
            str(alphabet),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    characters = [line for line in alphabet.read_text(encoding="utf-8").splitlines()]
    assert {"ä", "ö", "ü", "ß"} <= set(characters) and "„" not in characters
    environ = environ_for(release, tmp_path, alphabet)
    status, out, err = run_main({**environ, "ds_validation_step": "1"})
    assert status == 0, out[-3000:] + err[-3000:]
    assert "Skipped 1 sample(s) of the train set (missing)" in out
    assert "Skipped 1 sample(s) of the train set (empty transcript)" in out
    assert "Skipped 1 sample(s) of the dev set (characters outside the alphabet: '5' x 1)" in out
    # clip_durations.tsv lists every clip, so no clip is opened before training: the clip that
    # cannot be decoded and the one cut short are left out when they are fed, and counted.
    assert "The train set: 14 sample(s)" in out and "The test set: 6 sample(s)" in out
    assert "cut.mp3 is cut short" in err and "broken.mp3" in err
    run_dir = only_run_dir(tmp_path / "logs")
    with open(os.path.join(run_dir, "skipped_train.json"), encoding="utf-8") as skipped_file:
        skipped = json.load(skipped_file)
    assert [os.path.basename(p) for p in skipped["missing"]] == ["gone.mp3"]
    left_out = sorted(os.path.basename(p) for p in skipped["unreadable when fed"])
    assert left_out == ["broken.mp3", "cut.mp3"]
    assert "could not be read when fed and were left out" in out
    report = json.loads(open(os.path.join(run_dir, "report_test.json")).read())
    references = {sample["src"] for sample in report["samples"]}
    assert "grüße aus der straße sagte er" in references and len(report["samples"]) == 6


@pytest.mark.slow
def test_the_release_s_archive_is_unpacked_once_beside_it(release, tmp_path):
    archive = tmp_path / "cv-corpus-99.0-2026-12-01-de.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(release.parent, arcname="cv-corpus-99.0-2026-12-01")
    folder = commonvoice.language_folder(str(archive))
    assert folder == str(tmp_path / "cv-corpus-99.0-2026-12-01" / "de")
    assert os.path.isfile(os.path.join(folder, "clips", "common_voice_de_0.mp3"))
    assert commonvoice.language_folder(str(archive)) == folder  # not unpacked again
    candidates = commonvoice.find_candidates(str(archive), ("train", "dev", "test"))
    assert [len(candidates[name]) for name in ("train", "dev", "test")] == [16, 3, 6]


def test_without_clip_durations_each_clip_s_header_is_read(release, tmp_path):
    """clip_durations.tsv's figures order the batches; without the file (older releases) the
    clips are opened, and one that cannot be decoded is counted before training."""
    from util.data.samples import check_candidates
    from util.settings.alphabet import Alphabet

    german = Alphabet(" abcdefghijklmnopqrstuvwxyzäöüß'")
    found = commonvoice.find_candidates(str(release), ("train",))["train"]
    listed, skipped = check_candidates(found, "train", out=io.StringIO(), alphabet=german)
    assert {s.duration for s in listed} == {2.0}  # the file's figure: 2000 ms for every clip
    assert "unreadable audio" not in skipped
    copy = tmp_path / "de"
    shutil.copytree(release, copy, ignore=shutil.ignore_patterns("clip_durations.tsv"))
    found = commonvoice.find_candidates(str(copy), ("train",))["train"]
    opened, skipped = check_candidates(found, "train", out=io.StringIO(), alphabet=german)
    assert [os.path.basename(p) for p in skipped["unreadable audio"]] == ["broken.mp3"]
    assert len({round(s.duration, 3) for s in opened}) > 1  # each clip's own length
    durations = {os.path.basename(s.wav_filename): s.duration for s in opened}
    clip = soundfile.info(str(copy / "clips" / "common_voice_de_0.mp3"))
    assert durations["common_voice_de_0.mp3"] == pytest.approx(clip.frames / clip.samplerate)


def write_release_tables(folder, columns, rows) -> None:
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    for name in ("train", "dev", "test", "validated"):
        write_tsv(folder / f"{name}.tsv", columns, rows)


def test_columns_are_found_by_name_in_any_order_and_either_naming(tmp_path):
    rows = [row(f"speaker-{i}", f"clip{i}.mp3", f"Satz Nummer {i}", i) for i in range(3)]
    found = {}
    for label, columns in {
        "new": NEW_COLUMNS,
        "old": OLD_COLUMNS,
        "shuffled": tuple(reversed(NEW_COLUMNS)),
    }.items():
        folder = tmp_path / label / "de"
        write_release_tables(folder, columns, rows)
        candidates = commonvoice.find_candidates(str(folder), ("train",))["train"]
        found[label] = [(os.path.basename(c.wav_filename), c.transcript) for c in candidates]
    assert found["new"] == found["old"] == found["shuffled"]
    assert found["new"][1] == ("clip1.mp3", b"Satz Nummer 1")
    broken = tmp_path / "broken" / "de"
    write_release_tables(broken, ("client_id", "filename", "text"), [])
    with pytest.raises(LayoutError, match="no path or sentence column"):
        commonvoice.find_candidates(str(broken), ("train",))


def test_the_validated_split_keeps_each_speaker_in_one_set(tmp_path):
    rows = [
        row(f"speaker-{i % 40}", f"clip{i}.mp3", f"Satz {i}", i)
        for i in range(400)  # 40 speakers, 10 clips each
    ]
    folder = tmp_path / "cv" / "de"
    write_release_tables(folder, NEW_COLUMNS, rows)
    options = DataOptions(cv_sets="validated")
    sets = commonvoice.find_candidates(str(folder), ("train", "dev", "test"), options)
    speakers = {}
    by_clip = {r["path"]: r["client_id"] for r in rows}
    for name, candidates in sets.items():
        speakers[name] = {by_clip[os.path.basename(c.wav_filename)] for c in candidates}
    assert sum(len(c) for c in sets.values()) == 400
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["test"] and not speakers["dev"] & speakers["test"]
    assert all(speakers[name] for name in ("train", "dev", "test"))
    assert len(sets["train"]) > len(sets["dev"]) and len(sets["train"]) > len(sets["test"])
    again = commonvoice.find_candidates(str(folder), ("train", "dev", "test"), options)
    assert again == sets  # the same split every time


def test_the_folder_is_found_or_named_in_one_line(tmp_path):
    folder = tmp_path / "download" / "cv-corpus-99.0" / "de"
    write_release_tables(folder, NEW_COLUMNS, [])
    assert commonvoice.language_folder(str(tmp_path / "download")) == str(folder)
    write_release_tables(tmp_path / "download" / "cv-corpus-99.0" / "fr", NEW_COLUMNS, [])
    with pytest.raises(LayoutError, match="it holds .*/de, .*/fr"):
        commonvoice.language_folder(str(tmp_path / "download"))
    with pytest.raises(LayoutError, match="found none"):
        commonvoice.language_folder(str(tmp_path / "nothing"))


def test_ds_cv_sets_belongs_to_the_commonvoice_importer():
    base = {"ds_checkpoint_dir": "/tmp/unused"}
    assert from_environ({**base, "ds_importer": "commonvoice"}).cv_sets == "release"
    config = from_environ({**base, "ds_importer": "commonvoice", "ds_cv_sets": "validated"})
    assert DataOptions.from_config(config, 1).cv_sets == "validated"
    with pytest.raises(ConfigError, match="ds_cv_sets is read only by ds_importer=commonvoice"):
        from_environ({**base, "ds_cv_sets": "validated"})
    with pytest.raises(ConfigError, match="expected one of release, validated"):
        from_environ({**base, "ds_importer": "commonvoice", "ds_cv_sets": "all"})


@pytest.mark.slow
def test_run_commonvoice_trains_the_language_with_its_own_alphabet_and_model(release, tmp_path):
    """bin/run-commonvoice.sh on the download folder: the alphabet and the language model come
    from the training sentences, and the recipe trains and tests."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ds_")}
    environ.update(
        ds_checkpoint_dir=str(tmp_path / "ckpt"),
        ds_logs_dir=str(tmp_path / "logs"),
        ds_feature_cache=str(tmp_path / "cache"),
        ds_export_tflite="off",
    )
    script = os.path.join(REPO_ROOT, "bin", "run-commonvoice.sh")
    done = subprocess.run(
        ["bash", script, str(release.parent.parent), "--epochs", "2", "--n_hidden", "32"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    alphabet = (tmp_path / "ckpt" / "alphabet.txt").read_text(encoding="utf-8").splitlines()
    assert {"ä", "ö", "ü", "ß"} <= set(alphabet)
    assert (tmp_path / "ckpt" / "train-sentences.arpa").is_file()
    assert "Language model weights chosen on" in done.stdout
    assert "Test loss=" in done.stdout and "train-sentences.arpa" in done.stdout
