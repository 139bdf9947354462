"""``voxdistill evaluate``: teacher and students side by side on the same evaluation sets.

Every model decodes with the same ``DecodingOptions``. Accuracy is scored after the English
normaliser, per set and per domain within a set; hallucination signals are the insertion rate and
the share of transcripts that repeat a word n-gram more than their reference does. Speed comes
from the same process run: throughput from the accuracy pass at the decoding batch size, latency
from a batch-1 pass over the first clips of every set, both after warm-up, with the models
interleaved clip by clip (see ``speed``).

Besides WER against the references, every model after the first gets ``drift_wer`` per set: the
WER of its transcripts scored against the first model's (the teacher's) transcripts. Outside a
student's training domains this measures what it forgot of its teacher, references or not.

All models run in one runtime and precision (``EvalSettings.runtime``: PyTorch float32, or
CTranslate2 at a compute type, each model converted into the cache as needed), so the comparison
is the one a deployment in that runtime would see; the result records the runtime at the top and
in every model's record.

The result is one JSON file: the first model's record at the top (``model``, ``sets``, the
contract of DESIGN.md), every model's record under ``models``, student/reference ratios under
``ratios``; and ``<name>.transcripts.jsonl`` beside it (`transcripts_path`), every utterance with
every model's transcript, which the JSON names with its sha256.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from voxdistill.audio import load_audio
from voxdistill.config import to_dict
from voxdistill.data.check import undecodable_audio
from voxdistill.data.manifest import ManifestError, read_manifest, scan_manifest
from voxdistill.errors import VoxdistillError, kept_on_interrupt
from voxdistill.evaluation.speed import Timings, machine_description, rotated, set_threads, time_interleaved
from voxdistill.families import family_of, load_recogniser
from voxdistill.files import (check_not_an_input, check_writable_output, file_written_atomically, output_lock,
                              sha256_of_files, write_text_atomic)
from voxdistill.models.loading import BUNDLED_PREFIX
from voxdistill.models.student import STUDENT_FILE
from voxdistill.runtime import Recogniser, Runtime, RuntimeConfigError, check_language, describe
from voxdistill.scoring.metrics import EditCounts, char_edits, error_rate, loops, word_edits
from voxdistill.transcribe import DecodingOptions, transcribe_checked


def transcripts_path(out: Path) -> Path:
    """Where the evaluation whose JSON is ``out`` writes its transcripts: beside it, named after it
    (``metrics.json`` -> ``metrics.transcripts.jsonl``), so that evaluations sharing a folder keep
    their own."""
    out = Path(out)
    return out.with_name(f"{out.stem if out.suffix == '.json' else out.name}.transcripts.jsonl")


@dataclass(frozen=True)
class EvalSettings:
    decoding: DecodingOptions = DecodingOptions()  # identical for every model; batch_size = throughput batch
    latency_clips: int = 20  # first clips of every set timed one by one (batch 1); 0 = no latency pass
    warmup_clips: int = 2  # untimed calls per model and batch shape before any timing
    threads: int | None = None  # intra-op threads of the runtime; None keeps torch's default
    # Batch-1 latency is timed at each of these thread counts, every model at every count, and each
    # model's latency is the one at its fastest count (the setting a deployment would choose); the
    # ratios add the speed-up at every count. Empty: ``threads`` alone.
    latency_threads: tuple[int, ...] = ()
    runtime: Runtime = Runtime()  # every Whisper model runs in this runtime and compute type
    ctc_runtime: Runtime = Runtime()  # CTC students run here: torch, or onnx (onnxruntime)
    # Torch runtime: greedy decoding calls each Whisper's decoder through torch.compile (the same
    # modules and weights; compiled during the untimed first calls).
    compile_decoder: bool = False

    def __post_init__(self):
        if self.compile_decoder and self.runtime.backend != "torch":
            raise RuntimeConfigError(f"--compile-decoder compiles PyTorch's decoding step; the {self.runtime.backend} "
                                     f"runtime has its own")
        if any(k < 1 for k in self.latency_threads) or len(set(self.latency_threads)) != len(self.latency_threads):
            raise RuntimeConfigError(f"latency thread counts must be distinct and at least 1, got {self.latency_threads}")

    def runtime_for(self, source: str) -> Runtime:
        """The runtime ``source`` runs in: the setting its family reads (`StudentFamily.runtime_option`)."""
        return getattr(self, family_of(source).runtime_option)


@dataclass
class Tally:
    """Accuracy counts of one model over a group of utterances."""

    n: int = 0
    words: EditCounts = field(default_factory=lambda: EditCounts(0, 0, 0, 0))
    chars: EditCounts = field(default_factory=lambda: EditCounts(0, 0, 0, 0))
    looping: int = 0  # transcripts that repeat an n-gram more than their reference

    def add(self, reference: str, hypothesis: str) -> None:
        self.n += 1
        self.words = self.words + word_edits([reference], [hypothesis])
        self.chars = self.chars + char_edits([reference], [hypothesis])
        self.looping += loops(reference, hypothesis)

    def merge(self, other: "Tally") -> None:
        self.n += other.n
        self.words = self.words + other.words
        self.chars = self.chars + other.chars
        self.looping += other.looping

    def scores(self) -> dict:
        return {"n": self.n, "wer": error_rate(self.words), "cer": error_rate(self.chars),
                "insertion_rate": self.words.insertions / max(self.words.reference_length, 1),
                "repeated_ngram_rate": self.looping / max(self.n, 1)}


def speed_scores(latency: Timings, throughput: Timings) -> dict:
    return {"latency_ms_p50": latency.latency_ms(50), "latency_ms_p95": latency.latency_ms(95),
            "rtf": latency.rtf, "throughput_utt_per_s": throughput.items_per_second,
            "audio_seconds": sum(throughput.audio_seconds)}


def model_label(source: str) -> str:
    """A short name for tables: the bundled name, the run name of ``RUN/model``, else the folder name."""
    if source.startswith(BUNDLED_PREFIX):
        return source[len(BUNDLED_PREFIX):]
    path = Path(source)
    if path.name == "model" and path.parent.name:
        return path.parent.name
    return path.name or source


def disk_bytes(folder: Path | None) -> int | None:
    """Bytes of the weight files (what a deployment ships, tokenizer and configs aside)."""
    if folder is None:
        return None
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.suffix in (".safetensors", ".bin", ".onnx"))


def _unique_labels(sources: list[str], labels: list[str] | None) -> list[str]:
    labels = labels or [model_label(s) for s in sources]
    if len(labels) != len(sources):
        raise VoxdistillError(f"{len(labels)} labels for {len(sources)} models; give one --label per --model")
    if len(set(labels)) != len(labels):
        raise VoxdistillError(f"model labels must differ, got {labels}; name them with --label")
    if any(not label.strip() for label in labels):
        raise VoxdistillError(f"a model label is empty, got {labels}; name each model with a word or two (--label)")
    return labels


def _check_manifests(manifests: list[Path]) -> None:
    names = [m.stem for m in manifests]
    for manifest in manifests:
        if not manifest.is_file():
            raise VoxdistillError(f"{manifest}: no such manifest")
        # Bad lines, repeated ids, no utterances, missing audio, nothing to score against: before
        # any model loads, rather than at a line far down after the work before it.
        scan = scan_manifest(manifest)
        scan.refuse_missing_audio()
        scan.refuse_without_text()
    if len(set(names)) != len(names):
        raise VoxdistillError(f"evaluation sets are named after their manifests and must differ: {names}")
    # Every clip is decoded here and again when it is scored: ~2 s for the demo's 458 clips against
    # minutes of models, where holding them all in memory would not scale to hours of audio. A file
    # that exists but does not decode then stops the run before its work, not halfway through.
    for manifest in manifests:
        bad = list(undecodable_audio(manifest))
        if bad:
            more = f" (and {len(bad) - 1} more line(s) whose audio does not decode)" if len(bad) > 1 else ""
            raise ManifestError(f"{bad[0].where} [{bad[0].utt_id}]: {bad[0].message}{more}; replace the file or "
                                f"leave the line out. `voxdistill corpus check {manifest}` lists every problem")


class Evaluation:
    """``models`` at the runtime's ``threads`` decode every clip; ``timed`` holds, per latency
    thread count, the same models at that count (`_at_threads`: the same objects in PyTorch)."""

    def __init__(self, models: dict[str, Recogniser], settings: EvalSettings, threads: int,
                 timed: dict[int, dict[str, Recogniser]] | None = None):
        self.models = models
        self.settings = settings
        self.threads = threads  # of the runtime, as set (`set_threads`)
        self.timed = timed or {threads: models}
        options = settings.decoding
        batch_1 = replace(options, batch_size=1)
        self.runners = {label: (lambda audios, w=w, o=options: transcribe_checked(w, audios, o))
                        for label, w in models.items()}
        self.single = {k: {label: (lambda audios, w=w, o=batch_1: transcribe_checked(w, audios, o))
                           for label, w in at_k.items()}
                       for k, at_k in self.timed.items()}
        self.turn = 0
        self.warm = False
        self.tallies: dict[str, dict[str, dict[str | None, Tally]]] = {m: {} for m in models}
        self.first = next(iter(models))
        self.drift: dict[str, dict[str, Tally]] = {m: {} for m in models if m != self.first}
        self.throughput: dict[str, dict[str, Timings]] = {m: {} for m in models}
        # per thread count, model and set
        self.latency: dict[int, dict[str, dict[str, Timings]]] = {k: {m: {} for m in models} for k in self.timed}
        self.decisions: dict[str, dict[str, Counter]] = {m: {} for m in models}  # per set, how the checks decided

    def _warm_up(self, audios: list) -> None:
        clips = audios[: self.settings.warmup_clips]
        for k, single in self.single.items():
            set_threads(k)
            for label in self.models:
                for clip in clips:
                    single[label]([clip])
        set_threads(self.threads)
        if clips:
            for label in self.models:
                self.runners[label](audios)

    def run_set(self, manifest: Path, transcripts, progress: bool) -> None:
        name = manifest.stem
        size = self.settings.decoding.batch_size
        for label in self.models:
            self.tallies[label][name] = {}
            if label != self.first:
                self.drift[label][name] = Tally()
            self.throughput[label][name] = Timings()
            for k in self.timed:
                self.latency[k][label][name] = Timings()
            self.decisions[label][name] = Counter()
        utterances = read_manifest(manifest)
        latency_clips: list = []  # the set's first clips, timed one by one after the accuracy pass
        bar = tqdm(desc=f"evaluate {name}", unit="utt", disable=not progress)
        while batch := list(islice(utterances, size)):
            audios = [load_audio(u.audio_path(manifest.parent), long_audio="split") for u in batch]
            if not self.warm:
                self._warm_up(audios)
                self.warm = True
            latency_clips += audios[: self.settings.latency_clips - len(latency_clips)]
            outputs = time_interleaved(self.runners, audios, self.throughput_of(name), self.turn)
            self.turn += 1
            for i, utt in enumerate(batch):
                texts = {label: outputs[label][i].text for label in self.models}
                for label in self.models:
                    groups = self.tallies[label][name]
                    groups.setdefault(utt.domain, Tally()).add(utt.text, texts[label])
                    if label != self.first:
                        self.drift[label][name].add(texts[self.first], texts[label])
                    self.decisions[label][name].update(outputs[label][i].decisions)
                transcripts.write(json.dumps({
                    "set": name, "id": utt.id, "domain": utt.domain, "reference": utt.text,
                    "duration": utt.duration, "hypotheses": texts,
                    "decisions": {label: outputs[label][i].decisions for label in self.models},
                }, ensure_ascii=False) + "\n")
            bar.update(len(batch))
        bar.close()
        for audio in tqdm(latency_clips, desc=f"latency {name}", unit="clip", disable=not progress):
            for k in rotated(list(self.timed), self.turn):  # every model at one count, then the next
                set_threads(k)
                time_interleaved(self.single[k], [audio], {m: self.latency[k][m][name] for m in self.models},
                                 self.turn)
            self.turn += 1
        set_threads(self.threads)

    def throughput_of(self, name: str) -> dict[str, Timings]:
        return {label: self.throughput[label][name] for label in self.models}

    def pooled_latency(self, label: str, threads: int) -> Timings:
        """``label``'s batch-1 timings over every set at ``threads``."""
        pooled = Timings()
        for timings in self.latency[threads][label].values():
            pooled.extend(timings)
        return pooled

    def fastest_threads(self, label: str) -> int:
        """The thread count at which ``label``'s pooled latency p50 is lowest (the runtime's
        ``threads`` when latency was not timed)."""
        p50 = {k: self.pooled_latency(label, k).latency_ms(50) for k in self.timed}
        if any(v is None for v in p50.values()):
            return self.threads
        return min(p50, key=p50.get)

    def record(self, label: str, source: str) -> dict:
        recogniser = self.models[label]
        fastest = self.fastest_threads(label)
        latency = self.latency[fastest][label]
        sets = {}
        overall, all_throughput, all_drift = Tally(), Timings(), Tally()
        for name, groups in self.tallies[label].items():
            total = Tally()
            for tally in groups.values():
                total.merge(tally)
            overall.merge(total)
            all_throughput.extend(self.throughput[label][name])
            domains = {str(d): {k: v for k, v in t.scores().items() if k in ("n", "wer", "cer")}
                       for d, t in sorted(groups.items(), key=lambda kv: str(kv[0])) if d is not None}
            sets[name] = total.scores() | speed_scores(latency[name], self.throughput[label][name]) \
                | {"domains": domains, "decisions": dict(sorted(self.decisions[label][name].items()))} \
                | self._drift(label, name, all_drift)
        by_threads = {str(k): {"latency_ms_p50": self.pooled_latency(label, k).latency_ms(50),
                               "latency_ms_p95": self.pooled_latency(label, k).latency_ms(95)}
                      for k in sorted(self.timed)}
        folder = recogniser.folder
        role = "student" if folder is not None and (Path(folder) / STUDENT_FILE).is_file() else "teacher"
        return {
            "model": label, "source": source, "role": role, **describe(recogniser),
            "parameters": recogniser.parameters,
            "disk_bytes": disk_bytes(folder), "fingerprint": recogniser.fingerprint.digest,
            "sets": sets, "overall": overall.scores() | speed_scores(self.pooled_latency(label, fastest), all_throughput)
            | {"latency_threads": fastest, "latency_by_threads": by_threads}
            | ({} if label == self.first else {"drift_wer": error_rate(all_drift.words)}),
        }

    def _drift(self, label: str, name: str, total: Tally) -> dict:
        if label == self.first:
            return {}
        total.merge(self.drift[label][name])
        return {"drift_wer": error_rate(self.drift[label][name].words)}


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def ratios(reference: dict, other: dict) -> dict:
    """``other`` relative to ``reference``: below 1 is smaller/faster for latency, size and WER;
    above 1 is faster for throughput. ``speedup`` is reference latency over other latency."""
    r, o = reference["overall"], other["overall"]
    at = o.get("latency_by_threads", {})
    return {
        "latency_p50": _ratio(o["latency_ms_p50"], r["latency_ms_p50"]),
        "latency_p95": _ratio(o["latency_ms_p95"], r["latency_ms_p95"]),
        "speedup": _ratio(r["latency_ms_p50"], o["latency_ms_p50"]),
        # the same thread count for both
        "speedup_by_threads": {k: _ratio(r["latency_by_threads"][k]["latency_ms_p50"], at[k]["latency_ms_p50"])
                               for k in at if k in r.get("latency_by_threads", {})},
        "throughput": _ratio(o["throughput_utt_per_s"], r["throughput_utt_per_s"]),
        "parameters": _ratio(other["parameters"], reference["parameters"]),
        "disk_bytes": _ratio(other["disk_bytes"], reference["disk_bytes"]),
        "wer": _ratio(o["wer"], r["wer"]),
    }


def evaluate(models: list[str], manifests: list[Path], out: Path, settings: EvalSettings = EvalSettings(),
             labels: list[str] | None = None, progress: bool = True) -> dict:
    """Evaluate ``models`` (the first is the reference of the ratios, usually the teacher) on every
    manifest; write ``out`` (JSON) and its `transcripts_path` beside it; return the JSON's content.
    Both outputs are checked before any model loads, and locked while they are written. Ctrl-C or
    SIGTERM stops it with `errors.Interrupted`, having written neither."""
    out = Path(out)
    transcripts = transcripts_path(out)
    for path in (out, transcripts):
        check_writable_output(path)
        check_not_an_input(path, manifests)
    with kept_on_interrupt(lambda: _nothing_kept(out), RESUME_EVALUATION):
        return _evaluate(models, manifests, out, transcripts, settings, labels, progress)


def _evaluate(models: list[str], manifests: list[Path], out: Path, transcripts: Path, settings: EvalSettings,
              labels: list[str] | None, progress: bool) -> dict:
    manifests = [Path(m) for m in manifests]
    _check_manifests(manifests)
    labels = _unique_labels(models, labels)
    # The transcripts' temporary is renamed into place only after the metrics are: an error on the
    # way (a full disk, Ctrl-C) leaves the earlier pair as it was, never new transcripts beside old
    # metrics. (A crash between the two renames leaves a pair whose checksum disagrees, which the
    # report notices.)
    with output_lock(out), output_lock(transcripts), file_written_atomically(transcripts) as written:
        with written.open("w", encoding="utf-8") as stream:
            evaluation = _run(models, manifests, labels, settings, stream, progress)
        result = _result(evaluation, models, manifests, labels, settings)
        result |= {"transcripts": transcripts.name, "transcripts_sha256": sha256_of_files([written])}
        write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    return result


def _run(models: list[str], manifests: list[Path], labels: list[str], settings: EvalSettings, transcripts: TextIO,
         progress: bool) -> "Evaluation":
    """Load the models, run every set, and write every utterance's transcripts to ``transcripts``."""
    threads = set_threads(settings.threads)
    loaded = {label: load_recogniser(source, settings.runtime_for(source), threads)
              for label, source in zip(labels, models)}
    timed = {k: {label: _at_threads(loaded[label], source, settings.runtime_for(source), k)
                 for label, source in zip(labels, models)}
             for k in settings.latency_threads or (threads,)}
    for recogniser in loaded.values():
        check_language(recogniser, settings.decoding.language)
    if settings.compile_decoder:
        for recogniser in loaded.values():
            if hasattr(recogniser, "whisper"):  # a Whisper in torch (a CTC student has no decoding loop)
                recogniser.whisper.compile_decoder()
    evaluation = Evaluation(loaded, settings, threads, timed)
    for manifest in manifests:
        evaluation.run_set(manifest, transcripts, progress)
    return evaluation


def _at_threads(recogniser: Recogniser, source: str, runtime: Runtime, threads: int) -> Recogniser:
    """``recogniser`` to time at ``threads``: itself in PyTorch, whose thread count is the process's
    (`set_threads` sets it before each count's turn); a second copy of ``source`` in a runtime that
    fixes its threads when it loads a model (CTranslate2, onnxruntime), at the accuracy pass's count
    too. A timed CTranslate2 copy samples its fallbacks on itself, as a deployed model does, not on a
    copy loaded per call (`CT2Recogniser`), whose loading would be timed too (the accuracy pass's
    throughput does count those loads)."""
    if runtime.backend == "torch":
        return recogniser
    timed = load_recogniser(source, runtime, threads)
    if runtime.backend == "ct2":
        timed.sampler_per_call = False
    return timed


def _result(evaluation: "Evaluation", models: list[str], manifests: list[Path], labels: list[str],
            settings: EvalSettings) -> dict:
    records = [evaluation.record(label, source) for label, source in zip(labels, models)]
    reference = records[0]
    return {
        "model": reference["model"], "sets": reference["sets"], "reference": reference["model"],
        "models": records,
        "ratios": {r["model"]: ratios(reference, r) for r in records[1:]},
        "decoding": to_dict(settings.decoding),  # plain data, as the JSON reads back
        "runtime": runtime_description(settings.runtime),
        "speed": machine_description() | {
            "threads": evaluation.threads, "latency_threads": sorted(evaluation.timed),
            "latency_clips_per_set": settings.latency_clips,
            "throughput_batch_size": settings.decoding.batch_size, "warmup_clips": settings.warmup_clips,
            "interleaved": True, "compiled_decoder": settings.compile_decoder,
        },
        "manifests": {m.stem: str(m) for m in manifests},
    }


RESUME_EVALUATION = "run the same command to evaluate from the start"


def _nothing_kept(out: Path) -> str:
    return f"an evaluation keeps no partial results: {out} and the transcripts beside it are as they were before it"


def runtime_description(runtime: Runtime) -> dict:
    """The runtime every model of an evaluation ran in, with the version of its engine."""
    if runtime.backend == "ct2":
        import ctranslate2

        return runtime.to_dict() | {"ctranslate2": ctranslate2.__version__}
    import torch

    return runtime.to_dict() | {"torch": torch.__version__}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, fmt: str) -> str:
    """``value`` formatted with ``fmt`` (e.g. "8.1f"), or a dash of the same width."""
    return format("-", ">" + fmt.split(".")[0]) if value is None else format(value, fmt)


def format_table(result: dict) -> str:
    """The terminal tables: WER/CER per set and domain for every model, then speed and size."""
    records = result["models"]
    labels = [r["model"] for r in records]
    width = max(12, *(len(label) for label in labels))
    lines = [f"{'WER (CER)':28} " + " ".join(f"{label:>{width + 8}}" for label in labels)]
    for name in records[0]["sets"]:
        cells = [f"{_pct(r['sets'][name]['wer'])} ({_pct(r['sets'][name]['cer'])})" for r in records]
        lines.append(f"{name[:28]:28} " + " ".join(f"{c:>{width + 8}}" for c in cells))
        for domain in records[0]["sets"][name]["domains"]:
            cells = [_pct(r["sets"][name]["domains"][domain]["wer"]) for r in records]
            lines.append(f"  {domain[:26]:26} " + " ".join(f"{c:>{width + 8}}" for c in cells))
    cells = [f"{_pct(r['overall']['wer'])} ({_pct(r['overall']['cer'])})" for r in records]
    lines.append(f"{'all':28} " + " ".join(f"{c:>{width + 8}}" for c in cells))
    if len(records) > 1:
        lines += ["", f"drift: WER of each transcript scored against {labels[0]}'s"]
        for name in [*records[0]["sets"], None]:
            cells = ["" if i == 0 else _pct((r["overall"] if name is None else r["sets"][name]).get("drift_wer"))
                     for i, r in enumerate(records)]
            lines.append(f"{(name or 'all')[:28]:28} " + " ".join(f"{c:>{width + 8}}" for c in cells))

    speed = result["speed"]
    runtime = result.get("runtime", {"backend": "torch", "compute_type": "float32"})
    compiled = ", decoder compiled" if speed.get("compiled_decoder") else ""
    counts = speed.get("latency_threads", [speed["threads"]])
    timed_at = (f"at each model's fastest of {', '.join(map(str, counts))} threads (thr)" if len(counts) > 1
                else "")
    lines += ["", f"speed ({runtime['backend']} {runtime['compute_type']}{compiled}): {speed['threads']} threads, batch 1 latency "
                  f"{timed_at + ' ' if timed_at else ''}over the first {speed['latency_clips_per_set']} "
                  f"clips of each set, throughput at batch {speed['throughput_batch_size']}, models interleaved",
              f"{'model':{width}} {'params':>8} {'disk MB':>8} {'p50 ms':>8} {'p95 ms':>8} {'RTF':>6} "
              f"{'utt/s':>6} {'ins.':>6} {'loops':>6} {'speedup':>8}" + (f" {'thr':>4}" if timed_at else "")]
    for r in records:
        o = r["overall"]
        speedup = result["ratios"].get(r["model"], {}).get("speedup")
        disk = None if r["disk_bytes"] is None else r["disk_bytes"] / 1e6
        lines.append(
            f"{r['model']:{width}} {r['parameters'] / 1e6:7.1f}M {_num(disk, '8.1f')} "
            f"{_num(o['latency_ms_p50'], '8.0f')} {_num(o['latency_ms_p95'], '8.0f')} {_num(o['rtf'], '6.3f')} "
            f"{_num(o['throughput_utt_per_s'], '6.2f')} {_pct(o['insertion_rate']):>6} "
            f"{_pct(o['repeated_ngram_rate']):>6} {'' if speedup is None else f'{speedup:.2f}x':>8}"
            + (f" {o.get('latency_threads', ''):>4}" if timed_at else ""))
    if timed_at:
        lines += ["", f"batch 1 latency p50 at the same thread count for every model (speed-up over {labels[0]}):"]
        for k in map(str, counts):
            cells = []
            for r in records:
                p50 = r["overall"].get("latency_by_threads", {}).get(k, {}).get("latency_ms_p50")
                ratio = result["ratios"].get(r["model"], {}).get("speedup_by_threads", {}).get(k)
                cells.append(f"{r['model']} {_num(p50, '.0f')} ms" + ("" if ratio is None else f" ({ratio:.2f}x)"))
            lines.append(f"  {k} thread{'s' if k != '1' else ''}: " + ", ".join(cells))
    return "\n".join(lines)
