"""util.data.augment and the augmented feeding path: each perturbation changes the audio or the
features as documented, labels and lengths stay consistent, off means bit-identical."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from python_speech_features import logfbank

from util.data import augment
from util.data.audio import audiofile_to_input_vector, load_audio, mfcc_frames
from util.data.feature_cache import FeatureCache
from util.data.feeding import DataOptions, DataSet, build_data_sets
from util.data.samples import check_samples
from util.data.text import text_to_char_array
from util.settings import augmentation
from util.settings.config import from_environ
from util.settings.geometry import SAMPLE_RATE

tf.disable_v2_behavior()


def tone(hz: float, seconds: float = 1.0, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def dominant_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(audio))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- parsing --------------------------------------------------------------------------------------


def test_off_and_empty_disable_augmentation():
    for text in ("", "off", " 0 ", "none"):
        assert not augmentation.parse(text).enabled
    assert augmentation.parse("off").text() == ""


def test_on_is_the_default_recipe_and_later_items_override():
    assert augmentation.parse("on") == augmentation.parse(augmentation.DEFAULT_TEXT)
    custom = augmentation.parse("on,noise=5:20@0.25,tempo=0.9:1.1")
    assert custom.noise == augmentation.Item(5.0, 20.0, 0.25)
    assert custom.tempo == augmentation.Item(0.9, 1.1, 1.0)  # no @P: always
    assert custom.speed == augmentation.parse("on").speed


def test_canonical_text_round_trips():
    aug = augmentation.parse("speed=0.9:1.1@0.5, time_mask=2:10@0.5,pitch=-2:2")
    assert aug.text() == "speed=0.9:1.1@0.5,pitch=-2:2@1,time_mask=2:10@0.5"
    assert augmentation.parse(aug.text()) == aug


@pytest.mark.parametrize(
    "text, message",
    [
        ("loudness=1:2", "NAME one of"),
        ("speed", "NAME one of"),
        ("speed=1.2:0.9", "LOW <= HIGH"),
        ("speed=3:4", "0.5 <= LOW"),
        ("noise=a:b", "expected LOW:HIGH@P"),
        ("noise=10:20@1.5", "probability P from 0 to 1"),
        ("time_mask=1.5:4", "whole COUNT"),
        ("freq_mask=2:40", "whole WIDTH from 1 to 26"),
    ],
)
def test_bad_items_are_refused_with_what_is_allowed(text, message):
    with pytest.raises(augmentation.AugmentError, match=message):
        augmentation.parse(text)


def test_ds_augment_is_validated_and_stored_canonically():
    config = from_environ({"ds_augment": "on", "ds_checkpoint_dir": "unused"})
    assert config.augment == augmentation.DEFAULT_TEXT
    with pytest.raises(ValueError, match="^ds_augment='speed=9': speed="):
        from_environ({"ds_augment": "speed=9", "ds_checkpoint_dir": "unused"})
    assert DataOptions.from_config(config, 1).augmentation == augmentation.parse("on")


def test_draws_are_reproducible_and_respect_probabilities():
    aug = augmentation.parse("speed=0.9:1.1@0.5,noise=10:30@0,time_mask=2:5@1")
    draws = [aug.draw(rng(i)) for i in range(400)]
    assert draws[7] == aug.draw(rng(7))
    speeds = [v for d in draws for name, v in d.audio if name == "speed"]
    assert 150 < len(speeds) < 250 and all(0.9 <= v <= 1.1 for v in speeds)
    assert not any(name == "noise" for d in draws for name, _ in d.audio)
    assert all(d.frames == (("time_mask", 2.0),) for d in draws)


# -- audio ----------------------------------------------------------------------------------------


def test_speed_changes_duration_and_pitch_together():
    audio = tone(200)
    faster = augment.change_speed(audio, 1.25)
    assert len(faster) == pytest.approx(len(audio) / 1.25, abs=2)
    assert dominant_hz(faster) == pytest.approx(250, abs=3)
    slower = augment.change_speed(audio, 0.8)
    assert len(slower) == pytest.approx(len(audio) / 0.8, abs=2)
    assert dominant_hz(slower) == pytest.approx(160, abs=3)
    np.testing.assert_array_equal(augment.change_speed(audio, 1.0), audio)


def test_tempo_changes_duration_not_pitch():
    audio = tone(200)
    for factor in (0.8, 1.2):
        stretched = augment.change_tempo(audio, factor)
        assert len(stretched) == round(len(audio) / factor)
        assert dominant_hz(stretched) == pytest.approx(200, abs=3)
        # WSOLA keeps the level: no gaps or doubled overlaps in the middle.
        middle = stretched[2000:-2000]
        assert np.sqrt(np.mean(middle**2)) == pytest.approx(8000 / np.sqrt(2), rel=0.05)


def test_pitch_changes_pitch_not_duration():
    audio = tone(200)
    for semitones in (-3.0, 4.0):
        shifted = augment.shift_pitch(audio, semitones)
        assert len(shifted) == len(audio)
        assert dominant_hz(shifted) == pytest.approx(200 * 2 ** (semitones / 12), abs=4)


def test_volume_is_a_gain_in_db_clipped_to_16_bits():
    audio = tone(200, amplitude=1000)
    louder = augment.change_volume(audio, 6.0)
    np.testing.assert_allclose(louder, audio * 10 ** (6 / 20), rtol=1e-5)
    clipped = augment.change_volume(tone(200, amplitude=20000), 12.0)
    assert np.abs(clipped).max() == pytest.approx(augment.INT16_MAX)


def test_noise_has_the_signal_to_noise_ratio_asked():
    audio = tone(300)
    for snr in (5.0, 20.0):
        noisy = augment.add_noise(audio, snr, rng(3))
        noise = noisy.astype(np.float64) - audio
        measured = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.05)
    np.testing.assert_array_equal(
        augment.add_noise(audio, 10, rng(1)), augment.add_noise(audio, 10, rng(1))
    )
    silence = np.zeros(1000, np.float32)
    np.testing.assert_array_equal(augment.add_noise(silence, 10, rng()), silence)


# -- features -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_frames(tmp_path_factory):
    from helpers import write_speech_wav

    path = write_speech_wav(tmp_path_factory.mktemp("aug") / "s.wav", seconds=2.0)
    audio = load_audio(str(path))
    return audio, mfcc_frames(audio)


def test_mfcc_frames_turn_back_into_log_mel_energies(speech_frames):
    audio, frames = speech_frames
    log_mel = augment.mfcc_to_log_mel(frames)
    np.testing.assert_allclose(augment.log_mel_to_mfcc(log_mel, 26), frames, atol=1e-3)
    # The recipe's first coefficient is the log energy: the bands match python_speech_features'
    # log filterbank up to one offset per frame.
    reference = logfbank(audio, SAMPLE_RATE, winlen=0.025, winstep=0.01, nfilt=26)[::2]
    offsets = log_mel - reference
    assert np.abs(offsets - offsets.mean(axis=1, keepdims=True)).max() < 1e-3


def test_time_mask_sets_steps_to_the_mean_and_keeps_the_length(speech_frames):
    _, frames = speech_frames
    masked = augment.mask_time(frames, 2, 10, rng(5))
    assert masked.shape == frames.shape and masked.dtype == np.float32
    changed = np.flatnonzero(np.any(masked != frames, axis=1))
    assert 0 < len(changed) <= 20
    mean = np.broadcast_to(frames.mean(axis=0), (len(changed), 26))
    np.testing.assert_allclose(masked[changed], mean, rtol=1e-6)
    # At most a fifth of a short utterance, whatever the width asked.
    short = frames[:20]
    for seed in range(20):
        assert np.any(augment.mask_time(short, 2, 50, rng(seed)) != short, axis=1).sum() <= 4
    np.testing.assert_array_equal(augment.mask_time(frames, 0, 10, rng()), frames)


def test_frequency_mask_flattens_mel_bands_only(speech_frames):
    _, frames = speech_frames
    for seed in range(10):
        masked = augment.mask_frequency(frames, 1, 4, rng(seed))
        assert masked.shape == frames.shape
        before, after = augment.mfcc_to_log_mel(frames), augment.mfcc_to_log_mel(masked)
        flat = np.flatnonzero(np.abs(after - before).max(axis=0) > 1e-3)
        assert len(flat) <= 4
        if len(flat):
            assert flat.tolist() == list(range(flat[0], flat[0] + len(flat)))  # contiguous
            assert np.ptp(after[:, flat], axis=0).max() < 1e-3  # constant over time
            np.testing.assert_allclose(after[:, flat[0]], before[:, flat[0]].mean(), atol=1e-3)


# -- the feeding path -----------------------------------------------------------------------------


@pytest.fixture
def samples(speech_wav):
    # A second of audio (50 steps): "ab" fits easily; 40 letters fit only un-sped.
    pairs = [
        (str(speech_wav("short.wav", seconds=1.0, seed=1)), "ab"),
        (str(speech_wav("tight.wav", seconds=1.02, seed=2)), "abcd " * 8),
    ]
    return check_samples(pairs, "train")


def test_without_augmentation_the_features_are_bit_identical(samples):
    for aug in (None, augmentation.NONE, augmentation.parse("off")):
        data_set = DataSet("train", samples, 1, augmentation=aug)
        assert data_set.augmentation is None
        features, labels, index = data_set._load(0, epoch=3, position=5)
        reference = audiofile_to_input_vector(samples[0].wav_filename)
        assert features.dtype == reference.dtype
        np.testing.assert_array_equal(features, reference)
        assert labels.tolist() == text_to_char_array(samples[0].transcript).tolist()


def test_augmented_features_are_reproducible_per_epoch_and_position(samples):
    aug = augmentation.parse("noise=10:10@1,time_mask=2:5@1")
    data_set = DataSet("train", samples, 1, augmentation=aug, seed=9)
    clean = audiofile_to_input_vector(samples[0].wav_filename)
    first, _, _ = data_set._load(0, epoch=0, position=0)
    again, _, _ = data_set._load(0, epoch=0, position=0)
    other_epoch, _, _ = data_set._load(0, epoch=1, position=0)
    assert first.shape == clean.shape and not np.array_equal(first, clean)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_epoch)
    assert data_set.augmented == 3 and data_set.augment_fallbacks == 0


def test_the_cache_keeps_clean_frames_and_masks_apply_to_them(samples, tmp_path):
    cache = FeatureCache(str(tmp_path / "cache"))
    aug = augmentation.parse("speed=1.1:1.1@1,freq_mask=1:3@1")
    data_set = DataSet("train", samples, 1, augmentation=aug, feature_cache=cache)
    features, _, _ = data_set._load(0, epoch=0, position=0)  # a miss: computes and stores
    sample = samples[0]
    key = cache.key(sample.wav_filename, 0.0, None, None, 26, 8000)
    np.testing.assert_array_equal(cache.load(key, 26), mfcc_frames(load_audio(sample.wav_filename)))
    assert len(features) < len(audiofile_to_input_vector(sample.wav_filename))  # sped up
    # A clean set reading the same cache gets exactly the clean features.
    clean_set = DataSet("train", samples, 1, feature_cache=cache)
    clean, _, _ = clean_set._load(0)
    assert clean_set.cache_hits == 1
    np.testing.assert_array_equal(clean, audiofile_to_input_vector(sample.wav_filename))
    # Masks alone work from the cache (no audio read).
    masks = DataSet(
        "train", samples, 1, augmentation=augmentation.parse("time_mask=2:5@1"), feature_cache=cache
    )
    masked, _, _ = masks._load(0)
    assert masks.cache_hits == 1 and masked.shape == clean.shape


def test_a_sample_too_short_after_speeding_up_is_fed_clean(samples):
    data_set = DataSet("train", samples, 1, augmentation=augmentation.parse("speed=1.5:1.5@1"))
    features, labels, index = data_set._load(1)
    tight = samples[1]
    assert index == 1 and labels.tolist() == text_to_char_array(tight.transcript).tolist()
    np.testing.assert_array_equal(features, audiofile_to_input_vector(tight.wav_filename))
    assert data_set.augment_fallbacks == 1
    short, _, _ = data_set._load(0)
    clean = audiofile_to_input_vector(samples[0].wav_filename)
    assert len(short) == pytest.approx(len(clean) / 1.5, abs=1)
    assert data_set.augmented == 1


def test_the_queue_carries_the_augmented_lengths_with_their_labels(samples):
    graph = tf.Graph()
    with graph.as_default():
        aug = augmentation.parse("speed=0.7:0.7@1")  # slower: every sample gets longer
        data_set = DataSet("train", samples, 2, thread_count=2, augmentation=aug)
        batch = data_set.next_batch()
        dense = tf.sparse.to_dense(batch.labels, default_value=-1)
    session = tf.Session(graph=graph)
    coord = tf.train.Coordinator()
    threads = data_set.start_queue_threads(session, coord)
    try:
        for _ in range(2):
            features, lengths, labels, indices = session.run(
                [batch.features, batch.feature_lengths, dense, batch.indices]
            )
            assert indices.tolist() == [0, 1]  # the order of the plan is kept
            for row, index in enumerate(indices):
                sample = samples[index]
                clean = len(audiofile_to_input_vector(sample.wav_filename))
                assert lengths[row] == pytest.approx(clean / 0.7, abs=1)
                assert not features[row, lengths[row] :].any()
                label = text_to_char_array(sample.transcript)
                assert labels[row, : len(label)].tolist() == label.tolist()
    finally:
        data_set.close_queue(session)
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=5)
        session.close()


def test_only_the_training_set_is_augmented(speech_wav):
    pair = [(str(speech_wav("a.wav", seconds=1.0)), "ab")]
    sets = build_data_sets(
        {"train": pair, "dev": pair, "test": pair},
        DataOptions(augmentation=augmentation.parse("on")),
    )
    assert sets.train.augmentation == augmentation.parse("on")
    assert sets.dev.augmentation is None and sets.test.augmentation is None


# -- vocal tract length perturbation ----------------------------------------------------------


def synthetic_vowel(formants=(500.0, 2000.0), pitch=100.0, seconds=1.0) -> np.ndarray:
    """A vowel-like sound on the 16-bit scale: the harmonics of ``pitch``, each as loud as a
    resonance at each formant (bandwidth 80 Hz) makes it."""
    t = np.arange(int(seconds * 16000)) / 16000
    audio = np.zeros_like(t)
    for k in range(1, int(7000 / pitch)):
        f = k * pitch
        gain = sum(1.0 / (1.0 + ((f - formant) / 80.0) ** 2) for formant in formants)
        audio += gain * np.sin(2 * np.pi * f * t)
    return (audio / np.abs(audio).max() * 10000).astype(np.float32)


def band_centres(n_filters: int = 26, top: float = 8000.0) -> np.ndarray:
    mel = np.linspace(0, 2595 * np.log10(1 + top / 700), n_filters + 2)
    return (700 * (10 ** (mel / 2595) - 1))[1:-1]


def first_formant_hz(frames: np.ndarray) -> float:
    """Where the first spectral peak lies, in the unwarped bands' centre frequencies."""
    envelope = augment.mfcc_to_log_mel(frames.astype(np.float64)).mean(axis=0)
    centres = band_centres()
    low = centres < 1200
    return float(centres[low][np.argmax(envelope[low])])


@pytest.mark.parametrize("factor", [0.85, 1.2])
def test_vtlp_moves_the_formants_by_its_factor(factor):
    """VTLP scales the filterbank's frequencies by the factor: a formant at F is read where
    an unwarped filterbank would read F / factor, as if the speaker's vocal tract were longer
    (factor above 1) or shorter."""
    vowel = synthetic_vowel()
    draws = augmentation.parse(f"vtlp={factor}:{factor}").draw(np.random.default_rng(0))
    assert draws.vtlp == pytest.approx(factor)
    plain = first_formant_hz(mfcc_frames(vowel))
    warped = first_formant_hz(mfcc_frames(vowel, vtlp=draws.vtlp))
    centres = band_centres()
    spacing = float(np.diff(centres[centres < 1200]).max())
    assert abs(plain - 500) <= spacing
    assert abs(warped - 500 / factor) <= spacing, (plain, warped)
    assert (warped < plain) == (factor > 1)


def test_vtlp_of_one_is_the_recipe():
    vowel = synthetic_vowel()
    np.testing.assert_allclose(mfcc_frames(vowel, vtlp=1.0 + 1e-9), mfcc_frames(vowel), atol=1e-3)


def test_vtlp_draws_come_after_the_others():
    """Adding vtlp to a ds_augment leaves what the other items draw as it was."""
    base = augmentation.parse("speed=0.9:1.1@0.5,time_mask=2:10@0.5")
    more = augmentation.parse("speed=0.9:1.1@0.5,time_mask=2:10@0.5,vtlp=0.9:1.1")
    for seed in range(20):
        a = base.draw(np.random.default_rng(seed))
        b = more.draw(np.random.default_rng(seed))
        assert [d for d in b.audio if d[0] != "vtlp"] == list(a.audio) and b.frames == a.frames
        assert 0.9 <= b.vtlp <= 1.1
    assert "vtlp=0.9:1.1@1" in more.text()


# -- reverberation and the user's recordings ------------------------------------------------------


def decay_rt60(response: np.ndarray) -> float:
    """RT60 of an impulse response by Schroeder's backward integration, from its fall from
    -5 dB to -35 dB (doubled, as a T30 measurement)."""
    energy = np.cumsum(response[::-1].astype(np.float64) ** 2)[::-1]
    level = 10 * np.log10(energy / energy[0])
    return 2.0 * (np.argmax(level < -35) - np.argmax(level < -5)) / SAMPLE_RATE


@pytest.mark.parametrize("rt60", [0.3, 0.9])
def test_reverb_gives_the_reverberation_time_drawn(rt60):
    """A click through the reverb item decays by 60 dB in the drawn RT60; length and mean
    power are kept."""
    click = np.zeros(3 * SAMPLE_RATE, np.float32)
    click[0] = 20000.0
    aug = augmentation.parse(f"reverb={rt60}:{rt60}")
    generator = rng(5)
    draws = aug.draw(generator)
    assert draws.audio == (("reverb", pytest.approx(rt60)),)
    wet = augment.apply_audio(aug, click, draws, generator)
    assert len(wet) == len(click)
    assert np.mean(wet.astype(np.float64) ** 2) == pytest.approx(np.mean(click**2.0), rel=1e-3)
    assert decay_rt60(wet) == pytest.approx(rt60, rel=0.15)
    assert abs(wet[0]) == np.abs(wet).max()  # the direct sound comes first, undelayed


def test_reverb_and_noise_come_after_the_others_and_keep_their_draws():
    base = augmentation.parse("speed=0.9:1.1@0.5,noise=10:30@0.5,vtlp=0.9:1.1")
    more = augmentation.parse("speed=0.9:1.1@0.5,noise=10:30@0.5,vtlp=0.9:1.1,reverb=0.2:0.8@0.5")
    for seed in range(20):
        a, b = base.draw(rng(seed)), more.draw(rng(seed))
        assert [d for d in b.audio if d[0] != "reverb"] == list(a.audio)
    assert "reverb=0.2:0.8@0.5" in more.text()
    with pytest.raises(augmentation.AugmentError, match="0.05 <= LOW <= HIGH <= 3"):
        augmentation.parse("reverb=0:1")


def test_reverb_uses_the_users_impulse_responses(tmp_path):
    """With ds_augment_rirs, a click comes out as one of the recorded responses (read at any
    rate, started at its direct sound) or as a generated one, each equally likely."""
    import soundfile

    response = np.zeros(4000)  # 8 kHz: 0.5 s, direct sound after 0.1 s, one echo 0.1 s later
    response[800], response[1600] = 0.5, 0.25
    soundfile.write(tmp_path / "room.wav", response, 8000)
    aug = augmentation.parse("reverb=0.5:0.5", rirs=[str(tmp_path)])
    assert aug.rirs == (str(tmp_path / "room.wav"),)
    click = np.zeros(SAMPLE_RATE, np.float32)
    click[1000] = 10000.0
    recorded = 0
    for seed in range(40):
        generator = rng(seed)
        wet = augment.apply_audio(aug, click, aug.draw(generator), generator)
        echo = wet[1000 + 16 + 1600 - 20 : 1000 + 16 + 1600 + 20]  # 0.1 s after the direct sound
        if np.abs(wet[1200:2500]).max() < 0.01 * np.abs(wet).max():  # nothing but one echo
            recorded += 1
            assert np.abs(echo).max() == pytest.approx(0.5 * np.abs(wet).max(), rel=0.1)
            assert int(np.argmax(np.abs(wet))) == pytest.approx(1000 + 16, abs=3)
    assert 10 <= recorded <= 30


def test_noise_uses_the_users_recordings_at_the_ratio_asked(tmp_path):
    """With ds_augment_noises, the added noise is a stretch of a recording (here a 440 Hz
    hum, shorter than the utterance, so repeated) or generated noise, each equally likely,
    at the signal-to-noise ratio drawn."""
    import soundfile

    soundfile.write(tmp_path / "hum.flac", tone(440, 0.3) / augment.INT16_MAX, 16000)
    aug = augmentation.parse("noise=6:6", noises=[str(tmp_path / "hum.flac")])
    audio = tone(2000, 1.0)
    hums = 0
    for seed in range(40):
        generator = rng(seed)
        noisy = augment.apply_audio(aug, audio, aug.draw(generator), generator)
        noise = noisy.astype(np.float64) - audio
        measured = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(6.0, abs=0.05)
        if dominant_hz(noise) == pytest.approx(440, abs=3):
            hums += 1
    assert 10 <= hums <= 30


def test_bad_recording_settings_name_the_file(tmp_path):
    base = {"ds_checkpoint_dir": "unused", "ds_augment": "on,reverb=0.2:0.8@0.3"}
    with pytest.raises(ValueError, match=r"^ds_augment_rirs: .*missing: no such file or folder"):
        from_environ({**base, "ds_augment_rirs": str(tmp_path / "missing")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"ds_augment_noises: .*empty: the folder holds no"):
        from_environ({**base, "ds_augment_noises": str(tmp_path / "empty")})
    (tmp_path / "bad.wav").write_bytes(b"RIFF not a wave file")
    with pytest.raises(ValueError, match=r"bad.wav: not a readable sound file"):
        from_environ({**base, "ds_augment_noises": str(tmp_path / "bad.wav")})
    good = tmp_path / "ok"
    good.mkdir()
    import soundfile

    soundfile.write(good / "a.wav", np.ones(100) * 0.1, 16000)
    config = from_environ({**base, "ds_augment_rirs": str(good)})
    assert DataOptions.from_config(config, 1).augmentation.rirs == (str(good / "a.wav"),)


# -- silence around the utterance ------------------------------------------------------------------


def test_pad_adds_silence_at_both_ends_and_keeps_the_other_draws():
    speech = tone(300, 0.5) + 100.0  # never zero
    aug = augmentation.parse("pad=0.6:0.6")
    lengths, leading = [], []
    for seed in range(30):
        generator = rng(seed)
        draws = aug.draw(generator)
        assert draws.audio == (("pad", pytest.approx(0.6)),)
        padded = augment.apply_audio(aug, speech, draws, generator)
        start = int(np.argmax(padded != 0))
        np.testing.assert_array_equal(padded[start : start + len(speech)], speech)
        assert not padded[:start].any() and not padded[start + len(speech) :].any()
        lengths.append(len(padded) - len(speech))
        leading.append(start)
    assert max(lengths) <= 1.2 * SAMPLE_RATE and min(leading) < 0.2 * SAMPLE_RATE
    assert max(leading) > 0.4 * SAMPLE_RATE  # each end drawn up to 0.6 s
    base = augmentation.parse("speed=0.9:1.1@0.5,noise=10:30@0.5,reverb=0.2:0.8@0.5")
    more = augmentation.parse("speed=0.9:1.1@0.5,noise=10:30@0.5,reverb=0.2:0.8@0.5,pad=0:1@0.5")
    for seed in range(20):
        a, b = base.draw(rng(seed)), more.draw(rng(seed))
        assert [d for d in b.audio if d[0] != "pad"] == list(a.audio)
    assert "pad=0:1@0.5" in more.text()
    with pytest.raises(augmentation.AugmentError, match="0 <= LOW <= HIGH <= 3"):
        augmentation.parse("pad=0:5")
