"""The web app in a real browser: Playwright drives Debian's chromium through the four tabs on
digits (load the data, see its information, train one epoch and reload the page while it
trains, predict an uploaded image with its attention overlay, evaluate with a confusion
matrix), and fails if the page fetches anything from outside 127.0.0.1; on a fresh page, the
empty tables' column headers and a digit example that one click predicts. Plus: one clear line
for a busy port, a refused second run, and twenty concurrent predictions.

Every wait is on an event (a page element, a file's content, a process's exit); a deadline only
decides when to give up."""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, assert_one_line_error, run_tool

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI sets VIT_REQUIRE_BROWSER=1: there a missing chromium fails the run instead of skipping
if CHROMIUM is None and os.environ.get("VIT_REQUIRE_BROWSER") == "1":
    raise RuntimeError("chromium is missing; install Debian's chromium (make test does as root)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test "
                                "installs it)")
# what the probe found keeps Chromium from reaching for Google's services at start
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on a free port, over a fresh output folder."""
    folder = tmp_path_factory.mktemp("app")
    port = free_port()
    # the app's output goes to a file: a pipe nobody reads fills up, and the app then blocks
    # on its next print (a prediction that never returns)
    log = folder / "app.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, str(ROOT / "tools" / "app.py"), "--port",
                                    str(port), "--output", str(folder / "output"), "--data",
                                    str(folder / "data")], cwd=folder, stdout=output,
                                   stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert process.poll() is None, log.read_text()
            assert time.time() < deadline, "the app did not start"
            time.sleep(0.5)
    yield {"url": url, "port": port, "folder": folder}
    process.terminate()
    process.wait(timeout=30)


def digit_image(path: Path, index: int = 3) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = (load_digits().images[index] * 255 / 16).astype("uint8")
    Image.fromarray(pixels).resize((32, 32)).save(path)
    return path


def expect_headers(page, table: str, names):
    """Table `#table` shows exactly the column headers `names` (not Gradio's 1, 2, 3 of a table
    built without headers); waits for the page-load handler that puts them in the page's
    language."""
    from playwright.sync_api import expect

    cells = page.locator(f"#{table} th")
    expect(cells).to_have_count(len(names), timeout=30_000)
    for cell, name in zip(cells.all(), names):
        expect(cell).to_have_attribute("title", name, timeout=30_000)


def test_four_tabs_end_to_end_in_a_real_browser(app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("VIT_APP_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    outside = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("request", lambda request: None if request.url.startswith(
            (app["url"], "data:", "blob:")) else outside.append(request.url))
        page.goto(app["url"])

        page.click("#load-data")  # 1. Data
        expect(page.locator("#data-summary")).to_contain_text("10 classes", timeout=60_000)
        expect(page.locator("#data-samples img")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / "tab_data.png"), full_page=True)

        page.get_by_role("tab", name="2. Preprocessing").click()
        page.click("#show-preprocessing")
        expect(page.locator("#data-report textarea")).to_have_value(
            re.compile("Data set 'digits': 10 classes"), timeout=60_000)
        expect(page.locator("#samples-after img")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / "tab_preprocessing.png"), full_page=True)

        page.get_by_role("tab", name="3. Training").click()
        page.locator("#epochs input").fill("1")
        page.locator("#warmup input").fill("0")
        page.locator("#run-name textarea").fill("e2e")
        page.click("#start-run")
        expect(page.locator("#train-command")).to_contain_text("tools/train.py", timeout=30_000)
        page.reload()  # the run is its own process: the page finds it again
        page.get_by_role("tab", name="3. Training").click()
        line = page.locator("#progress-line")
        expect(line).to_contain_text("e2e", timeout=30_000)
        assert "failed" not in line.inner_text()
        expect(line).to_contain_text("finished", timeout=240_000)
        expect(page.locator("#loss-figure img")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / "tab_training.png"), full_page=True)

        page.get_by_role("tab", name="4. Inference").click()
        page.get_by_role("button", name="Refresh the list").last.click()
        expect(page.locator("#model-choice input")).to_have_value(
            str(app["folder"] / "output" / "e2e" / "checkpoints" / "best.pdparams"),
            timeout=30_000)
        text = tmp_path / "text.png"  # not an image: named in its row, the digit predicted
        text.write_text("not an image\n")
        page.locator("#upload-images input[type=file]").set_input_files(
            [str(text), str(digit_image(tmp_path / "three.png"))])
        page.click("#predict")
        expect(page.locator("#top5")).to_contain_text("%", timeout=60_000)
        expect(page.locator("#rollout img")).to_be_visible(timeout=30_000)
        table = page.locator("#predictions")
        expect(table).to_contain_text("three.png")
        expect(table).to_contain_text("text.png")
        expect(table).to_contain_text("top-1 (probability)")
        expect(table).to_contain_text("not an image Pillow can read")
        page.click("#evaluate")
        expect(page.locator("#eval-accuracy")).to_contain_text("top-1", timeout=120_000)
        expect(page.locator("#confusion img")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / "tab_inference.png"), full_page=True)
        browser.close()
    assert not outside, outside
    status = json.loads((app["folder"] / "output" / "e2e" / "status.json").read_text())
    assert status["state"] == "finished" and status["epochs"] == 1
    assert status["step"] == status["steps"]  # the progress line ends on the last step
    for name in ("tab_data", "tab_preprocessing", "tab_training", "tab_inference"):
        assert (shots / f"{name}.png").stat().st_size > 10_000


def test_empty_tables_show_their_columns_and_an_example_is_one_click_from_a_prediction(app,
                                                                                     tmp_path):
    """On a fresh page the tables that are still empty show the columns they will have; in the
    Inference tab a click on one of the digits' test images, with a model chosen, predicts it as
    an upload would: its top 5, its attention rollout and its row in the table."""
    from playwright.sync_api import expect, sync_playwright

    weights = app["folder"] / "output" / "e2e" / "checkpoints" / "best.pdparams"
    if not weights.is_file():
        pytest.skip("needs the end-to-end test's run")
    shots = Path(os.environ.get("VIT_APP_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app["url"])
        expect_headers(page, "class-counts", ["class", "train", "val", "test"])
        page.get_by_role("tab", name="3. Training").click()
        expect_headers(page, "compare-numbers", [
            "run", "epochs", "best chosen by", "best epoch", "best validation top-1",
            "best validation balanced accuracy", "best validation mAP", "final training loss",
            "final validation loss", "test top-1", "test balanced accuracy", "test mAP"])
        expect_headers(page, "compare-differences", ["key", "value in each run"])
        page.screenshot(path=str(shots / "tab_training_empty_tables.png"), full_page=True)

        page.get_by_role("tab", name="4. Inference").click()
        examples = page.locator("#inference-examples img")
        expect(examples).to_have_count(10)  # one test image of each digit
        choice = page.locator("#model-choice input")
        expect(choice).to_have_value(re.compile(r"best\.pdparams$"), timeout=30_000)  # listed
        choice.fill(str(weights))
        choice.press("Enter")
        expect(page.locator("#rollout img")).to_have_count(0)  # nothing predicted yet
        page.locator("#inference-examples img[src*='digit-3-test']").click()
        expect(page.locator("#upload-images")).to_contain_text("digit-3-test")
        expect(page.locator("#top5")).to_contain_text("%", timeout=60_000)
        expect(page.locator("#rollout img")).to_be_visible(timeout=30_000)
        expect(page.locator("#predictions")).to_contain_text("digit-3-test")
        expect(page.locator("#predictions")).to_contain_text("top-1 (probability)")
        page.screenshot(path=str(shots / "tab_inference_example.png"), full_page=True)
        browser.close()
    examples = sorted(p.name for p in (app["folder"] / "output" / "app" / "examples").glob("*"))
    assert [name.split("-")[1] for name in examples] == [str(d) for d in range(10)], examples


def test_the_app_speaks_the_browsers_language(app, tmp_path):
    """A browser set to Chinese sees the four parts under their Chinese names and Chinese
    buttons, and a prediction works there with Chinese table headers; set to English, the
    same page is English. (Screenshots go to VIT_APP_SCREENSHOTS when it is set.)"""
    from playwright.sync_api import expect, sync_playwright

    weights = app["folder"] / "output" / "e2e" / "checkpoints" / "best.pdparams"
    if not weights.is_file():
        pytest.skip("needs the end-to-end test's run")
    shots = Path(os.environ.get("VIT_APP_SCREENSHOTS", tmp_path))
    expected = {"zh-CN": (["1. 数据获取", "2. 数据预处理", "3. 模型训练", "4. 模型推理"],
                          ["加载数据", "预测", "评估"], "第 1 名（概率）",
                          ["类别", "训练集", "验证集", "测试集"]),
                "en-US": (["1. Data", "2. Preprocessing", "3. Training", "4. Inference"],
                          ["Load data", "Predict", "Evaluate"], "top-1 (probability)",
                          ["class", "train", "val", "test"])}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        for locale, (tabs, buttons, header, counts) in expected.items():
            page = browser.new_context(locale=locale,
                                       viewport={"width": 1280, "height": 1000}).new_page()
            page.goto(app["url"])
            expect(page.get_by_role("tab").first).to_have_text(tabs[0], timeout=30_000)
            assert [tab.inner_text() for tab in page.get_by_role("tab").all()] == tabs
            expect(page.locator("#load-data")).to_have_text(buttons[0])
            expect_headers(page, "class-counts", counts)  # the empty table, in the language
            page.screenshot(path=str(shots / f"app_{locale}_data.png"))
            page.get_by_role("tab", name=tabs[3]).click()
            expect(page.locator("#predict")).to_have_text(buttons[1])
            expect(page.locator("#evaluate")).to_have_text(buttons[2])
            page.locator("#model-choice input").fill(str(weights))
            page.locator("#model-choice input").press("Enter")
            page.locator("#upload-images input[type=file]").set_input_files(
                [str(digit_image(tmp_path / "three.png"))])
            page.click("#predict")
            expect(page.locator("#top5")).to_contain_text("%", timeout=60_000)
            expect(page.locator("#predictions")).to_contain_text(header, timeout=30_000)
            expect(page.locator("#predictions")).to_contain_text("three.png")
            page.screenshot(path=str(shots / f"app_{locale}_inference.png"))
        browser.close()


def test_the_training_tab_runs_the_chosen_config_plus_only_what_was_changed(app, tmp_path):
    """Choosing a config fills the form with its settings; Start sends only the field the user
    changed (the data source, so that nothing is downloaded), and the command shown is the one
    that runs. The run is stopped once its config.yaml is written."""
    import yaml
    from playwright.sync_api import expect, sync_playwright

    run_dir = app["folder"] / "output" / "chosen"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app["url"])
        page.get_by_role("tab", name="3. Training").click()
        page.locator("#config-choice input").click()
        page.get_by_role("option", name="cifar10_vit_tiny").click()
        expect(page.locator("#epochs input")).to_have_value("200", timeout=30_000)
        expect(page.locator("#model-name input")).to_have_value("ViT_tiny_patch4_32")
        expect(page.locator("#lr input")).to_have_value("0.001")
        page.get_by_role("tab", name="1. Data").click()
        expect(page.locator("#data-source input")).to_have_value("cifar10")
        page.locator("#data-source input").click()
        page.get_by_role("option", name="digits", exact=True).click()
        page.get_by_role("tab", name="3. Training").click()
        page.locator("#run-name textarea").fill("chosen")
        page.click("#start-run")
        shown = page.locator("#train-command")
        expect(shown).to_contain_text("tools/train.py", timeout=30_000)
        deadline = time.time() + 180
        while _status(run_dir).get("step", 0) < 1:  # training, so Stop saves a checkpoint
            assert time.time() < deadline, (run_dir / "console.log").read_text()
            time.sleep(1)
        command = shown.inner_text()
        pid = _status(run_dir)["pid"]
        running = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        page.click("#stop-run")
        expect(page.locator("#progress-line")).to_contain_text("stopped", timeout=180_000)
        browser.close()
    ran = yaml.safe_load((run_dir / "config.yaml").read_text())
    chosen = yaml.safe_load((ROOT / "configs" / "cifar10_vit_tiny.yaml").read_text())
    for section, values in chosen.items():
        for key, value in values.items():
            if (section, key) != ("data", "source"):
                assert ran[section][key] == value, (section, key)
    assert ran["data"]["source"] == "digits"
    overrides = re.findall(r"-o (\S+)", command)
    assert overrides == ["data.source=digits", f"output.dir={app['folder'] / 'output'}",
                         "output.run_name=chosen"], command
    shown_args = shlex.split(next(line for line in command.splitlines()
                                  if line.startswith("python ")))
    assert shown_args[:2] == ["python", "tools/train.py"]
    assert running[running.index("vit.cli.train") + 1:] == shown_args[2:]  # what ran


def _status(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):  # not written yet, or being replaced
        return {}


def test_twenty_concurrent_predictions_agree_with_the_tool(app, tmp_path):
    from vit.app.bench import concurrent_predictions

    weights = app["folder"] / "output" / "e2e" / "checkpoints" / "best.pdparams"
    if not weights.is_file():
        pytest.skip("needs the end-to-end test's run")
    images = [digit_image(tmp_path / f"d{i}.png", i) for i in range(4)]
    expected = {}
    result = run_tool("infer", "--weights", weights, "--images", *images, "--top-k", "1",
                      "--output", tmp_path / "tool")
    assert result.returncode == 0, result.stderr
    for row in json.loads((tmp_path / "tool" / "predictions.json").read_text()):
        expected[Path(row["path"]).name] = row["top"][0][0]
    burst = concurrent_predictions(app["url"], weights, images, requests=20)
    assert len(burst["answers"]) == 20
    assert all(expected[name] == label for name, label in burst["answers"]), burst["answers"]


def test_the_app_benchmark_tool_checks_every_answer(app):
    weights = app["folder"] / "output" / "e2e" / "checkpoints" / "best.pdparams"
    if not weights.is_file():
        pytest.skip("needs the end-to-end test's run")
    result = run_tool("benchmark_app", "--url", app["url"], "--weights", weights,
                      "--requests", "4")
    assert result.returncode == 0, result.stderr
    assert "4 concurrent predictions: 4 answers equal tools/infer.py's" in result.stdout
    assert "latency min" in result.stdout
    assert_one_line_error(run_tool("benchmark_app", "--url", "http://127.0.0.1:9/",
                                   "--weights", weights), "no app answers at http://127.0.0.1:9/")


def test_a_busy_port_is_one_clear_line(app):
    assert_one_line_error(run_tool("app", "--port", str(app["port"])),
                          f"cannot serve on 127.0.0.1:{app['port']}", "--port")


def test_one_run_at_a_time_and_a_crash_is_reported(tmp_path):
    from vit.app.runs import TrainingRuns
    from vit.errors import VitError

    # the first run's Python waits for a file before it starts, so it is still training when
    # the second is refused, however fast the machine
    gate = tmp_path / "go"
    held = tmp_path / "held-python"
    held.write_text(f'#!/bin/sh\nuntil [ -e {shlex.quote(str(gate))} ]; do sleep 0.1; done\n'
                    f'exec {shlex.quote(sys.executable)} "$@"\n')
    held.chmod(0o755)
    runs = TrainingRuns(tmp_path / "output", python=str(held))
    first = runs.start(ROOT / "configs" / "default.yaml", ["train.epochs=1",
                                                           "optim.warmup_epochs=0"], "first")
    with pytest.raises(VitError, match="a run is already training: first"):
        runs.start(ROOT / "configs" / "default.yaml", ["train.epochs=1"], "second")
    gate.touch()
    runs.processes[first].wait(timeout=300)
    assert runs.status(first)["state"] == "finished"
    broken = runs.start(ROOT / "configs" / "default.yaml", ["data.source=folder",
                                                           f"data.root={tmp_path}/none"], "bad")
    runs.processes[broken].wait(timeout=120)
    status = runs.status(broken)
    assert status["state"] == "failed" and "is not a folder" in status["message"]
    assert runs.active() is None  # the app stays usable
