"""Export: the frozen graph and SavedModel of a trained model, and bin/transcribe.py."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow.compat.v1 as tf
from helpers import LDC93S1_WAV, REPO_ROOT, SENTENCE, documented_client, run_isolated, run_main
from scipy.signal import resample_poly

from util.data.audio import audiofile_to_input_vector
from util.model import kernels
from util.model.export_files import FROZEN_GRAPH, OP_GRAPH, SAVED_MODEL, TFLITE
from util.settings.devices import cpu_has_bfloat16
from util.transcriber import Transcriber

TRANSCRIBE = os.path.join(REPO_ROOT, "bin", "transcribe.py")


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    export_dir = tmp_path_factory.mktemp("export") / "model"
    environ = {
        **trained["environ"],
        "ds_train": "0",
        "ds_test": "0",
        "ds_export_dir": str(export_dir),
        "ds_logs_dir": str(tmp_path_factory.mktemp("export-logs")),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    return {"dir": export_dir, "pb": str(export_dir / "output_graph.pb"), "environ": environ}


def transcribe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, TRANSCRIBE, *args], capture_output=True, text=True, timeout=120
    )


def frozen_labels(pb_path: str, features: np.ndarray) -> np.ndarray:
    graph_def = tf.GraphDef()
    graph_def.ParseFromString(open(pb_path, "rb").read())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    with tf.Session(graph=graph) as session:
        return session.run(
            "output_node:0", {"input_node:0": features[None], "input_lengths:0": [len(features)]}
        )


@pytest.mark.slow
def test_frozen_graph_has_the_documented_tensors(exported):
    graph_def = tf.GraphDef()
    graph_def.ParseFromString(open(exported["pb"], "rb").read())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    ops = {op.name: op for op in graph.get_operations()}
    # The features are fed, or computed from fed audio (their defaults).
    assert ops["input_node"].type == "PlaceholderWithDefault"
    assert ops["input_lengths"].type == "PlaceholderWithDefault"
    assert ops["input_samples"].type == "PlaceholderWithDefault"
    assert graph.get_tensor_by_name("input_node:0").dtype == tf.float32
    assert graph.get_tensor_by_name("input_node:0").shape.as_list() == [None, None, 494]
    assert graph.get_tensor_by_name("input_lengths:0").dtype == tf.int32
    assert graph.get_tensor_by_name("output_node:0").dtype == tf.int32
    assert graph.get_tensor_by_name("logits:0").shape.as_list() == [None, None, 29]
    placeholders = sorted(op.name for op in ops.values() if op.type == "Placeholder")
    assert placeholders == ["input_sample_lengths", "input_samples_int16"]
    assert not [op for op in ops.values() if "Variable" in op.type], "the graph is not frozen"


@pytest.mark.slow
def test_transcribe_in_a_fresh_process_without_training_code(exported):
    # Run the script's own code, then list which project modules the process loaded.
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['transcribe.py', {LDC93S1_WAV!r}, '--model', {exported['pb']!r}]\n"
        f"try:\n    runpy.run_path({TRANSCRIBE!r}, run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "loaded = [m for m in sys.modules if m == 'DeepSpeech' or m.startswith(('util.', "
        "'importers'))]\n"
        "print('LOADED', sorted(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == SENTENCE
    # Features, labels, the decoder (beam search, language model, spelling, word timings),
    # the compiled op's loader, the settings layer (devices and the bfloat16 switch) only: no
    # model-building (util.model.birnn, towers), training or export code (the packages'
    # __init__ files hold only docstrings; util.settings.venv is the standard-library launcher).
    assert lines[1] == (
        "LOADED ['util.data', 'util.data.audio', 'util.data.text', 'util.decoding', "
        "'util.decoding.alignment', 'util.decoding.decoder', 'util.decoding.search', "
        "'util.decoding.spell', 'util.model', 'util.model.export_files', 'util.model.kernels', "
        "'util.model.precision', 'util.settings', 'util.settings.alphabet', "
        "'util.settings.config', 'util.settings.devices', 'util.settings.geometry', "
        "'util.settings.venv', 'util.transcriber', 'util.transcriber.command', "
        "'util.transcriber.long_audio', 'util.transcriber.subtitles', "
        "'util.transcriber.transcriber']"
    )


def partition_nodes(transcriber) -> list:
    """The nodes of the graph a Transcriber's session really runs (after its rewrites)."""
    features = audiofile_to_input_vector(LDC93S1_WAV)
    metadata, graph = tf.RunMetadata(), transcriber.backend
    graph.session.run(
        graph.labels,
        {graph.features: features[None], graph.lengths: [len(features)]},
        options=tf.RunOptions(output_partition_graphs=True),
        run_metadata=metadata,
    )
    return [node for partition in metadata.partition_graphs for node in partition.node]


def bfloat16_casts(transcriber) -> int:
    """float32 -> bfloat16 casts in the graph a Transcriber's session runs."""
    return sum(
        node.op == "Cast" and node.attr["DstT"].type == tf.bfloat16.as_datatype_enum
        for node in partition_nodes(transcriber)
    )


def lstm_op_precisions(transcriber) -> list[bool]:
    """``bfloat16_weights`` of each compiled LSTM op the session runs."""
    return [
        node.attr["bfloat16_weights"].b
        for node in partition_nodes(transcriber)
        if node.op == kernels.LSTM_OP
    ]


@pytest.mark.slow
@pytest.mark.skipif(not cpu_has_bfloat16(), reason="this CPU has no native bfloat16")
def test_transcribe_with_bfloat16_products(exported):
    graph_def = tf.GraphDef()
    graph_def.ParseFromString(open(exported["pb"], "rb").read())
    assert not kernels.graph_uses_op(graph_def)  # the portable graph: stock ops only
    graph_def.ParseFromString(open(exported["dir"] / OP_GRAPH, "rb").read())
    assert kernels.graph_uses_op(graph_def)  # the speed-up beside it, which the transcriber uses
    assert bfloat16_casts(Transcriber(exported["pb"], bfloat16=True)) > 0
    assert bfloat16_casts(Transcriber(exported["pb"])) == 0
    assert lstm_op_precisions(Transcriber(exported["pb"], bfloat16=True)) == [True]
    assert lstm_op_precisions(Transcriber(exported["pb"])) == [False]
    result = transcribe(LDC93S1_WAV, "--model", exported["pb"], "--bfloat16", "on")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == SENTENCE


def test_saved_model_gives_the_frozen_graph_labels(exported):
    features = audiofile_to_input_vector(LDC93S1_WAV)
    expected = frozen_labels(exported["pb"], features)
    graph = tf.Graph()
    with tf.Session(graph=graph) as session:
        meta = tf.saved_model.loader.load(session, ["serve"], str(exported["dir"] / "1"))
        signature = meta.signature_def["serving_default"]
        assert set(signature.inputs) == {"input_node", "input_lengths"}
        assert set(signature.outputs) == {"output_node", "logits"}
        labels = session.run(
            signature.outputs["output_node"].name,
            {
                signature.inputs["input_node"].name: features[None],
                signature.inputs["input_lengths"].name: [len(features)],
            },
        )
    np.testing.assert_array_equal(labels, expected)
    assert "".join(" abcdefghijklmnopqrstuvwxyz'"[i] for i in expected[0] if i >= 0) == SENTENCE


@pytest.mark.slow
def test_cd_quality_stereo_copy_gives_the_same_sentence(exported, tmp_path):
    audio, rate = soundfile.read(LDC93S1_WAV, dtype="float64")
    cd = resample_poly(audio, 441, 160)
    soundfile.write(tmp_path / "cd.wav", np.stack([cd, 0.9 * cd], axis=1), 44100)
    result = transcribe(str(tmp_path / "cd.wav"), "--model", exported["pb"], "--json")
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["transcript"] == SENTENCE
    assert record["seconds"] == pytest.approx(2.925, abs=0.01)
    assert record["file"] == str(tmp_path / "cd.wav") and record["inference_s"] > 0
    assert "note:" not in result.stderr


@pytest.mark.slow
def test_8khz_copy_with_a_narrowband_model(trained, tmp_path):
    """A model trained with ds_feature_max_hz=4000 reads 8 kHz audio as well as 16 kHz; the
    export carries the setting to the transcriber."""
    environ = {
        **trained["environ"],
        "ds_feature_max_hz": "4000",
        "ds_epochs": "35",
        "ds_validation_step": "0",
        "ds_log_variables": "0",
        "ds_test": "0",
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
        "ds_export_dir": str(tmp_path / "export"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    audio, rate = soundfile.read(LDC93S1_WAV, dtype="float64")
    soundfile.write(tmp_path / "phone.wav", resample_poly(audio, 1, 2), 8000, subtype="PCM_16")
    model = str(tmp_path / "export" / "output_graph.pb")
    result = transcribe(str(tmp_path / "phone.wav"), LDC93S1_WAV, "--model", model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'phone.wav'}: {SENTENCE}",
        f"{LDC93S1_WAV}: {SENTENCE}",
    ]
    assert "note:" not in result.stderr


@pytest.mark.slow
def test_narrowband_audio_for_a_full_band_model_gets_a_note(exported, tmp_path):
    audio, rate = soundfile.read(LDC93S1_WAV, dtype="float64")
    soundfile.write(tmp_path / "phone.wav", resample_poly(audio, 1, 2), 8000, subtype="PCM_16")
    result = transcribe(str(tmp_path / "phone.wav"), "--model", exported["pb"])
    assert result.returncode == 0
    assert "sampled at 8000 Hz" in result.stderr and "ds_feature_max_hz=4000" in result.stderr


@pytest.mark.slow
def test_unreadable_file_is_named_and_others_still_transcribed(exported, corrupt_wav):
    result = transcribe(str(corrupt_wav), LDC93S1_WAV, "--model", exported["pb"])
    assert result.returncode == 1
    assert str(corrupt_wav) in result.stderr and "Traceback" not in result.stderr
    assert result.stdout.strip() == f"{LDC93S1_WAV}: {SENTENCE}"


@pytest.mark.slow
def test_missing_model_is_a_clear_error(tmp_path):
    result = transcribe(LDC93S1_WAV, "--model", str(tmp_path / "none.pb"))
    assert result.returncode != 0 and "cannot read model" in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_export_is_kept_unless_remove_export(exported):
    before = os.path.getmtime(exported["pb"])
    status, out, err = run_main(exported["environ"])
    assert status == 1 and "an export already exists" in err and "ds_remove_export=1" in err
    assert os.path.getmtime(exported["pb"]) == before
    status, out, err = run_main({**exported["environ"], "ds_remove_export": "1"})
    assert status == 0, out + err
    assert os.path.getmtime(exported["pb"]) > before
    assert sorted(os.listdir(exported["dir"])) == ["1", FROZEN_GRAPH, TFLITE["float32"], OP_GRAPH]


def test_export_without_a_checkpoint(exported, tmp_path):
    environ = {
        **exported["environ"],
        "ds_checkpoint_dir": str(tmp_path / "empty"),
        "ds_export_dir": str(tmp_path / "out"),
    }
    status, out, err = run_main(environ)
    assert status == 1 and "no checkpoint to export" in err and "Traceback" not in err


def test_export_from_a_corrupt_checkpoint(trained, exported, tmp_path):
    source = trained["root"] / "checkpoints"
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    for name in os.listdir(broken):
        if ".data-" in name:
            (broken / name).write_bytes(b"\0" * 64)
    environ = {
        **exported["environ"],
        "ds_checkpoint_dir": str(broken),
        "ds_export_dir": str(tmp_path / "out"),
    }
    status, out, err = run_main(environ)
    assert status == 1 and "Traceback" not in err
    assert f"error: no whole checkpoint in {broken}: {broken / 'model.ckpt-'}" in err
    assert "(Read less bytes than requested)" in err.splitlines()[-1]
    assert not os.path.exists(tmp_path / "out" / "output_graph.pb")


def test_one_shot_inference_from_the_latest_checkpoint(trained):
    environ = {**trained["environ"], "ds_one_shot_infer": LDC93S1_WAV}
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert out.strip().splitlines()[-1] == SENTENCE


@pytest.mark.slow
def test_compare_inference_decodes_a_set_three_ways(trained, tmp_path):
    csv_path = tmp_path / "set.csv"
    csv_path.write_text(f"wav_filename,wav_filesize,transcript\n{LDC93S1_WAV},0,{SENTENCE}\n")
    checkpoint = tf.train.latest_checkpoint(trained["environ"]["ds_checkpoint_dir"])
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "bin", "dev", "compare-inference.py"),
            "--checkpoint",
            checkpoint,
            "--n-hidden",
            trained["environ"]["ds_n_hidden"],
            "--csv",
            str(csv_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["utterances"] == 1
    ways = figures["ways"]
    assert list(ways) == [
        "stock TensorFlow ops",
        "compiled LSTM op",
        "compiled LSTM op, bfloat16",
        "TFLite float32",
        "TFLite float16",
        "TFLite int8",
    ]
    assert ways["compiled LSTM op"]["file"] == OP_GRAPH
    assert ways["TFLite int8"]["file"] == TFLITE["int8"]
    for name in ("stock TensorFlow ops", "compiled LSTM op", "TFLite float32"):
        assert ways[name]["wer"] == 0, name
    assert ways["stock TensorFlow ops"]["max_logit_difference"] == 0
    assert ways["compiled LSTM op"]["max_logit_difference"] < 1e-3
    # TFLite computes the features in float32 (the graph gets python_speech_features').
    assert ways["TFLite float32"]["max_logit_difference"] < 0.05
    sizes = {name: way["bytes"] for name, way in ways.items()}
    assert sizes["TFLite int8"] < 0.5 * sizes["TFLite float32"]
    assert sizes["TFLite float16"] < 0.6 * sizes["TFLite float32"]
    assert all(way["median_infer_s"] > 0 for way in ways.values())


# -- portable exports -----------------------------------------------------------------------------

# The clients import only tensorflow and numpy; run_plain starts them from an empty folder
# with no project code on their path.
CLIENT_PRELUDE = """
import sys
import numpy as np
import tensorflow as tf

assert not [m for m in sys.modules if m.split(".")[0] in ("util", "DeepSpeech", "importers")]


def frozen_session(path):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(open(path, "rb").read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return tf.compat.v1.Session(graph=graph), sorted({node.op for node in graph_def.node})


def print_labels(labels):
    print(" ".join(str(int(label)) for label in labels[0] if label >= 0))
"""

FEATURES_CLIENT = (
    CLIENT_PRELUDE
    + """
features = np.load(sys.argv[3])
lengths = np.array([len(features)], np.int32)
if sys.argv[1] == "frozen":
    session, ops = frozen_session(sys.argv[2])
    with session:
        labels = session.run("output_node:0", {"input_node:0": features[None],
                                               "input_lengths:0": lengths})
        print(session.run("metadata_json:0").decode())
else:
    model = tf.saved_model.load(sys.argv[2])
    serve = model.signatures["serving_default"]
    labels = serve(input_node=tf.constant(features[None]),
                   input_lengths=tf.constant(lengths))["output_node"].numpy()
    ops = []
print_labels(labels)
print(" ".join(ops) or "(none)")
"""
)

AUDIO_CLIENT = (
    CLIENT_PRELUDE
    + """
int16 = np.load(sys.argv[3])  # [samples], 16 kHz mono
batch = np.zeros((2, len(int16)), np.int16)
batch[0], batch[1, : len(int16) // 2] = int16, int16[: len(int16) // 2]
lengths = np.array([len(int16), len(int16) // 2], np.int32)
floats = batch.astype(np.float32) / 32768
if sys.argv[1] == "frozen":
    session, _ = frozen_session(sys.argv[2])
    with session:
        results = [session.run("output_node:0", {"input_samples:0": floats,
                                                 "input_sample_lengths:0": lengths}),
                   session.run("output_node:0", {"input_samples_int16:0": batch,
                                                 "input_sample_lengths:0": lengths})]
else:
    model = tf.saved_model.load(sys.argv[2])
    results = [model.signatures["audio"](input_samples=tf.constant(floats),
                                         input_sample_lengths=tf.constant(lengths)),
               model.signatures["audio_int16"](input_samples_int16=tf.constant(batch),
                                               input_sample_lengths=tf.constant(lengths))]
    results = [r["output_node"].numpy() for r in results]
for labels in results:
    print_labels(labels)
"""
)


def run_plain(client: str, *args, cwd) -> list[str]:
    """The output lines of ``client`` run with ``python -I`` (no project code on its path)
    from the empty folder ``cwd``."""
    result = subprocess.run(
        [sys.executable, "-I", "-c", client, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().split("\n")


def plain_client(kind: str, path, features_path, tmp_path):
    """Labels, op types and (for the frozen graph) the metadata of the export's answer to
    ``features_path``, from a plain TensorFlow process."""
    lines = run_plain(FEATURES_CLIENT, kind, path, features_path, cwd=tmp_path)
    metadata = json.loads(lines[-3]) if kind == "frozen" else None
    return [int(x) for x in lines[-2].split()], lines[-1].split(), metadata


@pytest.mark.slow
def test_the_export_loads_in_plain_tensorflow(exported, tmp_path):
    features_path = tmp_path / "features.npy"
    np.save(features_path, audiofile_to_input_vector(LDC93S1_WAV))
    alphabet = " abcdefghijklmnopqrstuvwxyz'"
    labels, ops, metadata = plain_client("frozen", exported["pb"], features_path, tmp_path)
    # What a client needs to decode and to make features, read from the graph itself.
    assert metadata["alphabet"] == alphabet and metadata["blank_label"] == 28
    assert metadata["sample_rate"] == 16000 and metadata["features"]["max_hz"] == 8000
    assert metadata["features"]["mfcc_coefficients"] == 26
    assert metadata["features"]["context_frames"] == 9
    assert metadata["geometry"]["n_hidden"] == 100 and metadata["geometry"]["n_features"] == 494
    training = metadata["training"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert training["git_hash"] == head and training["exported"].startswith("20")
    assert training["checkpoint"].startswith("model.ckpt-") and "test_wer" in training
    assert "".join(alphabet[i] for i in labels) == SENTENCE
    assert ops and not [op for op in ops if op.startswith("DeepSpeech")]
    labels, _, _ = plain_client("saved", exported["dir"] / SAVED_MODEL, features_path, tmp_path)
    assert "".join(alphabet[i] for i in labels) == SENTENCE


@pytest.mark.slow
def test_the_transcriber_swaps_in_the_compiled_op_where_it_builds(exported, tmp_path):
    assert Transcriber(exported["pb"]).model_path.endswith(OP_GRAPH)
    assert Transcriber(exported["pb"], custom_ops="off").model_path == exported["pb"]
    # An export without the op graph (ds_custom_ops=off, or copied without it) is used as is.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(exported["pb"], alone / FROZEN_GRAPH)
    transcriber = Transcriber(str(alone / FROZEN_GRAPH))
    assert transcriber.model_path == str(alone / FROZEN_GRAPH)
    assert transcriber.transcribe(LDC93S1_WAV).text == SENTENCE
    for flag in ("off", "on"):
        result = transcribe(LDC93S1_WAV, "--model", exported["pb"], "--custom-ops", flag)
        assert result.returncode == 0 and result.stdout.strip() == SENTENCE, result.stderr


def test_an_export_with_custom_ops_off_has_no_op_graph(trained, tmp_path):
    export_dir = tmp_path / "model"
    environ = {
        **trained["environ"],
        "ds_train": "0",
        "ds_test": "0",
        "ds_custom_ops": "off",
        "ds_export_dir": str(export_dir),
        "ds_logs_dir": str(tmp_path / "logs"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert sorted(os.listdir(export_dir)) == [SAVED_MODEL, FROZEN_GRAPH, TFLITE["float32"]]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["frozen", "saved"])
def test_the_export_takes_raw_audio_in_plain_tensorflow(exported, tmp_path, kind):
    audio, rate = soundfile.read(LDC93S1_WAV, dtype="int16")
    assert rate == 16000
    np.save(tmp_path / "audio.npy", audio)
    path = exported["pb"] if kind == "frozen" else exported["dir"] / SAVED_MODEL
    lines = run_plain(AUDIO_CLIENT, kind, path, tmp_path / "audio.npy", cwd=tmp_path)[-2:]
    alphabet = " abcdefghijklmnopqrstuvwxyz'"
    # float32 and int16 input alike (the first utterance of a padded batch of two).
    assert ["".join(alphabet[int(i)] for i in line.split()) for line in lines] == [SENTENCE] * 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "client, model", [("plain-client", FROZEN_GRAPH), ("tflite-client", TFLITE["float32"])]
)
def test_the_documented_plain_clients_transcribe_ldc93s1(exported, tmp_path, client, model):
    """docs/export.md's scripts (the README points to them), as written there, in a process
    with no project code: the frozen graph in TensorFlow, the TFLite model in
    tf.lite.Interpreter."""
    script, block = documented_client(client, tmp_path)
    assert len(block.strip().splitlines()) <= 20  # short enough to read at a glance
    assert run_isolated(script, exported["dir"] / model, LDC93S1_WAV, cwd=tmp_path) == SENTENCE


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["coefficient", "speech"])
def test_a_model_trained_with_per_coefficient_normalisation_travels_with_it(tmp_path, norm):
    """ds_feature_norm=coefficient (and speech) reaches training, the test report, one-shot
    inference, the export's graph, metadata and TFLite model, and the transcriber; a run or
    export that would feed such a checkpoint the 2017 features stops, naming the setting."""
    from helpers import EPOCHS, SMALL_MODEL

    environ = {
        **SMALL_MODEL,
        "ds_epochs": str(EPOCHS),
        "ds_feature_norm": norm,
        "ds_checkpoint_dir": str(tmp_path / "ckpt"),
        "ds_logs_dir": str(tmp_path / "logs"),
        "ds_export_dir": str(tmp_path / "export"),
    }
    status, out, err = run_main(environ)
    assert status == 0, out + err
    assert "Test loss=" in out and " WER: 0.000000 " in out.split("Test loss=")[1]
    status, out, err = run_main({**environ, "ds_export_dir": "", "ds_one_shot_infer": LDC93S1_WAV})
    assert status == 0 and out.strip().splitlines()[-1] == SENTENCE, out + err
    for model in ("output_graph.pb", TFLITE["float32"]):
        transcriber = Transcriber(str(tmp_path / "export" / model))
        assert transcriber.metadata["features"]["normalisation"] == norm
        assert transcriber.transcribe(LDC93S1_WAV).text == SENTENCE
        transcriber.close()
    plain = {**environ, "ds_feature_norm": "utterance", "ds_logs_dir": str(tmp_path / "logs2")}
    testing = {"ds_train": "0", "ds_export_dir": ""}
    exporting = {"ds_train": "0", "ds_test": "0", "ds_export_dir": str(tmp_path / "e2")}
    for extra in (testing, exporting):
        status, out, err = run_main({**plain, **extra})
        assert status == 1, out + err
        assert f"was trained with ds_feature_norm={norm}, but this run uses " in err
        assert "ds_feature_norm=utterance" in err
