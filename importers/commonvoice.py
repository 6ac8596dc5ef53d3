"""Mozilla Common Voice: a release as it is downloaded, in any language.

``ds_dataset_path`` is a language folder of a release (``cv-corpus-<version>/<locale>/``,
holding ``clips/`` and the TSV files), a folder holding exactly one such folder, or the
release's ``.tar.gz`` (unpacked once, next to it). Clips are MP3, read directly by soundfile
(libsndfile decodes MP3) and resampled to 16 kHz.

Sets: ``train.tsv``, ``dev.tsv`` and ``test.tsv`` (``ds_cv_sets=release``, the default), or
all of ``validated.tsv`` split by speaker (``ds_cv_sets=validated``): every ``client_id``'s
clips go to one set, about 80/10/10 of the clips, the same split every time. Columns are found
by name, since releases differ in which others they have (``accent`` or ``accents``,
``variant``, ``sentence_id``, ``sentence_domain`` ...): ``path`` and ``sentence`` are needed,
``client_id`` for the speaker split. Sentences go through the alphabet's normalisation; rows
whose sentence is empty or leaves the alphabet, or whose clip is missing or unreadable, are
skipped and counted by reason, as every importer's are.
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
import tarfile

from util.data.corpus import LayoutError, extract_once
from util.data.feeding import DataOptions
from util.data.samples import Candidate

SET_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
VALIDATED = "validated.tsv"
CLIPS = "clips"
DURATIONS = "clip_durations.tsv"  # clip, duration[ms]: newer releases
REQUIRED = ("path", "sentence")
SPEAKER = "client_id"
# ds_cv_sets=validated: a speaker's share of the hash range decides the set (80/10/10).
SPEAKER_SPLIT = (("train", 0.8), ("dev", 0.9), ("test", 1.0))
LAYOUT = (
    "a language folder of a release (cv-corpus-<version>/<locale>/ with clips/ and "
    "train.tsv, dev.tsv, test.tsv, validated.tsv), or the release's .tar.gz"
)

csv.field_size_limit(sys.maxsize)  # a sentence field is never this long, but be safe


def is_language_folder(folder: str) -> bool:
    return os.path.isdir(os.path.join(folder, CLIPS)) and any(
        os.path.isfile(os.path.join(folder, name)) for name in (*SET_FILES.values(), VALIDATED)
    )


def archive_root(archive: str) -> str:
    """The language folder inside a release archive (``cv-corpus-<version>/<locale>``)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if os.path.basename(name) in (*SET_FILES.values(), VALIDATED):
                    return os.path.dirname(name)
    except (OSError, tarfile.TarError) as error:
        raise LayoutError(f"cannot read the Common Voice archive {archive}: {error}") from error
    raise LayoutError(f"{archive} holds no train.tsv or validated.tsv: expected {LAYOUT}")


def language_folder(data_dir: str) -> str:
    """The release's language folder that ``data_dir`` names, unpacking an archive once."""
    if os.path.isfile(data_dir) and data_dir.endswith((".tar.gz", ".tgz", ".tar")):
        return extract_once(
            data_dir, os.path.dirname(os.path.abspath(data_dir)), archive_root(data_dir)
        )
    if is_language_folder(data_dir):
        return data_dir
    found = []
    if os.path.isdir(data_dir):
        for root, dirs, _ in os.walk(data_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != CLIPS)
            if is_language_folder(root):
                found.append(root)
                dirs[:] = []
            elif root.count(os.sep) - data_dir.count(os.sep) >= 2:
                dirs[:] = []
    if len(found) == 1:
        return found[0]
    where = "it holds " + ", ".join(found) if found else "found none"
    raise LayoutError(
        f"the commonvoice importer expects in ds_dataset_path={data_dir!r} {LAYOUT}; {where}"
    )


def read_tsv(path: str) -> list[dict[str, str]]:
    """The rows of a release's TSV file, by column name.

    Raises:
        LayoutError: when the file is missing or lacks the path or sentence column.
    """
    if not os.path.isfile(path):
        raise LayoutError(f"no such file {path}: expected {LAYOUT}")
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as tsv_file:
        reader = csv.DictReader(tsv_file, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = reader.fieldnames or []
        missing = [column for column in REQUIRED if column not in header]
        if missing:
            raise LayoutError(
                f"{path}: no {' or '.join(missing)} column; the header is {','.join(header)!r}"
            )
        return list(reader)


def clip_durations(folder: str) -> dict[str, float]:
    """Seconds of each clip as ``clip_durations.tsv`` lists them (newer releases; {} when the
    file is absent or unreadable), so that ordering the batches need not open every clip."""
    path = os.path.join(folder, DURATIONS)
    try:
        with open(path, encoding="utf-8", newline="") as tsv_file:
            reader = csv.DictReader(tsv_file, delimiter="\t", quoting=csv.QUOTE_NONE)
            columns = reader.fieldnames or []
            clip = next((c for c in columns if c.strip() == "clip"), None)
            milliseconds = next((c for c in columns if c.strip().startswith("duration")), None)
            if clip is None or milliseconds is None:
                return {}
            listed = {}
            for row in reader:
                try:
                    listed[(row[clip] or "").strip()] = float(row[milliseconds]) / 1000
                except (TypeError, ValueError):
                    continue  # a bad row: that clip's header is read instead
            return listed
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}


def candidates_of(
    folder: str, rows: list[dict[str, str]], durations: dict[str, float] | None = None
) -> list[Candidate]:
    clips = os.path.join(folder, CLIPS)
    found = []
    for row in rows:
        name = (row.get("path") or "").strip()
        sentence = row.get("sentence") or ""
        found.append(
            Candidate(
                os.path.join(clips, name),
                sentence.encode("utf-8", "surrogateescape"),
                listed_seconds=(durations or {}).get(name),
            )
        )
    return found


def speaker_set(client_id: str) -> str:
    """The set a speaker's clips go to, from a hash of the ``client_id``: stable across runs
    and releases, and no speaker in two sets."""
    share = int(hashlib.sha256(client_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return next(name for name, upper in SPEAKER_SPLIT if share <= upper)


def split_by_speaker(rows: list[dict[str, str]], path: str) -> dict[str, list[dict[str, str]]]:
    """``validated.tsv``'s rows in train, dev and test, each speaker in one of them."""
    if rows and SPEAKER not in rows[0]:
        raise LayoutError(f"{path}: no {SPEAKER} column to split by speaker (ds_cv_sets)")
    sets: dict[str, list[dict[str, str]]] = {name: [] for name, _ in SPEAKER_SPLIT}
    for row in rows:
        sets[speaker_set(row.get(SPEAKER) or "")].append(row)
    return sets


def find_candidates(
    data_dir: str, sets: tuple[str, ...], options: DataOptions | None = None
) -> dict[str, list[Candidate]]:
    """The candidates of each of ``sets`` from the release in ``data_dir``."""
    folder = language_folder(data_dir)
    durations = clip_durations(folder)
    if options is not None and options.cv_sets == "validated":
        path = os.path.join(folder, VALIDATED)
        split = split_by_speaker(read_tsv(path), path)
        return {name: candidates_of(folder, split[name], durations) for name in sets}
    return {
        name: candidates_of(folder, read_tsv(os.path.join(folder, SET_FILES[name])), durations)
        for name in sets
    }
