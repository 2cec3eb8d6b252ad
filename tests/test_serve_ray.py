"""`ppinfer serve --runner ray` (issue 19): the local server's app on Ray Serve replicas.

One local Ray (2 CPUs, like this machine) holds one deployment of 2 replicas of 0.5 CPUs for
the module; a local server (uvicorn in a thread, as in test_serve.py) on the same model is the
reference. The command line's own start and stop runs as a process of its own. Skipped when
Ray Serve cannot be imported (pip install 'ppinfer[ray]').
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


from .needs import missing  # noqa: E402

RAY_SERVE_MISSING = missing("ray.serve", what="Ray Serve", extra="ray")
pytestmark = pytest.mark.skipif(RAY_SERVE_MISSING is not None, reason=RAY_SERVE_MISSING or "")

import ppinfer  # noqa: E402
from ppinfer.errors import ConfigError  # noqa: E402
from ppinfer.serving import create_app  # noqa: E402

from .test_serve import Running, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCORE_TOLERANCE = 1e-5
REPLICA_PREFIX = "SERVE_REPLICA::ppinfer#"
NAMES = ("chelsea", "coffee", "astronaut")


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": _env()["PYTHONPATH"]}})
    try:
        yield ray
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def on_ray(local_ray):
    """Two replicas of 0.5 CPUs: the deployment `ppinfer serve --runner ray --replicas 2
    --replica-cpus 0.5` makes, on the module's Ray."""
    from ppinfer.serving.ray_host import RayServeOptions, deploy, plan_for_replicas

    options = RayServeOptions(replicas=2, replica_cpus=0.5)
    plan = plan_for_replicas(None, "analysis", options, {})
    port = free_port()
    report = deploy(plan, options, {"max_batch": 8, "max_delay_ms": 20}, port=port)
    report.port = port
    return report


@pytest.fixture(scope="module")
def local_server():
    with ppinfer.load(engine="analysis") as predictor:
        running = Running(create_app(predictor, max_batch=8, max_delay_ms=20))
        yield running.url
        running.stop()


@pytest.fixture(scope="module")
def files(photos) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in photos.items()}


def _ask(url: str, files: dict[str, bytes]) -> dict[str, list]:
    """(class ids, scores) for every image on the three routes."""
    answers: dict[str, list] = {}
    for name in NAMES:
        plain = httpx.post(f"{url}/predict", content=files[name], timeout=60).json()
        answers[f"plain {name}"] = [plain["class_ids"], plain["scores"]]
        body = {"image": base64.b64encode(files[name]).decode()}
        doc = httpx.post(f"{url}/image-classification", json=body, timeout=60).json()
        categories = doc["result"]["categories"]
        answers[f"paddlex {name}"] = [[c["id"] for c in categories],
                                      [c["score"] for c in categories]]
    v2 = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(NAMES)],
                      "data": [base64.b64encode(files[n]).decode() for n in NAMES]}]}
    doc = httpx.post(f"{url}/v2/models/EfficientNet_lite0/infer", json=v2, timeout=60).json()
    outputs = {o["name"]: o for o in doc["outputs"]}
    k = outputs["class_ids"]["shape"][1]
    for row, name in enumerate(NAMES):
        answers[f"v2 {name}"] = [outputs["class_ids"]["data"][row * k:(row + 1) * k],
                                 outputs["scores"]["data"][row * k:(row + 1) * k]]
    return answers


@pytest.mark.paddle3_only
def test_the_command_starts_a_local_ray_serves_and_stops_it_on_sigterm(tmp_path, photos):
    import threading

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ppinfer", "serve", "--runner", "ray", "--replica-cpus", "0.5",
         "--engine", "analysis", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("Serving ") for line in err):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(err)
            time.sleep(0.2)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict",
                            content=photos["coffee"].read_bytes(), timeout=30)
        assert answer.status_code == 200 and answer.json()["class_ids"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
        reader.join(timeout=10)
    assert proc.returncode == 0, "".join(err)
    assert out == ""  # Ray's notices go to stderr
    said = next(line for line in err if line.startswith("Serving "))
    assert "with Ray Serve: 1 replica(s) of 0.5 CPUs, 1 thread(s) each" in said
    assert "engine build s per replica: " in said and said.split(": ")[-1][0].isdigit()
    with pytest.raises(httpx.TransportError):  # the local Ray, its proxy with it, is gone
        httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=5)


def test_two_replicas_answer_as_the_local_server_on_every_route(on_ray, local_server, files):
    assert len(on_ray.build_seconds) == 2, on_ray.build_seconds  # one engine per replica
    local = _ask(local_server, files)
    remote = _ask(f"http://127.0.0.1:{on_ray.port}", files)
    assert remote.keys() == local.keys()
    for key, (ids, scores) in local.items():
        assert remote[key][0] == ids, key
        np.testing.assert_allclose(remote[key][1], scores, atol=SCORE_TOLERANCE, err_msg=key)


@pytest.mark.paddle3_only
def test_errors_and_limits_are_the_local_server_s(on_ray, local_server, files):
    for url in (local_server, f"http://127.0.0.1:{on_ray.port}"):
        bad = httpx.post(f"{url}/predict", content=b"\xff\xd8\xff\xe0 not a jpeg", timeout=60)
        assert bad.status_code == 400 and bad.json()["error"].endswith(".")
        other = httpx.get(f"{url}/v2/models/ResNet50_vd", timeout=60)
        assert other.status_code == 404


@pytest.mark.paddle3_only
def test_more_replicas_than_a_local_ray_holds_are_refused_in_one_sentence(local_ray):
    from ppinfer.serving.ray_host import RayServeOptions, deploy, plan_for_replicas

    options = RayServeOptions(replicas=3, replica_cpus=1)
    with pytest.raises(ConfigError, match=r"^3 replicas of 1 CPUs need 3 CPUs, and this Ray "
                                          r"has 2: lower --replicas"):
        deploy(plan_for_replicas(None, "analysis", options, {}), options, {}, port=free_port())


def test_each_replica_s_engine_runs_as_many_threads_as_its_cpus_even_past_the_driver_s():
    from ppinfer.serving.ray_host import RayServeOptions, plan_for_replicas

    cores = os.cpu_count() or 1
    for cpus, threads in ((0.5, 1), (1, 1), (8 * cores, 8 * cores)):  # a cluster's big node
        options = RayServeOptions(address="head:6379", replica_cpus=cpus)
        plan = plan_for_replicas(None, "analysis", options, {})
        assert (plan.engine, plan.config.cpu_threads, plan.built) == ("analysis", threads, None)


def test_engine_auto_is_decided_on_the_driver_and_replicas_get_the_engine_s_name():
    from ppinfer.engines import ENGINES
    from ppinfer.serving.ray_host import RayServeOptions, plan_for_replicas

    plan = plan_for_replicas(None, "auto", RayServeOptions(replica_cpus=0.5), {})
    # a registered engine every replica builds as it is: nothing is measured on the replicas,
    # and the engine auto built on the driver to measure it is not sent to them
    assert plan.engine in ENGINES and plan.engine != "auto" and plan.built is None


@pytest.mark.parametrize(("args", "says"), [
    (["--runner", "ray", "--autoscale", "4"],
     "Error: --autoscale takes MIN:MAX replicas, such as 1:4, not '4'."),
    (["--runner", "ray", "--autoscale", "3:1"], "Error: --autoscale 3:1 needs 1 <= MIN <= MAX."),
    (["--replicas", "2"], "Error: --replicas applies to --runner ray; add --runner ray."),
    (["--runner", "ray", "--replicas", "2", "--autoscale", "1:2"],
     "Error: Give --replicas N or --autoscale MIN:MAX, not both."),
])
@pytest.mark.paddle3_only
def test_bad_ray_options_end_in_one_sentence_and_exit_2(args, says):
    from click.testing import CliRunner

    from ppinfer.cli import cli

    result = CliRunner().invoke(cli, ["serve", *args])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == says


@pytest.mark.paddle3_only
def test_without_ray_serve_the_ray_runner_says_how_to_install_it():
    # `pip install ray` alone: Ray is there, Ray Serve's grpcio is not (hidden the way Python
    # hides a module, in a fresh process)
    script = ("import sys; sys.modules['grpc'] = None\n"
              "from ppinfer.cli import main; sys.exit(main())\n")
    proc = subprocess.run([sys.executable, "-c", script, "serve", "--runner", "ray"],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: --runner ray serves on Ray Serve: pip install 'ppinfer[ray]' (or 'ray[serve]').")


def _replicas(ray) -> list[str]:
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["name"].startswith(REPLICA_PREFIX))


@pytest.mark.paddle3_only
def test_a_replica_killed_under_load_is_replaced_and_clients_never_hang(local_ray, on_ray,
                                                                        files):
    ray = local_ray
    url = f"http://127.0.0.1:{on_ray.port}/predict"
    before = _replicas(ray)
    assert len(before) == 2
    clients, per_client = 6, 12
    statuses: list[int] = []
    want = httpx.post(url, content=files["coffee"], timeout=60).json()["class_ids"]

    async def client(http: httpx.AsyncClient) -> None:
        for _ in range(per_client):
            answer = await http.post(url, content=files["coffee"])
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                assert answer.json()["class_ids"] == want

    async def kill_when_busy() -> None:
        while len(statuses) < clients:
            await asyncio.sleep(0.05)
        victim = ray.get_actor(before[0], namespace="serve")
        ray.kill(victim, no_restart=True)

    async def load() -> None:
        # a hang would be this timeout: an error, never a pass
        async with httpx.AsyncClient(timeout=60) as http:
            await asyncio.gather(kill_when_busy(), *(client(http) for _ in range(clients)))

    asyncio.run(load())
    failed = [s for s in statuses if s != 200]
    assert len(statuses) == clients * per_client
    # at most the requests that were in the killed replica fail, each with a server error
    assert len(failed) <= clients and all(500 <= s < 600 for s in failed), statuses
    deadline = time.monotonic() + 60
    while True:
        now = _replicas(ray)
        if len(now) == 2 and before[0] not in now:
            break
        assert time.monotonic() < deadline, f"not replaced: {now}"
        time.sleep(0.5)
    assert httpx.post(url, content=files["chelsea"], timeout=60).status_code == 200


@pytest.mark.paddle3_only
def test_a_model_path_a_replica_cannot_see_fails_the_deploy_in_one_sentence(local_ray,
                                                                            tmp_path):
    # last in this module: it replaces the module's application (one name, one app)
    import shutil

    from ppinfer.api.builtin_model import default_model_dir
    from ppinfer.serving.ray_host import RayServeOptions, deploy, plan_for_replicas

    copy = tmp_path / "lite0"
    shutil.copytree(default_model_dir(), copy)
    options = RayServeOptions(replicas=1, replica_cpus=0.25)
    plan = plan_for_replicas(str(copy), "analysis", options, {})
    shutil.rmtree(copy)  # as on a node that does not mount the driver's storage
    with pytest.raises(ConfigError, match=r"^The model path .*lite0 does not exist on Ray node "
                                          r".*: put the model on storage every node mounts"):
        deploy(plan, options, {}, port=free_port())


@pytest.mark.paddle3_only
def test_autoscale_starts_min_replicas_that_answer(local_ray, files):
    # after the test above: it deploys under the same name
    from ray import serve

    from ppinfer.serving.ray_host import APP_NAME, RayServeOptions, deploy, plan_for_replicas

    options = RayServeOptions(autoscale=(1, 2), replica_cpus=0.5)
    port = free_port()
    report = deploy(plan_for_replicas(None, "analysis", options, {}), options, {}, port=port)
    assert len(report.build_seconds) == 1 and "1 to 2 replicas (autoscaled)" in report.describe()
    assert httpx.post(report.url + "predict", content=files["chelsea"], timeout=60).status_code \
        == 200
    (deployment,) = serve.status().applications[APP_NAME].deployments.values()
    assert deployment.replica_states == {"RUNNING": 1}
