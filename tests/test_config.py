"""util.settings.config: ds_* variables parsed into a frozen Config."""

import dataclasses
import json
import os

import pytest
from helpers import REPO_ROOT

from util.settings import config as ds_config
from util.settings.config import (
    KNOWN_VARIABLES,
    PREFIX,
    STDDEV_VARIABLES,
    Config,
    ConfigError,
    available_importers,
    describe,
    from_environ,
    help_lines,
    unknown_variables,
)


def parse(**variables) -> Config:
    """from_environ over exactly ``variables`` (plus a checkpoint dir, so XDG is not touched)."""
    environ = {"ds_checkpoint_dir": "/tmp/unused-checkpoints", **variables}
    return from_environ(environ)


def test_defaults_are_the_originals():
    config = parse()
    assert config.epochs == 75
    assert config.dropout_rates == (0.05, 0.05, 0.05, 0.0, 0.0, 0.05)
    assert config.n_hidden == 2048
    assert config.learning_rate == 0.001
    assert (config.train_batch_size, config.dev_batch_size, config.test_batch_size) == (1, 1, 1)
    assert config.checkpoint_step == 5
    assert config.report_count == 10
    assert config.random_seed == 4567
    assert config.default_stddev == 0.046875
    assert config.importer == "ldc93s1"
    assert config.dataset_path == "./data/ldc93s1"
    assert config.logs_dir == "logs"
    assert config.cpu_towers == 1
    assert config.checkpoint_dir == "/tmp/unused-checkpoints"
    assert (config.beta1, config.beta2, config.epsilon) == (0.9, 0.999, 1e-8)
    assert config.relu_clip == 20.0
    assert config.restore_checkpoint is None  # automatic: resume when a checkpoint fits
    assert config.stddevs == ()
    assert all(config.stddev(v) == 0.046875 for v in STDDEV_VARIABLES)


def test_default_checkpoint_dir_is_xdg_deepspeech(monkeypatch, tmp_path):
    from xdg import BaseDirectory

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    # pyxdg reads XDG_DATA_HOME once, when first imported: patch its copy as well.
    monkeypatch.setattr(BaseDirectory, "xdg_data_home", str(tmp_path))
    config = from_environ({})
    assert config.checkpoint_dir.endswith("deepspeech")
    assert config.checkpoint_dir == os.path.join(str(tmp_path), "deepspeech")
    assert os.path.isdir(config.checkpoint_dir)


def test_values_are_parsed():
    config = parse(
        ds_epochs="3",
        ds_n_hidden=" 494 ",
        ds_learning_rate="1e-4",
        ds_train_batch_size="8",
        ds_restore_checkpoint="yes",
        ds_use_warpctc="TRUE",
        ds_test="off",
        ds_logs_dir="  /tmp/my logs ",
        ds_dataset_path="/data/ted",
    )
    assert config.epochs == 3
    assert config.n_hidden == 494
    assert config.learning_rate == 1e-4
    assert config.train_batch_size == 8
    assert config.restore_checkpoint is True
    assert config.use_warpctc is True
    assert config.test is False
    assert config.logs_dir == "/tmp/my logs"
    assert config.dataset_path == "/data/ted"


def test_dropout_rate_sets_layers_1_2_3_and_6():
    assert parse(ds_dropout_rate="0.2").dropout_rates == (0.2, 0.2, 0.2, 0.0, 0.0, 0.2)


def test_per_layer_dropout_overrides():
    config = parse(ds_dropout_rate2="0.1", ds_dropout_rate4="0.3", ds_dropout_rate6="0.0")
    assert config.dropout_rates == (0.05, 0.1, 0.05, 0.3, 0.0, 0.0)
    config = parse(ds_dropout_rate="0.5", ds_dropout_rate5="0.25", ds_dropout_rate3="0")
    assert config.dropout_rates == (0.5, 0.5, 0.0, 0.0, 0.25, 0.5)


def test_per_variable_stddev_overrides():
    config = parse(ds_h1_stddev="0.1", ds_b6_stddev="0.5")
    assert config.stddev("h1") == 0.1
    assert config.stddev("b6") == 0.5
    assert config.stddev("b1") == 0.046875
    config = parse(ds_default_stddev="0.2", ds_h3_stddev="0.3")
    assert config.stddev("h3") == 0.3
    assert config.stddev("h5") == 0.2
    assert config.as_dict()["stddevs"] == {v: (0.3 if v == "h3" else 0.2) for v in STDDEV_VARIABLES}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ds_epochs", "abc"),
        ("ds_epochs", "1.5"),
        ("ds_train_batch_size", "-1"),
        ("ds_train_batch_size", "0"),
        ("ds_dev_batch_size", "0"),
        ("ds_dropout_rate", "1.0"),
        ("ds_dropout_rate", "-0.1"),
        ("ds_dropout_rate", "nan"),
        ("ds_dropout_rate4", "2"),
        ("ds_dropout_rate6", "half"),
        ("ds_importer", "nosuch"),
        ("ds_learning_rate", "0"),
        ("ds_learning_rate", "inf"),
        ("ds_h1_stddev", "-1"),
        ("ds_restore_checkpoint", "maybe"),
        ("ds_cpu_towers", "0"),
        ("ds_n_hidden", "0"),
        ("ds_beta1", "1"),
    ],
)
def test_bad_values_raise_one_line_config_error(variable, value):
    with pytest.raises(ConfigError) as info:
        parse(**{variable: value})
    message = str(info.value)
    assert "\n" not in message
    assert variable in message
    assert repr(value) in message


def test_bad_importer_lists_known_importers():
    with pytest.raises(ConfigError) as info:
        parse(ds_importer="nosuch")
    assert "ldc93s1" in str(info.value)
    assert "ldc93s1" in available_importers()


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_empty_values_fall_back_to_defaults():
    config = parse(
        ds_epochs="",
        ds_dropout_rate=" ",
        ds_dropout_rate4="",
        ds_importer="",
        ds_learning_rate="",
        ds_h1_stddev="",
        ds_restore_checkpoint="",
        ds_dataset_path="",
    )
    assert config == parse()


def test_config_is_frozen():
    config = parse()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]


def test_unknown_variables_suggest_the_known_name():
    warnings = unknown_variables({"ds_epoch": "3", "ds_epochs": "3", "HOME": "/root"})
    assert len(warnings) == 1
    assert "ds_epoch " in warnings[0]
    assert "did you mean ds_epochs" in warnings[0]


def test_known_variables_give_no_warnings():
    assert unknown_variables({name: "1" for name in KNOWN_VARIABLES}) == []
    assert "ds_dropout_rate6" in KNOWN_VARIABLES
    assert "ds_h6_stddev" in KNOWN_VARIABLES


def test_unknown_variable_far_from_any_name_has_no_hint():
    (warning,) = unknown_variables({"ds_qqqqqqqqqqqq": "1"})
    assert "ds_qqqqqqqqqqqq" in warning
    assert "did you mean" not in warning


def test_describe_mentions_every_field():
    config = parse(ds_epochs="12", ds_h2_stddev="0.25")
    text = describe(config)
    for f in dataclasses.fields(Config):
        assert f.name in text
    lines = text.splitlines()
    assert any(line.split() == ["epochs", "12"] for line in lines)
    assert "h2=0.25" in text


def test_as_dict_is_json_serialisable():
    config = parse(ds_dropout_rate4="0.3", ds_h1_stddev="0.1")
    values = config.as_dict()
    assert json.loads(json.dumps(values)) == values
    assert set(values) == {f.name for f in dataclasses.fields(Config)}
    assert values["dropout_rates"] == [0.05, 0.05, 0.05, 0.3, 0.0, 0.05]
    assert values["stddevs"]["h1"] == 0.1


def test_frozen_config_stddevs_are_immutable_and_hashable():
    config = parse(ds_h1_stddev="0.1")
    with pytest.raises(TypeError):
        config.stddevs[0] = ("h1", 9.0)  # type: ignore[index]
    assert hash(config) == hash(parse(ds_h1_stddev="0.1"))


def test_each_setting_is_declared_once_with_a_default_and_help():
    fields = dataclasses.fields(Config)
    names = [name for name, _, _ in help_lines()]
    assert len(names) == len(fields)
    for name, field in zip(names, fields, strict=True):
        if field.name == "dropout_rates":
            assert name.startswith("ds_dropout_rate, ds_dropout_rate2")
        elif field.name == "stddevs":
            assert name.startswith("ds_b1_stddev, ds_h1_stddev")
        else:
            assert name == PREFIX + field.name
    for field in fields:
        assert field.metadata["help"].strip(), field.name
        assert "\n" not in field.metadata["help"], field.name
    # Every field is read from its variable by its own parser, except the two read by hand
    # (one variable per layer or per initialiser).
    by_hand = {f.name for f in fields if f.metadata["parse"] is None}
    assert by_hand == {"dropout_rates", "stddevs"}
    parsed = {PREFIX + f.name for f in fields} - {PREFIX + name for name in by_hand}
    assert parsed <= KNOWN_VARIABLES
    # The defaults of the declaration are the defaults of a parsed empty environment.
    config = from_environ({"ds_checkpoint_dir": "unused"})
    for field in fields:
        if field.name not in ("dataset_path", "checkpoint_dir"):
            assert getattr(config, field.name) == field.default, field.name


def test_the_settings_reference_is_the_declarations():
    """docs/configuration.md is what bin/dev/settings-reference.py prints from the
    declarations: rerun it with --write after changing a setting."""
    path = os.path.join(REPO_ROOT, "docs", "configuration.md")
    with open(path, encoding="utf-8") as reference:
        assert reference.read() == ds_config.reference_markdown()
    text = ds_config.reference_markdown()
    for f in dataclasses.fields(ds_config.Config):
        if f.name not in ("dropout_rates", "stddevs"):
            assert f"`ds_{f.name}`" in text, f.name
    assert "`ds_dropout_rate6`" in text and "`ds_h6_stddev`" in text


def test_a_streaming_model_reads_unnormalised_features_unless_told_otherwise():
    streaming = from_environ({"ds_model": "unidirectional", "ds_checkpoint_dir": "x"})
    assert streaming.model == "unidirectional" and streaming.feature_norm == "none"
    assert from_environ({"ds_checkpoint_dir": "x"}).model == "birnn"
    with pytest.raises(ConfigError, match="ds_feature_norm=coefficient: ds_model=unidirectional"):
        from_environ({"ds_model": "unidirectional", "ds_feature_norm": "coefficient"})
    with pytest.raises(ConfigError, match="ds_model='lstm': expected one of birnn, unidirectional"):
        from_environ({"ds_model": "lstm"})
