"""util.transcriber.command (bin/transcribe.py) in this process: its inputs, decoding flags and
errors; transcribing with a trained model is tests/test_transcriber.py's and test_export.py's."""

import pytest
from helpers import write_csv, write_speech

from util.decoding.decoder import DecodingOptions
from util.transcriber import command


def test_inputs_are_files_csv_rows_and_folders(tmp_path):
    one = write_speech(tmp_path / "one.wav")
    two = write_speech(tmp_path / "folder" / "b.flac", format="FLAC")
    three = write_speech(tmp_path / "folder" / "sub" / "a.wav")
    (tmp_path / "folder" / "notes.txt").write_text("not audio")
    csv_file = write_csv(tmp_path / "set.csv", [("one.wav", "hello world")])
    items = command.expand_inputs([str(one), str(tmp_path / "folder"), str(csv_file)])
    assert items == [
        (str(one), None),
        (str(two), None),
        (str(three), None),
        (str(one), "hello world"),
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(command.InputError, match="holds no audio files"):
        command.expand_inputs([str(tmp_path / "empty")])


def test_flags_change_only_what_they_name(tmp_path):
    model = DecodingOptions("lm.arpa", 0.5, 1.0, 100, "compound")
    args = command.parse_args(["a.wav", "--model", "m", "--lm-alpha", "0.8", "--spelling", "off"])
    assert command.decoding_options(args, model) == DecodingOptions("lm.arpa", 0.8, 1.0, 100, "off")
    args = command.parse_args(["a.wav", "--model", "m", "--lm", "none"])
    assert command.decoding_options(args, model).lm_path == ""
    with pytest.raises(SystemExit):
        command.parse_args(["a.wav", "--model", "m", "--lm", str(tmp_path / "missing.arpa")])


def test_a_missing_model_is_one_line_and_status_1(tmp_path, capsys):
    audio = write_speech(tmp_path / "a.wav")
    status = command.main([str(audio), "--model", str(tmp_path / "no-such-export")])
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no-such-export" in err[0]
