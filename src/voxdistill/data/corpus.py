"""The built-in multi-domain speech corpus: sentences from packages and the project's generator,
spoken by several offline TTS engines, degraded into acoustic domains, cut into splits.

Held-out design, so that out-of-distribution WER means something:
- ``train``, ``dev``: training voices, training domains.
- ``test-clean``: training voices, clean audio, sentences never seen in train/dev.
- ``test-ood-voice``: voices never used in train/dev, including one whole engine (Piper), clean audio.
- ``test-ood-noise``: training voices, degradations never used in train/dev.
No sentence appears in two splits (compared after normalisation, see ``text.sentence_key``).

Every utterance is a pure function of (seed, split, index): its sentence, voice, rate, pitch, domain
and noise draw. Its audio file name carries a hash of all of that, so a second build reuses every
file that is still wanted and only synthesises what changed.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data.degrade import apply_domain, get_domain
from voxdistill.data.manifest import Utterance, write_manifest
from voxdistill.data.text import sentence_pool
from voxdistill.data.tts import SynthesisError, Voice, missing_engines, synthesize
from voxdistill.files import file_written_atomically, write_text_atomic

# Bump when synthesis or degradation changes what a given spec produces, so files are remade.
CORPUS_VERSION = 1
SPLITS = ("train", "dev", "test-clean", "test-ood-voice", "test-ood-noise")

TRAIN_VOICES = (
    Voice("espeak-ng", "en-us"),
    Voice("espeak-ng", "en-gb"),
    Voice("espeak-ng", "en-us+f3"),
    Voice("espeak-ng", "en-gb-scotland"),
    Voice("flite", "slt"),
    Voice("flite", "rms"),
    Voice("flite", "awb"),
    Voice("festival", "cmu_us_slt_arctic_hts"),
    Voice("festival", "kal_diphone"),
)
# Never heard in train/dev: the whole Piper engine, plus unseen voices of the other engines.
HELD_OUT_VOICES = (
    Voice("piper", "en_US-joe-medium"),
    Voice("festival", "ked_diphone"),
    Voice("flite", "kal16"),
    Voice("espeak-ng", "en-gb-x-rp+f4"),
)
# Domain name -> sampling weight.
TRAIN_DOMAINS = {"clean": 0.4, "white-snr20": 0.15, "white-snr10": 0.15, "telephone": 0.15, "reverb-0.3": 0.15}
HELD_OUT_DOMAINS = {
    "pink-snr5": 1.0, "brown-snr5": 1.0, "hum-snr10": 1.0, "reverb-0.8": 1.0,
    "telephone-white-snr15": 1.0, "reverb-0.5-pink-snr10": 1.0, "clip-2pct": 1.0,
}
# Speaking-rate factors and pitch shifts (semitones) drawn per utterance, where the engine can.
RATES = (0.85, 1.0, 1.0, 1.15)
PITCHES = (-2.0, 0.0, 0.0, 2.0)


@dataclass(frozen=True)
class SplitSpec:
    name: str
    size: int
    voices: tuple[Voice, ...]
    domains: dict[str, float]


@dataclass(frozen=True)
class CorpusPreset:
    name: str
    sizes: dict[str, int]  # utterances per split
    max_words: int  # longest sentence; bounds the longest utterance (~2.5 words/s)
    text_mix: dict[str, float] | None = None  # source -> share; None = text.DEFAULT_MIX
    min_seconds: float = 1.0
    max_seconds: float = 20.0

    def splits(self) -> list[SplitSpec]:
        clean = {"clean": 1.0}
        recipe = {
            "train": (TRAIN_VOICES, TRAIN_DOMAINS),
            "dev": (TRAIN_VOICES, TRAIN_DOMAINS),
            "test-clean": (TRAIN_VOICES, clean),
            "test-ood-voice": (HELD_OUT_VOICES, clean),
            "test-ood-noise": (TRAIN_VOICES, HELD_OUT_DOMAINS),
        }
        return [SplitSpec(name, self.sizes[name], *recipe[name]) for name in SPLITS if self.sizes.get(name)]


PRESETS = {
    # Sized so that the whole demo pipeline, the real speech it adds included (pipeline.REAL_MIXES),
    # runs in about 15 minutes on a 2-core CPU. Test sets of 80 utterances, so that a point of WER is
    # a few words rather than one.
    "demo": CorpusPreset("demo", {"train": 320, "dev": 40, "test-clean": 80, "test-ood-voice": 80,
                                  "test-ood-noise": 80}, max_words=24),
    # Tens of hours, for GPU runs. Fortunes has ~1.2k usable sentences; its share stays below that.
    "full": CorpusPreset("full", {"train": 24000, "dev": 600, "test-clean": 1000,
                                  "test-ood-voice": 1000, "test-ood-noise": 1000}, max_words=40,
                         text_mix={"generated": 0.5, "bible": 0.46, "fortunes": 0.04}),
}


@dataclass(frozen=True)
class UtteranceSpec:
    """Everything that determines one utterance's audio."""

    split: str
    index: int
    text: str
    text_source: str
    voice: Voice
    domain: str
    noise_seed: int

    @property
    def id(self) -> str:
        return f"{self.split}-{self.index:05d}"

    @property
    def key(self) -> str:
        blob = json.dumps([CORPUS_VERSION, self.text, asdict(self.voice), self.domain, self.noise_seed])
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def relative_path(self) -> str:
        return f"audio/{self.split}/{self.id}-{self.key}.flac"


def plan_corpus(preset: CorpusPreset, seed: int) -> list[UtteranceSpec]:
    """Decide every utterance of the corpus (no audio yet)."""
    splits = preset.splits()
    pool = sentence_pool(sum(s.size for s in splits), seed=seed, mix=preset.text_mix,
                         max_words=preset.max_words)
    specs, start = [], 0
    for split_index, split in enumerate(splits):
        rng = np.random.default_rng([seed, split_index])
        sentences = pool[start : start + split.size]
        start += split.size
        domains, weights = list(split.domains), np.array(list(split.domains.values()))
        # Voices in a shuffled round robin, so that every voice is heard about equally often.
        voice_order = rng.permutation(np.resize(np.arange(len(split.voices)), split.size))
        for i, sentence in enumerate(sentences):
            voice = split.voices[voice_order[i]]
            if voice.has_pitch_control:
                voice = replace(voice, rate=float(rng.choice(RATES)), pitch=float(rng.choice(PITCHES)))
            else:
                voice = replace(voice, rate=float(rng.choice(RATES)))
            specs.append(UtteranceSpec(
                split=split.name, index=i, text=sentence.text, text_source=sentence.source, voice=voice,
                domain=domains[rng.choice(len(domains), p=weights / weights.sum())],
                noise_seed=int(rng.integers(2**31)),
            ))
    return specs


def render_utterance(spec: UtteranceSpec, out_dir: Path) -> tuple[UtteranceSpec, float]:
    """Synthesise and degrade one utterance into its file. Returns the spec and the duration in
    seconds."""
    path = out_dir / spec.relative_path()
    speech = synthesize(spec.voice, spec.text)
    audio = apply_domain(get_domain(spec.domain), speech, np.random.default_rng(spec.noise_seed))
    with file_written_atomically(path) as tmp:  # a killed build never leaves half a file under the final name
        sf.write(str(tmp), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return spec, len(audio) / SAMPLE_RATE


def _render_job(job: tuple[UtteranceSpec, Path]) -> tuple[UtteranceSpec, float]:
    return render_utterance(*job)


@dataclass(frozen=True)
class SplitSummary:
    split: str
    utterances: int
    hours: float
    voices: int
    domains: int
    dropped: int  # utterances outside the preset's duration bounds


def build_corpus(preset: CorpusPreset, out_dir: Path, seed: int = 0, jobs: int | None = None,
                 progress: bool = True) -> list[SplitSummary]:
    """Build (or bring up to date) the corpus in ``out_dir``: ``audio/`` and one manifest per split
    (``<split>.jsonl``), plus ``corpus.json`` describing the build."""
    missing = missing_engines()
    if missing:
        raise SynthesisError(f"speech engines missing: {', '.join(missing)}; run scripts/setup.sh")
    specs = plan_corpus(preset, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Files from an earlier build are reused as they are; only the rest is synthesised.
    durations = {spec.id: sf.info(str(out_dir / spec.relative_path())).duration
                 for spec in specs if (out_dir / spec.relative_path()).is_file()}
    work = [(spec, out_dir) for spec in specs if spec.id not in durations]
    jobs = min(jobs or os.cpu_count() or 1, max(len(work), 1))
    bar = tqdm(total=len(specs), initial=len(durations), desc=f"corpus {preset.name}", unit="utt",
               disable=not progress)
    if jobs == 1:
        results = map(_render_job, work)
    else:
        # spawn, not fork: the parent may hold threaded runtimes (torch, onnxruntime) that fork breaks.
        pool = multiprocessing.get_context("spawn").Pool(jobs)
        results = pool.imap_unordered(_render_job, work, chunksize=4)
    try:
        for spec, duration in results:
            durations[spec.id] = duration
            bar.update()
    finally:
        bar.close()
        if jobs != 1:
            pool.terminate()

    summaries = []
    for split in preset.splits():
        kept, dropped = [], 0
        for spec in (s for s in specs if s.split == split.name):
            duration = durations[spec.id]
            if not preset.min_seconds <= duration <= preset.max_seconds:
                dropped += 1
                continue
            kept.append(Utterance(
                id=spec.id, audio_filepath=spec.relative_path(), duration=round(duration, 3),
                text=spec.text, domain=spec.domain, voice=f"{spec.voice.engine}:{spec.voice.name}",
                extra={"rate": spec.voice.rate, "pitch": spec.voice.pitch, "text_source": spec.text_source},
            ))
        write_manifest(out_dir / f"{split.name}.jsonl", kept)
        summaries.append(SplitSummary(
            split.name, len(kept), sum(u.duration for u in kept) / 3600,
            len({u.voice for u in kept}), len({u.domain for u in kept}), dropped,
        ))
    _remove_stale_audio(out_dir, {spec.relative_path() for spec in specs})
    write_text_atomic(out_dir / "corpus.json", json.dumps({
        "preset": asdict(preset), "seed": seed, "version": CORPUS_VERSION,
        "splits": [asdict(s) for s in summaries],
    }, indent=2))
    return summaries


def _remove_stale_audio(out_dir: Path, wanted: set[str]) -> None:
    """Delete files an earlier build with another seed or preset left behind."""
    for split_dir in (out_dir / "audio").glob("*"):
        for path in split_dir.glob("*.flac"):
            if f"audio/{split_dir.name}/{path.name}" not in wanted:
                path.unlink()


def format_summary(summaries: list[SplitSummary]) -> str:
    lines = [f"{'split':16} {'utts':>6} {'hours':>6} {'voices':>6} {'domains':>7} {'dropped':>7}"]
    for s in summaries:
        lines.append(f"{s.split:16} {s.utterances:6d} {s.hours:6.2f} {s.voices:6d} {s.domains:7d} {s.dropped:7d}")
    total = Counter()
    for s in summaries:
        total.update({"utts": s.utterances, "hours": s.hours})
    lines.append(f"{'total':16} {total['utts']:6d} {total['hours']:6.2f}")
    return "\n".join(lines)
