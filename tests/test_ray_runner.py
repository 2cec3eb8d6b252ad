"""``predict --runner ray`` (issue 14): the lines of a local run, from Ray Data actors.

One local Ray (2 CPUs, like this machine) serves the whole module; the CLI reuses a Ray that is
already initialised, so each test pays for its actors only. Skipped when Ray Data is missing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.errors import ConfigError
from ppinfer.pipeline.input_list import read_input_list
from ppinfer.runners.ray_runner import check_fits, plan_resources

from .needs import missing
from .ray_crash_engine import MARKER_ENV

ROOT = Path(__file__).resolve().parent.parent
SCORE_TOLERANCE = 1e-5


RAY_DATA_MISSING = missing("pyarrow", "ray.data", what="Ray Data", extra="ray")
needs_ray = pytest.mark.skipif(RAY_DATA_MISSING is not None, reason=RAY_DATA_MISSING or "")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A 2-CPU local Ray whose workers import this checkout (src/ and tests/)."""
    import ray

    marker = tmp_path_factory.mktemp("crash") / "crashed-once"
    path = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT),
                                       os.environ.get("PYTHONPATH", "")) if p)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, MARKER_ENV: str(marker)}})
    try:
        yield marker
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """Real photos (scikit-image's samples) and one corrupt JPEG."""
    from skimage import data

    root = tmp_path_factory.mktemp("ray-photos")
    for name in ("chelsea", "coffee", "astronaut", "rocket", "camera"):
        image = getattr(data, name)()
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        cv2.imwrite(str(root / f"{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return root


@pytest.fixture(scope="module")
def builtin_source():
    from ppinfer.api.builtin_model import default_model_dir
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.runtime.paddle_env import paddle_env

    return resolve_source(model=str(default_model_dir()), prefer=paddle_env().native_format)


def predict(*args: str):
    return CliRunner().invoke(cli, ["predict", *args], catch_exceptions=False)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def assert_same_lines(local: list[dict], ray: list[dict]) -> None:
    assert [line["file_name"] for line in ray] == [line["file_name"] for line in local]
    for want, got in zip(local, ray):
        assert set(got) == set(want), got
        if "error" in want:
            assert got["error"] == want["error"]
            continue
        assert got["class_ids"] == want["class_ids"], want["file_name"]
        assert got["label_names"] == want["label_names"]
        assert max(abs(a - b) for a, b in zip(got["scores"], want["scores"])) <= SCORE_TOLERANCE


@pytest.fixture(scope="module")
def local_lines(photo_dir, tmp_path_factory) -> list[dict]:
    save = tmp_path_factory.mktemp("local") / "local.jsonl"
    result = predict("-i", str(photo_dir), "--json", "--save", str(save))
    assert result.exit_code == 1, result.output
    lines = json_lines(save.read_text(encoding="utf-8"))
    assert len(lines) == 6 and sum("error" in line for line in lines) == 1
    return lines


@needs_ray
def test_two_ray_actors_give_the_local_lines_and_exit_1_for_a_corrupt_file(
        local_ray, photo_dir, local_lines, tmp_path):
    save = tmp_path / "ray.jsonl"
    result = predict("-i", str(photo_dir), "--runner", "ray", "--actors", "2",
                     "--save", str(save), "--json")
    assert result.exit_code == 1, result.output
    ray_lines = json_lines(save.read_text(encoding="utf-8"))
    assert_same_lines(local_lines, ray_lines)
    assert json_lines(result.stdout) == ray_lines
    assert "Ray: 2 actor(s) of 0.5 CPUs, 1 thread(s) each" in result.stderr
    assert result.stderr.splitlines()[-1] == "1 of 6 inputs failed; their lines say why."


@needs_ray
@pytest.mark.paddle3_only
def test_an_input_list_and_parquet_output_give_the_same_results(
        local_ray, photo_dir, local_lines, tmp_path, monkeypatch):
    monkeypatch.chdir(photo_dir)  # listed relative paths are relative to the current directory
    listing = tmp_path / "paths.txt"
    listing.write_text("coffee.jpg\r\n\nnot-there.jpg\n" + str(photo_dir / "corrupt.jpg") + "\n")
    local = predict("--input-list", str(listing), "--json")
    assert local.exit_code == 1, local.output
    assert [line["file_name"] for line in json_lines(local.stdout)] == [
        "coffee.jpg", "not-there.jpg", str(photo_dir / "corrupt.jpg")]
    assert json_lines(local.stdout)[1]["error"] == (
        "Cannot read not-there.jpg: No such file or directory.")

    out = tmp_path / "out.parquet"
    result = predict("--input-list", str(listing), "--runner", "ray", "--actors", "2",
                     "--save", str(out), "--json")
    assert result.exit_code == 1, result.output
    assert out.is_dir() and list(out.glob("*.parquet"))
    assert_same_lines(json_lines(local.stdout), json_lines(result.stdout))
    coffee = next(line for line in local_lines if line["file_name"].endswith("coffee.jpg"))
    assert json_lines(result.stdout)[0]["class_ids"] == coffee["class_ids"]

    import pyarrow.parquet as pq

    table = pq.read_table(out).sort_by("index")
    assert table.column("file_name").to_pylist() == [
        "coffee.jpg", "not-there.jpg", str(photo_dir / "corrupt.jpg")]
    assert table.column("error").null_count == 1


@needs_ray
@pytest.mark.paddle3_only
def test_a_nul_byte_in_an_input_list_line_is_that_line_s_error_on_ray(
        local_ray, photo_dir, local_lines, tmp_path):
    listing = tmp_path / "paths.txt"
    listing.write_bytes(b"\n".join([os.fsencode(photo_dir / "coffee.jpg"), b"bad\0name.jpg",
                                    os.fsencode(photo_dir / "rocket.jpg")]))
    result = predict("--input-list", str(listing), "--runner", "ray", "--json")
    assert result.exit_code == 1, result.output  # was: the whole Ray run failed, no output
    lines = json_lines(result.stdout)
    assert [line["file_name"] for line in lines] == [
        str(photo_dir / "coffee.jpg"), "bad\0name.jpg", str(photo_dir / "rocket.jpg")]
    assert lines[1]["error"] == (f"Line 2 of the --input-list {listing} holds a NUL byte, "
                                 "which no file name can hold: fix that line.")
    assert_same_lines([line for line in local_lines if line["file_name"] in
                       (lines[0]["file_name"], lines[2]["file_name"])], [lines[0], lines[2]])


@needs_ray
@pytest.mark.paddle3_only
def test_a_name_that_is_not_utf8_comes_back_from_ray_with_its_bytes(local_ray, photo_dir,
                                                                   tmp_path):
    import base64

    folder = tmp_path / "odd"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    with open(raw, "wb") as fh:
        fh.write((photo_dir / "coffee.jpg").read_bytes())
    (folder / "empty\\xe9.jpg").write_bytes(b"")  # spelled with a backslash: an error line
    local = predict("-i", str(folder), "--json")
    on_ray = predict("-i", str(folder), "--runner", "ray", "--json")
    assert local.exit_code == on_ray.exit_code == 1, on_ray.output
    lines = json_lines(on_ray.stdout)
    assert_same_lines(json_lines(local.stdout), lines)
    assert base64.b64decode(lines[0]["file_name_base64"]) == raw
    assert "file_name_base64" not in lines[1]


@needs_ray
@pytest.mark.paddle3_only
def test_a_ray_run_can_be_repeated_onto_its_own_parquet_output(local_ray, photo_dir, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "out.parquet"
    first = predict("-i", str(photo_dir / "coffee.jpg"), "--runner", "ray", "--save", str(out))
    assert first.exit_code == 0, first.output
    again = predict("-i", str(photo_dir / "coffee.jpg"), "-i", str(photo_dir / "rocket.jpg"),
                    "--runner", "ray", "--save", str(out))
    assert again.exit_code == 0, again.output  # was: "'--save': File ... is a directory."
    assert pq.read_table(out).sort_by("index").column("file_name").to_pylist() == [
        str(photo_dir / "coffee.jpg"), str(photo_dir / "rocket.jpg")]


@pytest.mark.paddle3_only
def test_a_parquet_output_folder_holding_other_files_is_not_replaced(photo_dir, tmp_path):
    out = tmp_path / "out.parquet"
    out.mkdir()
    (out / "part-0.parquet").write_bytes(b"PAR1")
    (out / "notes.txt").write_text("mine")
    result = predict("-i", str(photo_dir / "coffee.jpg"), "--runner", "ray", "--save", str(out))
    assert result.exit_code == 2
    assert result.stderr == (f"Error: --save {out} is a directory that holds more than Parquet "
                             "part files (notes.txt), so it is not replaced: choose another "
                             "name, or empty it yourself.\n")
    assert (out / "notes.txt").read_text() == "mine"
    local = predict("-i", str(photo_dir / "coffee.jpg"), "--save", str(tmp_path))
    assert local.exit_code == 2 and "is a directory: name a file for the JSON lines" in (
        local.stderr)


@needs_ray
@pytest.mark.paddle3_only
def test_an_actor_that_dies_is_restarted_and_its_batch_predicted_again(
        local_ray, photo_dir, local_lines, builtin_source):
    from ppinfer.config import RunConfig
    from ppinfer.pipeline.inputs import expand_inputs
    from ppinfer.runners.ray_runner import RayOptions, predict_on_ray

    from .ray_crash_engine import CrashOnceEngine

    results = []
    summary = predict_on_ray(builtin_source, RunConfig().resolve(), expand_inputs([str(photo_dir)]),
                             results.append, engine=CrashOnceEngine,
                             options=RayOptions(actors=2))
    assert local_ray.exists(), "no actor crashed: nothing was tested"
    assert (summary.results, summary.errors) == (5, 1)
    assert_same_lines(local_lines, [json.loads(r.to_json_line()) for r in results])


@pytest.mark.paddle3_only
@needs_ray
def test_actors_reserving_every_cpu_are_refused_before_they_starve_decoding(local_ray,
                                                                            photo_dir):
    result = predict("-i", str(photo_dir), "--runner", "ray", "--actors", "2",
                     "--actor-cpus", "1")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: 2 actors of 1 CPUs plus 0.5 for decoding need 2.5 CPUs, and this Ray cluster "
        "has 2: lower --actors or --actor-cpus (fractions such as 0.5 are fine).\n")


@pytest.mark.paddle3_only
def test_resources_leave_a_share_of_cpus_for_decoding():
    two = plan_resources(2, actors=2)
    assert (two.actor_cpus, two.engine_threads, two.decode_cpus) == (0.5, 1, 1.0)
    assert check_fits(two, 2) is None
    assert plan_resources(2, actors=1).actor_cpus == 1.0
    assert check_fits(plan_resources(2, actors=2, actor_cpus=1), 2) is not None
    big = plan_resources(64, actors=8)
    assert (big.actor_cpus, big.engine_threads, big.decode_cpus) == (6.0, 6, 16.0)
    assert plan_resources(64, actors=8, cpu_threads=3).engine_threads == 3
    assert plan_resources(2, actors=5).actor_cpus == 0.2  # more actors than CPUs: fractions


@pytest.mark.paddle3_only
def test_an_input_list_keeps_every_path_as_written(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xef\xbb\xbfa b.jpg\r\n\n   \nsub/c.png\n/abs/\xff.jpg")
    assert read_input_list(listing) == ["a b.jpg", "sub/c.png",
                                        os.fsdecode(b"/abs/\xff.jpg")]
    with pytest.raises(ConfigError, match="Cannot read the --input-list .*missing.txt"):
        read_input_list(tmp_path / "missing.txt")
    for special in (tmp_path, tmp_path / "fifo"):
        if special.name == "fifo":
            os.mkfifo(special)
        with pytest.raises(ConfigError, match="is not a regular file"):
            read_input_list(special)


@pytest.mark.paddle3_only
def test_without_ray_the_ray_runner_says_how_to_install_it(monkeypatch, photo_dir):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = predict("-i", str(photo_dir / "coffee.jpg"), "--runner", "ray")
    assert result.exit_code == 2
    assert result.stderr == ("Error: --runner ray needs Ray Data: pip install 'ppinfer[ray]' "
                             "(or 'ray[data]').\n")


@pytest.mark.paddle3_only
@needs_ray
def test_ray_without_ray_data_s_packages_says_how_to_install_them(photo_dir):
    import subprocess

    # `pip install ray` alone: Ray is there, Ray Data's pandas is not (hidden the way Python
    # hides a module, in a fresh process so that no earlier test has imported ray.data).
    script = ("import sys; sys.modules['pandas'] = None\n"
              "from ppinfer.cli import main; sys.exit(main())\n")
    proc = subprocess.run([sys.executable, "-c", script, "predict", "-i",
                           str(photo_dir / "coffee.jpg"), "--runner", "ray"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: --runner ray needs Ray Data: pip install 'ppinfer[ray]' (or 'ray[data]').")


@pytest.mark.paddle3_only
def test_an_unreachable_cluster_address_fails_in_one_sentence_not_after_minutes():
    from ppinfer.runners.ray_runner import check_reachable

    with pytest.raises(ConfigError, match=r"^Cannot reach the Ray cluster at 127.0.0.1:1: "):
        check_reachable("127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"^Cannot reach the Ray cluster at ray://127.0.0.1:1"):
        check_reachable("ray://127.0.0.1:1")  # Ray Client's address is checked the same way
    check_reachable("auto")  # left to Ray


@needs_ray
@pytest.mark.paddle3_only
def test_ctrl_c_during_a_ray_run_keeps_every_written_line_whole(photo_dir, tmp_path):
    """A real SIGINT to a real ``python -m ppinfer`` process running its own local Ray."""
    import shutil
    import signal
    import subprocess
    import time

    images = tmp_path / "many"
    images.mkdir()
    count = 240
    for i in range(count):
        shutil.copyfile(photo_dir / "coffee.jpg", images / f"img{i:03d}.jpg")
    save = tmp_path / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "ppinfer", "predict", "-i", str(images),
                             "--runner", "ray", "--save", str(save), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (save.exists() and save.stat().st_size) and proc.poll() is None:
            assert time.monotonic() < deadline, "no result line within 300 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "Interrupted."
    text = save.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]  # each line complete JSON
    assert 1 <= len(lines) < count, "the run finished before Ctrl-C: nothing was tested"
    assert [line["file_name"] for line in lines] == [
        str(images / f"img{i:03d}.jpg") for i in range(len(lines))]
    assert out.splitlines() == text.splitlines()[: len(out.splitlines())]


@pytest.mark.paddle3_only
def test_ray_options_without_runner_ray_are_refused_not_ignored(photo_dir):
    result = predict("-i", str(photo_dir / "coffee.jpg"), "--actors", "2")
    assert result.exit_code == 2
    assert "--actors applies to --runner ray; add --runner ray." in result.stderr


@needs_ray
@pytest.mark.paddle3_only
def test_the_results_dataset_composes_with_ray_data_and_keeps_input_order(
        local_ray, photo_dir, local_lines, builtin_source):
    from ppinfer.config import RunConfig
    from ppinfer.pipeline.inputs import expand_inputs
    from ppinfer.runners.ray_runner import results_dataset
    from ppinfer.runners.ray_stages import RESULT_COLUMNS

    ds = results_dataset(builtin_source, RunConfig().resolve(), expand_inputs([str(photo_dir)]),
                         actors=2)
    top1 = ds.filter(lambda row: row["error"] is None).map(
        lambda row: {"file_name": row["file_name"], "top1": row["class_ids"][0]})
    want = [(line["file_name"], line["class_ids"][0]) for line in local_lines
            if "error" not in line]
    assert [(row["file_name"], row["top1"]) for row in top1.take_all()] == want
    assert tuple(ds.columns()[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS


@needs_ray
def test_the_python_api_predicts_on_ray_with_the_local_results(local_ray, photo_dir, local_lines):
    import ppinfer

    with ppinfer.load() as predictor:
        results = predictor.predict(str(photo_dir), runner="ray", actors=2)
    assert_same_lines(local_lines, [r.to_dict() for r in results])


@needs_ray
@pytest.mark.paddle3_only
def test_a_ray_run_in_its_own_process_prints_only_ppinfers_lines_on_stderr(photo_dir):
    """Ray's C++ notices ("E ... core_worker.cc: ... constructor arguments in the object
    store") came on every run; without --verbose stderr holds ppinfer's summary lines only."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "ppinfer", "predict", str(photo_dir),
                           "--runner", "ray", "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr  # the corrupt JPEG
    assert len(proc.stdout.splitlines()) == 6
    foreign = [line for line in proc.stderr.splitlines()
               if not line.startswith(("Ray: ", "1 of 6 inputs failed"))]
    assert not foreign, proc.stderr
