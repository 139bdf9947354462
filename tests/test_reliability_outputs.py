"""Issue 22, outputs (items 1, 2, 9 and the export part of 14): names derived from the output,
one writer per output, the umask's modes, and one clear error naming the path before any work.
Every case runs the `voxdistill` command on real files (in a new process where `tests.cli_run`
says: locks, limits, the umask, another user) and checks the exit status, the message, and that
nothing was lost, clobbered or left half-written."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_pseudo_label import speech_manifest
from tests.cli_run import assert_refused, voxdistill
from tests.test_reliability_inputs import distill_config
from voxdistill.files import file_written_atomically, folder_written_atomically, output_lock
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, save_student

QUICK_EVALUATION = ("--latency-clips", "0", "--warmup", "0", "--max-new-tokens", "4")


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones included) with a file's bytes; None for a folder."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def hidden(folder: Path) -> list[str]:
    """What a writer left beside its outputs: temporaries and lock files."""
    return sorted(p.name for p in folder.rglob(".*"))


@pytest.fixture(scope="module")
def inputs(speech_dir, tiny_random_whisper, tmp_path_factory) -> dict[str, Path]:
    """Two manifests of real speech (one and two sentences), a student folder, an audio folder to import."""
    root = tmp_path_factory.mktemp("outputs")
    first = speech_manifest(speech_dir, root / "first.jsonl")
    lines = first.read_text().splitlines(keepends=True)
    (root / "one.jsonl").write_text(lines[0])
    (root / "two.jsonl").write_text("".join(lines[1:]))
    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0,), (1,)))
    save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                 root / "student")
    audio = root / "audio"
    audio.mkdir()
    shutil.copy(speech_dir / "fox.wav", audio / "fox.wav")
    (audio / "fox.txt").write_text("The quick brown fox jumps over the lazy dog.")
    return {"model": tiny_random_whisper, "one": root / "one.jsonl", "two": root / "two.jsonl",
            "manifest": first, "student": root / "student", "audio": audio}


# Each command with its output: (arguments given the output and the test's folder, "file" or "folder",
# the path its lock guards given the output).
def _args(command: str, inputs: dict, out: Path, tmp: Path) -> list:
    model = inputs["model"]
    return {
        "evaluate": ["evaluate", "--model", model, "--manifest", inputs["one"], "--out", out, *QUICK_EVALUATION],
        "report": ["report", out.parent, "--out", out],
        "pseudo-label": ["pseudo-label", "--teacher", model, "--manifest", inputs["one"], "--out", out,
                         "--max-new-tokens", "4"],
        "distill": ["distill", "--config", distill_config(tmp, model, inputs["one"]), "--set", f"out={out}"],
        "corpus import": ["corpus", "import", inputs["audio"], "--out", out],
        "export": ["export", model, "--format", "hf", "--out", out],
        "student init": ["student", "init", "--teacher", model, "--encoder-layers", "1", "--decoder-layers", "1",
                         "--out", out],
    }[command]


KINDS = {"evaluate": "file", "report": "file", "pseudo-label": "folder", "distill": "folder",
         "corpus import": "folder", "export": "folder", "student init": "folder"}


# -- 1. names derived from the output, exclusive temporaries, one writer per output ----------------


def test_two_evaluations_in_one_folder_keep_their_own_transcripts(inputs, tmp_path):
    # A link planted at the temporary name evaluate used to write through: its target stays as it was.
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (tmp_path / ".transcripts.jsonl.tmp").symlink_to(victim)
    for name in ("one", "two"):
        result = voxdistill("evaluate", "--model", inputs["model"], "--model", inputs["student"], "--manifest", inputs[name],
                     "--out", tmp_path / f"{name}.json", *QUICK_EVALUATION)
        assert result.returncode == 0, result.stderr
        assert f"transcripts: {tmp_path / f'{name}.transcripts.jsonl'}" in result.stdout
    assert victim.read_text() == "mine"
    for name in ("one", "two"):
        metrics = json.loads((tmp_path / f"{name}.json").read_text())
        assert metrics["transcripts"] == f"{name}.transcripts.jsonl"
        ids = {json.loads(line)["id"] for line in (tmp_path / metrics["transcripts"]).read_text().splitlines()}
        assert ids == {json.loads(line)["id"] for line in inputs[name].read_text().splitlines()}
    # The report of the first shows the first's utterance (the fox), not the second's (report, weather).
    assert voxdistill("report", tmp_path / "one.json", "--out", tmp_path / "one.html").returncode == 0
    page = (tmp_path / "one.html").read_text()
    assert "fox" in page and "weekly" not in page and "windy" not in page
    assert hidden(tmp_path) == [".transcripts.jsonl.tmp"]  # the planted link; no temporary or lock left


def test_a_report_ignores_transcripts_another_evaluation_wrote_since(inputs, tmp_path):
    out = tmp_path / "metrics.json"
    assert voxdistill("evaluate", "--model", inputs["model"], "--manifest", inputs["one"], "--out", out,
               *QUICK_EVALUATION).returncode == 0
    transcripts = tmp_path / "metrics.transcripts.jsonl"
    transcripts.write_text(transcripts.read_text().replace('"set": "one"', '"set": "other"'))
    assert voxdistill("report", out, "--out", tmp_path / "r.html").returncode == 0
    assert "was since written by another evaluation" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("command", ["evaluate", "distill", "export", "pseudo-label", "corpus import"])
def test_a_second_run_on_an_output_being_written_is_refused(command, inputs, tmp_path):
    out = tmp_path / ("out.json" if KINDS[command] == "file" else "out")
    if command == "evaluate":
        out.write_text("{}")
    elif command != "export":
        out.mkdir()
        (out / "earlier.txt").write_text("an earlier run's output")
    locked = out / "audio.jsonl" if command == "corpus import" else out  # import locks the manifest it adds
    args = _args(command, inputs, out, tmp_path)
    with output_lock(locked):  # this test process is the other run
        before = tree(tmp_path)
        result = voxdistill(*args, separate=command == "evaluate")  # in a new process, or another descriptor of ours
        assert_refused(result, 2, f"{locked}: another voxdistill run is writing it (process {os.getpid()})")
        assert tree(tmp_path) == before
    assert not hidden(tmp_path)  # the lock file goes with its holder


def test_a_second_import_never_replaces_the_manifest(inputs, tmp_path):
    out = tmp_path / "data"
    assert voxdistill("corpus", "import", inputs["audio"], "--out", out).returncode == 0
    manifest = out / "audio.jsonl"
    manifest.write_text(manifest.read_text() + "\n")  # edited by its user since
    before = tree(tmp_path)
    assert_refused(voxdistill("corpus", "import", inputs["audio"], "--out", out), 2,
                   f"{manifest}: already exists; remove it to import again, or choose another --out or --name")
    assert tree(tmp_path) == before


def test_a_killed_writer_leaves_no_lock_and_its_temporaries_go(inputs, tmp_path):
    # A process holding the export's lock, killed with -9 while writing its temporary folder: what
    # a killed export leaves. The next export takes the lock (the kernel released it), clears the
    # temporary and writes the folder.
    out = tmp_path / "exported"
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\n"
        "from voxdistill.files import folder_written_atomically, output_lock\n"
        "with output_lock(Path(sys.argv[1])), folder_written_atomically(Path(sys.argv[1])) as tmp:\n"
        "    (tmp / 'model.safetensors').write_bytes(b'half')\n    print('writing', flush=True)\n    time.sleep(600)\n"),
        str(out)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = hidden(tmp_path)
    assert ".exported.lock" in left and any(name.startswith(".exported.") and name.endswith(".tmp") for name in left)
    result = voxdistill("export", inputs["model"], "--format", "hf", "--out", out)
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").stat().st_size > 100
    assert not hidden(tmp_path)


@pytest.mark.parametrize("written_atomically", [file_written_atomically, folder_written_atomically])
def test_an_interrupt_just_after_the_temporary_is_made_leaves_none(written_atomically, monkeypatch, tmp_path):
    # Ctrl-C (or SIGTERM, which voxdistill raises the same way) can land between the kernel making the
    # temporary and the writer knowing it has one: the CI failure this keeps left a transcripts
    # temporary beside an interrupted evaluation. Here the interrupt comes as the writer reads the
    # new temporary's modes, the first thing after making it.
    def interrupted(mode):
        raise KeyboardInterrupt

    monkeypatch.setattr("voxdistill.files.stat.S_IMODE", interrupted)
    with pytest.raises(KeyboardInterrupt), written_atomically(tmp_path / "out.json"):
        pytest.fail("the block never starts")
    assert hidden(tmp_path) == []


def test_a_link_at_the_lock_name_is_not_followed(inputs, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (tmp_path / ".out.json.lock").symlink_to(victim)
    result = voxdistill(*_args("evaluate", inputs, tmp_path / "out.json", tmp_path))
    assert_refused(result, 2, f"{tmp_path / 'out.json'}: cannot write: Too many levels of symbolic links")
    assert victim.read_text() == "mine"
    assert not (tmp_path / "out.json").exists()


# -- 2. the umask's modes ------------------------------------------------------------------------


def test_every_output_gets_the_modes_of_the_umask(inputs, tmp_path):
    """A chain of commands under umask 027: every file they make is 0640, every folder 0750 (not
    the 0600/0700 of a temporary renamed into place)."""
    umask = 0o027
    out = tmp_path / "work"
    out.mkdir()
    steps = [
        ("student init", out / "student"), ("corpus import", out / "data"),
        ("export", out / "exported"), ("evaluate", out / "metrics.json"), ("report", out / "report.html"),
    ]
    first = voxdistill(*_args("pseudo-label", inputs, out / "labels", tmp_path), umask=umask)  # a new process's umask
    assert first.returncode == 0, first.stderr
    before = os.umask(umask)  # the others in this process, under the same umask
    try:
        for command, path in steps:
            result = voxdistill(*_args(command, inputs, path, tmp_path))
            assert result.returncode == 0, (command, result.stderr)
        distilled = voxdistill("distill", "--config", distill_config(tmp_path, inputs["student"], inputs["one"]),
                               "--set", f"out={out / 'run'}")
        assert distilled.returncode == 0, distilled.stderr
    finally:
        os.umask(before)
    made = [p for p in out.rglob("*")]
    assert any(p.name == "model.safetensors" for p in made) and (out / "run" / "checkpoints").is_dir()
    wrong = {str(p.relative_to(out)): oct(stat.S_IMODE(p.stat().st_mode)) for p in made
             if stat.S_IMODE(p.stat().st_mode) != (0o777 if p.is_dir() else 0o666) & ~umask}
    assert not wrong
    assert not hidden(out)


# -- 9. one clear line naming the path, before any work --------------------------------------------


def read_only(folder: Path) -> tuple:
    """Make ``folder`` read-only; the prefix that runs a command without the power to ignore that.
    Root ignores permission bits, so a command a root test runs goes through ``setpriv``, dropping
    the capabilities that let root write anywhere (CAP_DAC_OVERRIDE and kin) from the new process."""
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made for the command")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner")


@pytest.mark.parametrize("command", list(KINDS))
def test_an_output_in_a_read_only_folder_is_refused_before_any_work(command, inputs, tmp_path):
    place = tmp_path / "place"
    place.mkdir()
    out = place / ("out.json" if KINDS[command] == "file" else "out")
    prefix = read_only(place)
    try:
        result = voxdistill(*_args(command, inputs, out, tmp_path), prefix=prefix)
    finally:
        place.chmod(0o755)
    assert_refused(result, 2, f"error: {out}: cannot write in {place} (read-only)")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(place.iterdir()) == []


def test_evaluate_card_into_a_read_only_student_is_refused_before_the_evaluation(inputs, tmp_path):
    student = tmp_path / "student"
    shutil.copytree(inputs["student"], student)
    before = tree(student)
    prefix = read_only(student)
    try:
        result = voxdistill("evaluate", "--model", inputs["model"], "--model", student, "--manifest", inputs["one"],
                     "--out", tmp_path / "metrics.json", "--card", *QUICK_EVALUATION, prefix=prefix)
    finally:
        student.chmod(0o755)
    assert_refused(result, 2, f"error: {student / 'README.md'}: cannot write in {student} (read-only)")
    assert tree(student) == before
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "metrics.transcripts.jsonl").exists()


@pytest.mark.parametrize("command", list(KINDS))
def test_an_output_of_the_wrong_kind_is_refused(command, inputs, tmp_path):
    taken = tmp_path / "taken"
    args = _args(command, inputs, taken, tmp_path)
    if KINDS[command] == "file":
        taken.mkdir()
        (taken / "inside.txt").write_text("mine")
        message = f"error: {taken}: is a folder; give the name of a file to write"
    else:
        taken.write_text("mine")
        message = (f"error: --out {taken}: already exists and is not an empty folder"
                   if command in ("export", "student init") else f"error: {taken}: is a file, not a folder")
    before = tree(tmp_path)
    assert_refused(voxdistill(*args), 2, message)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["evaluate", "pseudo-label"])
def test_an_output_under_a_file_is_refused(command, inputs, tmp_path):
    """A folder on the way that is a file: the place cannot be written, whoever runs the command."""
    under_a_file = tmp_path / "notes.txt"
    out = under_a_file / "out"
    args = _args(command, inputs, out, tmp_path)
    under_a_file.write_text("mine")
    before = tree(tmp_path)
    assert_refused(voxdistill(*args), 2, f"error: {out}: {under_a_file} is a file, not a folder; choose another output")
    assert tree(tmp_path) == before


def _fill_the_disk_at(limit: int):
    """In the child: files may grow to ``limit`` bytes, then a write fails as on a full disk (EFBIG;
    Python ignores SIGXFSZ, so the write returns the error instead of killing the process)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_is_one_line_naming_the_output(inputs, tmp_path):
    out = tmp_path / "metrics.json"  # far longer than 1500 bytes; the transcripts of one clip are not
    result = voxdistill(*_args("evaluate", inputs, out, tmp_path), preexec_fn=_fill_the_disk_at(1500))
    assert_refused(result, 2, f"error: {out}: cannot write: File too large; free space there or choose another output")
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert not out.exists() and not (tmp_path / "metrics.transcripts.jsonl").exists()  # neither, not one alone
    assert not hidden(tmp_path)  # neither the half-written temporary nor the lock


def test_a_full_disk_keeps_the_earlier_evaluation_whole(inputs, tmp_path):
    """The transcripts fit, the metrics do not: the earlier metrics and transcripts stay, as a pair."""
    out = tmp_path / "metrics.json"
    assert voxdistill(*_args("evaluate", inputs, out, tmp_path)).returncode == 0
    before = tree(tmp_path)
    result = voxdistill(*_args("evaluate", inputs, out, tmp_path), preexec_fn=_fill_the_disk_at(1500))
    assert_refused(result, 2, f"error: {out}: cannot write: File too large")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["student init", "export", "pseudo-label"])
def test_a_full_disk_under_safetensors_is_one_line_too(command, inputs, tmp_path):
    """safetensors reports a failed write in its own exception type, not OSError: still one line
    naming the output, and no half-written model or shard under its final name."""
    out = tmp_path / "out"
    result = voxdistill(*_args(command, inputs, out, tmp_path), preexec_fn=_fill_the_disk_at(2048))
    assert_refused(result, 2, f"error: {out}", "cannot write: File too large; free space there")
    assert not list(out.rglob("*.safetensors")) if out.exists() else True


# -- cases of the probe (issue 22): outputs that would destroy inputs or users' files, bad options -----


def test_an_output_that_is_an_input_is_refused(inputs, tmp_path):
    manifest = tmp_path / "m.jsonl"
    shutil.copy(inputs["one"], manifest)
    before = manifest.read_bytes()
    result = voxdistill("evaluate", "--model", inputs["model"], "--manifest", manifest, "--out", manifest, *QUICK_EVALUATION)
    assert_refused(result, 2, f"{manifest}: is also an input of this command")
    assert manifest.read_bytes() == before
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"not": "touched"}')
    result = voxdistill("report", metrics, "--out", metrics)
    assert_refused(result, 2, f"{metrics}: is also an input of this command")
    assert metrics.read_text() == '{"not": "touched"}'


def test_pseudo_label_never_fills_a_folder_of_other_files(inputs, tmp_path):
    recordings = tmp_path / "my-recordings"
    recordings.mkdir()
    (recordings / "notes.txt").write_text("mine")
    result = voxdistill(*_args("pseudo-label", inputs, recordings, tmp_path))
    assert_refused(result, 2, f"{recordings}: holds other files and no pseudo-labelling run")
    assert tree(recordings) == {"notes.txt": b"mine"}


def test_importing_a_folder_without_audio_writes_nothing(tmp_path):
    source = tmp_path / "empty-source"
    source.mkdir()
    (source / "readme.txt").write_text("no audio here")
    result = voxdistill("corpus", "import", source, "--out", tmp_path / "data")
    assert_refused(result, 2, f"{source.resolve()}: holds no audio file")
    assert not (tmp_path / "data").exists()  # nor the folder it would have created


def test_an_import_that_fails_on_a_full_disk_leaves_no_folder(inputs, tmp_path):
    out = tmp_path / "new" / "data"
    result = voxdistill("corpus", "import", inputs["audio"], "--out", out, preexec_fn=_fill_the_disk_at(16))
    assert_refused(result, 2, f"error: {out / 'audio.jsonl'}: cannot write: File too large")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("flags, named", [
    (("--label", " "), "a model label is empty"),
    (("--temperature-fallback", "-1"), "--temperature-fallback: '-1': each temperature is above 0 and at most 2"),
])
def test_an_empty_label_or_a_temperature_out_of_range_is_refused(flags, named, inputs, tmp_path):
    result = voxdistill("evaluate", "--model", inputs["model"], "--manifest", inputs["one"], "--out", tmp_path / "m.json",
                 *QUICK_EVALUATION, *flags)
    assert_refused(result, 2, named)
    assert not (tmp_path / "m.json").exists()


def test_a_run_of_no_steps_is_refused(inputs, tmp_path):
    result = voxdistill("distill", "--config", distill_config(tmp_path, inputs["model"], inputs["one"]), "--steps-this-run", "0")
    assert_refused(result, 2, "--steps-this-run")
