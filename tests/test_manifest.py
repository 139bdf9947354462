"""Manifests: round trip, NeMo compatibility, clear errors for bad lines."""

import json

import pytest

from voxdistill.data.manifest import ManifestError, Utterance, read_manifest, write_manifest


def test_round_trip_keeps_unknown_fields(tmp_path):
    utts = [
        Utterance("a", "audio/a.flac", 1.5, text="hello there", domain="clean", voice="flite:slt",
                  extra={"rate": 1.15, "speaker_id": 7}),
        Utterance("b", "/abs/b.wav", 2.0),
    ]
    path = tmp_path / "m.jsonl"
    assert write_manifest(path, utts) == 2
    assert list(read_manifest(path)) == utts
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"id": "a", "audio_filepath": "audio/a.flac", "duration": 1.5, "text": "hello there",
                     "domain": "clean", "voice": "flite:slt", "rate": 1.15, "speaker_id": 7}
    assert utts[0].audio_path(tmp_path) == tmp_path / "audio/a.flac"
    assert utts[1].audio_path(tmp_path) == tmp_path / "/abs/b.wav"


def test_nemo_line_without_id_takes_the_file_stem(tmp_path):
    path = tmp_path / "nemo.jsonl"
    path.write_text('{"audio_filepath": "/data/x/utt_001.wav", "duration": 3.2, "text": "hi"}\n\n')
    (utt,) = read_manifest(path)
    assert utt.id == "utt_001" and utt.text == "hi"


@pytest.mark.parametrize("line, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"duration": 1.0}', "missing field(s) audio_filepath"),
    ('{"audio_filepath": "a.wav", "duration": -1}', "duration must be a positive number"),
    ('{"audio_filepath": "a.wav", "duration": "long"}', "duration must be a positive number"),
    ('{"audio_filepath": "a.wav", "duration": 1, "text": 5}', "field text must be a string"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"audio_filepath": "ok.wav", "duration": 1}\n' + line + "\n")
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    assert f"{path}:2: " in str(info.value) and message in str(info.value)


def test_write_is_atomic_on_failure(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, [Utterance("a", "a.wav", 1.0)])

    def broken():
        yield Utterance("b", "b.wav", 1.0)
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_manifest(path, broken())
    assert [u.id for u in read_manifest(path)] == ["a"]  # the old manifest is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]  # no temporary left behind
