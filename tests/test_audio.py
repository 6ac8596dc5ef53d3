"""util.data.audio: loading real WAV files and the MFCC + context-window feature recipe."""

import math

import numpy as np
import pytest
import soundfile
from helpers import LDC93S1_WAV, synth_speech
from python_speech_features import mfcc

from util.data.audio import (
    AudioError,
    audio_duration,
    audio_info,
    audio_to_input_vector,
    audiofile_to_input_vector,
    load_audio,
    mfcc_frames,
    recipe_mfcc,
    time_steps,
)
from util.settings.geometry import N_CONTEXT, N_FEATURES, N_INPUT, SILENCE_FLOOR

MIDDLE = slice(N_CONTEXT * N_INPUT, (N_CONTEXT + 1) * N_INPUT)  # columns 234:260


def reference_features(audio):
    """The 2017 recipe written out independently: MFCC, every second frame, then explicit past /
    now / future windows with zero frames outside the utterance, normalised by the utterance's
    own mean and standard deviation. Returns (frames, raw windows, normalised windows)."""
    frames = mfcc(audio, samplerate=16000, winlen=0.025, winstep=0.01, numcep=26)[::2]
    zero = np.zeros(26)
    rows = []
    for t in range(len(frames)):
        past = [frames[t - k] if t - k >= 0 else zero for k in range(N_CONTEXT, 0, -1)]
        future = [frames[t + k] if t + k < len(frames) else zero for k in range(1, N_CONTEXT + 1)]
        rows.append(np.concatenate([*past, frames[t], *future]))
    raw = np.array(rows)
    return frames, raw, (raw - raw.mean()) / raw.std()


@pytest.mark.parametrize("n_samples", [1, 399, 400, 401, 560, 561, 720, 721, 880, 881, 44817])
def test_mfcc_frames_are_every_second_10ms_frame(n_samples):
    # mfcc_frames computes at the 20 ms step directly; the frames must be exactly the kept
    # half of the 2017 recipe's 10 ms frames, at every length around the framing's edges.
    audio = np.random.default_rng(n_samples).normal(size=n_samples) * 3000
    reference = mfcc(audio, samplerate=16000, winlen=0.025, winstep=0.01, numcep=26)[::2]
    np.testing.assert_array_equal(mfcc_frames(audio), reference.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16])
def test_recipe_mfcc_is_python_speech_features_mfcc(dtype):
    # The same numbers to the last bit, whatever the samples' type, the top frequency and the
    # pre-emphasis (a stream does its own: 0 here), at lengths around the framing's edges.
    for n_samples, max_hz, preemph in ((400, 8000, 0.97), (881, 4000, 0.0), (16001, 8000, 0.0)):
        audio = (np.random.default_rng(n_samples).normal(size=n_samples) * 3000).astype(dtype)
        expected = mfcc(
            audio, 16000, 0.025, 0.02, 26, 26, 512, highfreq=max_hz, preemph=preemph, ceplifter=22
        )
        np.testing.assert_array_equal(recipe_mfcc(audio, 26, max_hz, preemph), expected)


def test_constants():
    assert (N_INPUT, N_CONTEXT, N_FEATURES) == (26, 9, 494)
    assert (MIDDLE.start, MIDDLE.stop) == (234, 260)


def test_ldc93s1_shape(ldc93s1_wav):
    features = audiofile_to_input_vector(ldc93s1_wav)
    assert features.shape == (146, 494)
    assert features.dtype == np.float32
    assert time_steps(audio_duration(ldc93s1_wav)) == 146


@pytest.mark.parametrize("seconds", [0.02, 0.3, 0.5, 1.0, 1.37, 2.0])
def test_time_steps_match_feature_rows(speech_wav, seconds):
    path = speech_wav(seconds=seconds)
    audio = load_audio(str(path))
    assert len(audio) == round(seconds * 16000)
    features = audiofile_to_input_vector(str(path))
    n_mfcc = len(mfcc(audio, samplerate=16000, numcep=26))
    assert features.shape == (math.ceil(n_mfcc / 2), 494)
    assert features.shape[0] == time_steps(seconds) == time_steps(audio_duration(str(path)))


def test_features_equal_reference_recipe(speech_wav):
    audio = load_audio(str(speech_wav(seconds=0.7, seed=3)))
    _, _, expected = reference_features(audio)
    features = audio_to_input_vector(audio)
    np.testing.assert_allclose(features, expected, rtol=0, atol=2e-4)


def test_context_windows_and_zero_padding(speech_wav):
    audio = load_audio(str(speech_wav(seconds=0.8, seed=5)))
    frames, raw, _ = reference_features(audio)
    mean, std = raw.mean(), raw.std()
    features = audio_to_input_vector(audio).astype(np.float64)
    n = len(frames)
    assert features.shape == (n, 494)
    # Row t holds frame t in the middle slot and frames t-1, t+1 in the neighbouring slots.
    np.testing.assert_allclose(features[:, MIDDLE], (frames - mean) / std, atol=2e-4)
    np.testing.assert_allclose(features[1:, 208:234], (frames[:-1] - mean) / std, atol=2e-4)
    np.testing.assert_allclose(features[:-1, 260:286], (frames[1:] - mean) / std, atol=2e-4)
    # Outside the utterance the windows hold zero frames, i.e. the normalised value of 0.
    zero_value = (0.0 - mean) / std
    np.testing.assert_allclose(features[0, : 9 * 26], zero_value, atol=2e-4)
    np.testing.assert_allclose(features[-1, -9 * 26 :], zero_value, atol=2e-4)
    np.testing.assert_allclose(features[1, : 8 * 26], zero_value, atol=2e-4)
    # ... and only there: the frame right before the middle of row 1 is real audio.
    assert not np.allclose(features[1, 208:234], zero_value, atol=1e-2)
    assert not np.allclose(features[0, MIDDLE], zero_value, atol=1e-2)


def test_features_are_normalised(speech_wav):
    features = audiofile_to_input_vector(str(speech_wav(seconds=1.5)))
    assert abs(float(features.mean())) < 1e-5
    assert float(features.std()) == pytest.approx(1.0, abs=1e-4)
    assert np.isfinite(features).all()


def test_silence_gives_finite_features():
    features = audio_to_input_vector(np.zeros(16000, dtype=np.float32))
    assert features.shape == (time_steps(1.0), 494)
    assert np.isfinite(features).all()


def test_load_audio_is_on_16_bit_scale(speech_wav):
    path = speech_wav(seconds=0.5)
    ints, rate = soundfile.read(str(path), dtype="int16")
    assert rate == 16000
    audio = load_audio(str(path))
    assert audio.dtype == np.float32
    np.testing.assert_array_equal(audio, ints.astype(np.float32))


def test_stereo_equals_mono_downmix(speech_wav):
    path = speech_wav("stereo.wav", seconds=0.6, channels=2)
    channels, _ = soundfile.read(str(path), dtype="int16")
    assert channels.shape[1] == 2
    assert not np.array_equal(channels[:, 0], channels[:, 1])
    downmix = channels.astype(np.float64).mean(axis=1)
    audio = load_audio(str(path))
    np.testing.assert_allclose(audio, downmix, atol=1e-2)
    np.testing.assert_allclose(
        audiofile_to_input_vector(str(path)),
        audio_to_input_vector(downmix.astype(np.float32)),
        atol=1e-4,
    )


def test_stereo_with_identical_channels_equals_mono(tmp_path, speech_wav):
    mono = speech_wav("mono.wav", seconds=0.5)
    samples, rate = soundfile.read(str(mono), dtype="int16")
    stereo = tmp_path / "dual.wav"
    soundfile.write(str(stereo), np.stack([samples, samples], axis=1), rate, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(str(stereo)), load_audio(str(mono)))
    np.testing.assert_array_equal(
        audiofile_to_input_vector(str(stereo)), audiofile_to_input_vector(str(mono))
    )


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_other_sample_rates_are_resampled(speech_wav, rate):
    seconds = 1.2  # a whole number of samples at every rate
    path = speech_wav(f"at_{rate}.wav", seconds=seconds, rate=rate, noise=0.0)
    reference = load_audio(str(speech_wav("at_16000.wav", seconds=seconds, noise=0.0)))
    audio = load_audio(str(path))
    assert audio_duration(str(path)) == pytest.approx(seconds)
    assert len(audio) == round(seconds * 16000)
    # Same sound: the resampled signal follows the natively generated 16 kHz one.
    inner = slice(400, -400)  # skip the filter's edge effects
    correlation = np.corrcoef(audio[inner], reference[inner])[0, 1]
    assert correlation > 0.99
    features = audiofile_to_input_vector(str(path))
    assert features.shape == (time_steps(seconds), 494)


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_24", "PCM_32", "DOUBLE"])
def test_other_sample_formats(speech_wav, subtype):
    reference = load_audio(str(speech_wav("pcm16.wav", seconds=0.5)))
    path = speech_wav(f"{subtype}.wav", seconds=0.5, subtype=subtype)
    assert soundfile.info(str(path)).subtype == subtype
    audio = load_audio(str(path))
    # Same 16-bit scale as the int16 file, up to that file's quantisation.
    np.testing.assert_allclose(audio, reference, atol=1.0)
    assert audiofile_to_input_vector(str(path)).shape == (time_steps(0.5), 494)


def test_missing_file_raises_audio_error(tmp_path):
    path = str(tmp_path / "no_such_file.wav")
    with pytest.raises(AudioError, match="no_such_file.wav"):
        load_audio(path)
    with pytest.raises(AudioError, match="no_such_file.wav"):
        audio_duration(path)
    with pytest.raises(AudioError, match="no_such_file.wav"):
        audiofile_to_input_vector(path)


def test_corrupt_file_raises_audio_error(corrupt_wav):
    with pytest.raises(AudioError, match="corrupt.wav"):
        load_audio(str(corrupt_wav))
    with pytest.raises(AudioError, match="corrupt.wav"):
        audio_duration(str(corrupt_wav))


def test_zero_length_wav_raises_audio_error(empty_wav):
    assert audio_duration(str(empty_wav)) == 0.0
    with pytest.raises(AudioError, match="empty.wav"):
        load_audio(str(empty_wav))


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, ValueError)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.0, 1), (0.025, 1), (0.02, 1), (0.035, 1), (0.036, 2), (1.0, 50), (2.9248125, 146)],
)
def test_time_steps_values(seconds, expected):
    # frames = 1 + ceil((samples - 400) / 160), then every second frame is kept.
    assert time_steps(seconds) == expected


def test_time_steps_predicts_rows_of_resampled_file(speech_wav):
    frames_44k = 44762  # 1.01501 s: 16241.45 samples at 16 kHz, rounded 16241, resampled 16242
    path = str(speech_wav("cd.wav", seconds=frames_44k / 44100, rate=44100))
    assert soundfile.info(path).frames == frames_44k
    assert audiofile_to_input_vector(path).shape[0] == audio_info(path)[1]


def test_coefficient_normalisation_takes_out_gain_and_some_colouring():
    """ds_feature_norm=coefficient: each MFCC coefficient at mean 0 and deviation 1 over the
    utterance. A gain, which adds a constant to every log mel band, then changes nothing; a
    mild colouring (a low-pass filter, as a duller channel or voice) changes the features less
    than it changes those of the 2017 normalisation."""
    from scipy.signal import lfilter

    audio = load_audio(LDC93S1_WAV)
    plain = audio_to_input_vector(audio, norm="coefficient")
    centre = plain[:, N_CONTEXT * N_INPUT : (N_CONTEXT + 1) * N_INPUT]  # each step's own frame
    np.testing.assert_allclose(centre.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(centre.std(axis=0), 1, atol=1e-4)
    louder = audio * 2.0
    np.testing.assert_allclose(audio_to_input_vector(louder, norm="coefficient"), plain, atol=1e-4)
    assert np.abs(audio_to_input_vector(louder) - audio_to_input_vector(audio)).max() > 1e-3
    duller = lfilter([1.0, 0.5], [1.0], audio).astype(np.float32)
    changed = {
        norm: np.abs(
            audio_to_input_vector(duller, norm=norm) - audio_to_input_vector(audio, norm=norm)
        ).mean()
        for norm in ("utterance", "coefficient")
    }
    assert changed["coefficient"] < changed["utterance"], changed


@pytest.mark.parametrize("hiss", [0.0, 1.0])
def test_speech_normalisation_is_not_moved_by_silence_around_the_speech(hiss):
    """ds_feature_norm=speech: half a second of digital silence (or of a hiss some 70 dB below
    the speech's peak) on either side leaves the speech's features as they were, where the
    per-utterance statistics of coefficient move them; the silence's own log energy sits at
    the floor 40 dB below the loudest frame, not far below every frame of speech."""
    audio = load_audio(LDC93S1_WAV)
    rng = np.random.default_rng(5)
    silence = [rng.normal(0, hiss, 8000).astype(np.float32) for _ in range(2)]
    padded = np.concatenate([silence[0], audio, silence[1]])
    shift = 8000 // 320  # 20 ms steps of silence before the speech
    moved = {}
    for norm in ("coefficient", "speech"):
        alone = audio_to_input_vector(audio, norm=norm)
        within = audio_to_input_vector(padded, norm=norm)[shift : shift + len(alone)]
        moved[norm] = np.abs(within - alone)[N_CONTEXT + 3 : -N_CONTEXT - 3].max()
    assert moved["speech"] < 0.1 < 0.5 < moved["coefficient"], moved
    if hiss == 0:
        # The silence's log energy: at the floor, a few deviations below the speech's mean.
        energy = audio_to_input_vector(padded, norm="speech")[:, N_CONTEXT * N_INPUT]
        frames = mfcc_frames(audio)[:, 0]
        counted = frames[frames > frames.max() - SILENCE_FLOOR]
        floor = (frames.max() - SILENCE_FLOOR - counted.mean()) / counted.std()
        np.testing.assert_allclose(energy[:shift], floor, atol=0.05)
        assert -10 < floor < -3, floor


def test_an_mp3_cut_short_is_unreadable_not_short(tmp_path):
    """A compressed file cut short still gives its full length in its header: decoding finds
    out, and the file counts as unreadable instead of feeding half an utterance."""
    from util.data.audio import UNREADABLE, AudioError, load_audio

    path = tmp_path / "whole.mp3"
    soundfile.write(path, synth_speech(2.0, rate=48000), 48000, format="MP3")
    assert len(load_audio(str(path))) == pytest.approx(32000, rel=0.05)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(AudioError, match="cut.mp3 is cut short") as error:
        load_audio(str(cut))
    assert error.value.reason == UNREADABLE
