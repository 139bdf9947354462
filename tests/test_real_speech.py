"""The real-speech pack shipped in the package: complete and intact, damage reported naming the file,
manifests built from the repository alone, with training kept apart from dev and test clips and
speakers. Real files, no mocks; a few seconds."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.data.check import check_manifest
from voxdistill.data.manifest import Utterance, read_manifest
from voxdistill.data.real_speech import (
    PACK, REAL_PRESETS, SOURCES, TEST_SETS, TRANSCRIPTS, RealSpeechPreset, SpeechPackError, build_real_speech,
    check_pack, plan_real_speech, read_pack, strip_annotations,
)

CLIPS_PER_PART = {"kathleen": 1132, "ljspeech": 385, "unlabelled": 90, "vctk": 40, "spontaneous": 55,
                  "digits": 120, "longform": 3, "harvard": 12}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real-speech")
    build_real_speech(out, REAL_PRESETS["demo"])
    return out


def manifest(folder: Path, name: str) -> list[Utterance]:
    return list(read_manifest(folder / f"{name}.jsonl"))


def test_pack_is_complete_and_intact():
    clips = check_pack()
    counts = Counter(clip.part for clip in clips)
    assert counts == CLIPS_PER_PART
    for part, count in counts.items():  # and no audio file that SOURCES.tsv does not list
        assert len(list((PACK / part).glob("*.opus"))) == count
    assert max(clip.path.stat().st_size for clip in clips) < 1_000_000
    assert all(clip.text for clip in clips if clip.part != "unlabelled")


def small_pack(folder: Path) -> Path:
    """A copy of two parts' first clips (one labelled, one not) with their SOURCES.tsv rows."""
    header, *rows = (PACK / SOURCES).read_text(encoding="utf-8").splitlines()
    kept = [row for part in ("vctk", "unlabelled") for row in [r for r in rows if r.startswith(f"{part}\t")][:2]]
    (folder / SOURCES).write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    for row in kept:
        part, file = row.split("\t")[:2]
        (folder / part).mkdir(exist_ok=True)
        shutil.copy(PACK / part / file, folder / part / file)
    shutil.copy(PACK / "vctk" / TRANSCRIPTS, folder / "vctk" / TRANSCRIPTS)
    return folder


def test_damaged_missing_or_unlabelled_clip_is_named(tmp_path):
    pack = small_pack(tmp_path)
    assert len(check_pack(pack)) == 4
    clip = pack / "vctk" / "p226_001.opus"
    damaged = bytearray(clip.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    clip.write_bytes(damaged)
    with pytest.raises(SpeechPackError, match=rf"{re.escape(str(clip))}: damaged"):
        check_pack(pack)
    clip.unlink()
    with pytest.raises(SpeechPackError, match=rf"{re.escape(str(clip))}: listed in SOURCES.tsv but missing"):
        check_pack(pack)
    shutil.copy(PACK / "vctk" / clip.name, clip)
    transcripts = pack / "vctk" / TRANSCRIPTS
    transcripts.write_text("".join(line for line in transcripts.read_text(encoding="utf-8").splitlines(True)
                                   if not line.startswith("p226_001\t")), encoding="utf-8")
    with pytest.raises(SpeechPackError, match=rf"{re.escape(str(clip))}: no transcript"):
        check_pack(pack)


def test_manifests_point_into_the_repository_only(demo):
    names = {path.stem for path in demo.glob("*.jsonl")}
    assert names == {"real-pool", "real-pool-references", "real-dev", *TEST_SETS}
    for name in names:
        assert "/shared/" not in (demo / f"{name}.jsonl").read_text(encoding="utf-8")
        for utt in manifest(demo, name):
            assert Path(utt.audio_filepath).is_relative_to(PACK) and Path(utt.audio_filepath).is_file()


def test_pool_has_no_text_and_references_are_its_labelled_clips(demo):
    pool = manifest(demo, "real-pool")
    assert '"text"' not in (demo / "real-pool.jsonl").read_text(encoding="utf-8")
    assert Counter(u.domain for u in pool) == {"real-kathleen": 240, "real-ljspeech": 100, "real-unlabelled": 90}
    references = manifest(demo, "real-pool-references")
    assert [u.id for u in references] == [u.id for u in pool if u.domain != "real-unlabelled"]
    assert all(u.text for u in references)


def test_dev_and_test_clips_and_speakers_never_train(demo):
    pool = manifest(demo, "real-pool")
    pool_files, pool_speakers = {u.audio_filepath for u in pool}, {u.voice for u in pool}
    dev = manifest(demo, "real-dev")
    assert Counter(u.domain for u in dev) == {"real-harvard": 12, "real-kathleen": 20, "real-ljspeech": 16}
    assert not pool_files & {u.audio_filepath for u in dev}
    assert not pool_speakers & {u.voice for u in dev if u.domain == "real-harvard"}
    for name in TEST_SETS:
        test = manifest(demo, name)
        assert test and not pool_files & {u.audio_filepath for u in test}
        assert not pool_speakers & {u.voice for u in test}
    plan = plan_real_speech(read_pack(), REAL_PRESETS["full"])  # every clip not in dev
    assert len(plan["real-pool"]) == 1132 + 385 + 90 - 20 - 16
    assert not {c.id for c in plan["real-pool"]} & {c.id for c in plan["real-dev"]}


def test_same_preset_same_bytes(demo, tmp_path):
    for _ in range(2):  # a fresh folder, then over its own output
        build_real_speech(tmp_path, REAL_PRESETS["demo"])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in demo.iterdir())
        assert all((tmp_path / p.name).read_bytes() == p.read_bytes() for p in demo.iterdir())


def test_presets_are_checked():
    with pytest.raises(ValueError, match="pool parts"):
        RealSpeechPreset("bad", pool={"vctk": 10}, dev={})
    with pytest.raises(SpeechPackError, match="13 clips asked for, the pack has 12"):
        plan_real_speech(read_pack(), RealSpeechPreset("big", pool={}, dev={"harvard": 13}))


def test_spontaneous_tags_are_stripped(demo):
    assert strip_annotations("so [laughter] <cutoff-mon> montreal <hes-forced>  <VOCNOISE> aligner") == \
        "so montreal forced aligner"
    texts = [u.text for u in manifest(demo, "test-real-spontaneous")]
    assert len(texts) == 55 and all(t and not re.search(r"[<>\[\]]|\s\s", t) for t in texts)


def test_pack_clips_load_at_16khz_with_their_recorded_duration():
    clips = {clip.id: clip for clip in read_pack()}
    for utt_id in ("harvard-spk1_snt1", "digits-0_george_0", "longform-sonnet001"):
        audio = load_audio(clips[utt_id].path, max_seconds=None)
        assert audio.dtype == np.float32 and np.abs(audio).max() > 0.05
        assert abs(len(audio) / SAMPLE_RATE - clips[utt_id].duration) <= 0.010


def test_corpus_check_accepts_the_manifests(demo):
    assert list(check_manifest(demo / "real-dev.jsonl")) == []
    assert list(check_manifest(demo / "test-real-words.jsonl")) == []
    assert list(check_manifest(demo / "test-real-longform.jsonl", max_seconds=None)) == []
