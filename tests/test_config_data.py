"""util.settings.config: the data variables (ds_train_files ..., ds_strict, ds_feature_cache,
ds_shuffle_batches) and their one-line errors."""

import pytest

from util.settings.config import ConfigError, from_environ


def parse(**variables):
    return from_environ({"ds_checkpoint_dir": "/tmp/unused-checkpoints", **variables})


def test_defaults():
    config = parse()
    assert (config.train_files, config.dev_files, config.test_files) == ((), (), ())
    assert config.strict is False and config.shuffle_batches is False
    assert config.feature_cache == ""


def test_csv_files_strict_cache_and_shuffle(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.csv", "b.csv", "c.csv"))
    for path in (a, b, c):
        path.write_text("wav_filename,wav_filesize,transcript\n")
    config = parse(
        ds_importer="csv",
        ds_train_files=f" {a} , {b},",
        ds_test_files=str(c),
        ds_strict="yes",
        ds_feature_cache=" /var/cache/ds ",
        ds_shuffle_batches="1",
    )
    assert config.train_files == (str(a), str(b)) and config.test_files == (str(c),)
    assert config.strict is True and config.shuffle_batches is True
    assert config.feature_cache == "/var/cache/ds"
    assert config.as_dict()["train_files"] == [str(a), str(b)]
    assert parse(ds_feature_cache="OFF").feature_cache == "off"
    assert parse(ds_feature_cache="0").feature_cache == "off"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ds_importer": "csv"}, "ds_importer=csv needs ds_train_files (comma-separated CSV"),
        ({"ds_importer": "csv", "ds_train": "0"}, "ds_importer=csv needs ds_test_files"),
        (
            {"ds_importer": "csv", "ds_train_files": "TRAIN", "ds_validation_step": "1"},
            "ds_importer=csv needs ds_dev_files",
        ),
        (
            {"ds_importer": "csv", "ds_train_files": "/no/such.csv"},
            "ds_train_files: no such CSV file '/no/such.csv'",
        ),
        ({"ds_train_files": "TRAIN"}, "ds_train_files is read only by ds_importer=csv"),
        ({"ds_strict": "maybe"}, "ds_strict='maybe': expected 1 or 0"),
        ({"ds_shuffle_batches": "2"}, "ds_shuffle_batches='2': expected 1 or 0"),
    ],
)
def test_one_line_errors(tmp_path, variables, message):
    train = tmp_path / "train.csv"
    train.write_text("wav_filename,wav_filesize,transcript\n")
    variables = {k: v.replace("TRAIN", str(train)) for k, v in variables.items()}
    with pytest.raises(ConfigError) as info:
        parse(**variables)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_csv_without_test_files_is_fine_when_not_testing(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("wav_filename,wav_filesize,transcript\n")
    config = parse(ds_importer="csv", ds_train_files=str(train), ds_test="0")
    assert config.train_files == (str(train),)
    assert parse(ds_importer="csv", ds_one_shot_infer="x.wav").importer == "csv"
