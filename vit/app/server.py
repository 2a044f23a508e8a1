"""The web app: four tabs over the library, served on this machine only, with nothing fetched
from the internet (Gradio serves its own scripts and fonts; analytics, share links, the
monitoring endpoint and the browser's run history are off), in English or Chinese by the
browser's language (i18n.py)."""

import logging
import os
import socket
from pathlib import Path

from .. import cpu
from ..errors import VitError, param
from .common import AppFolders
from .i18n import i18n, t

# Gradio asks this variable each time it would send a usage report (Blocks also gets
# analytics_enabled=False); `launch_app` sets GRADIO_TEMP_DIR, which each component reads when it
# is built, so uploads and the copies of served figures stay under output/.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# the text reports are column tables: a proportional font would break their columns; the
# Inference tab's examples are 8x8 digits, drawn as square pixels rather than blurred
APP_CSS = ("#data-report textarea, #run-console textarea, #class-report textarea "
           "{font-family: ui-monospace, 'DejaVu Sans Mono', monospace;}\n"
           "#inference-examples img {image-rendering: pixelated;}")


def build_app(folders: AppFolders):
    """The Gradio Blocks of the four tabs."""
    import gradio as gr

    from .data_tabs import data_tab, preprocessing_tab
    from .inference_tab import Predictors, inference_tab
    from .runs import TrainingRuns
    from .training_tab import training_tab

    runs, predictors = TrainingRuns(folders.output), Predictors()
    with gr.Blocks(title="vit-paddle", analytics_enabled=False) as app:
        gr.Markdown(t("app.intro"))
        with gr.Tabs():
            with gr.Tab(t("tab.data"), id="data"):
                data = data_tab(folders)
            with gr.Tab(t("tab.preprocessing"), id="preprocessing"):
                preprocessing_tab(folders, data["fields"])
            with gr.Tab(t("tab.training"), id="training"):
                training = training_tab(folders, runs, data["fields"])
            with gr.Tab(t("tab.inference"), id="inference"):
                inference = inference_tab(folders, predictors)
        for handler, inputs, outputs in data["load"] + training["load"] + inference["load"]:
            app.load(handler, inputs, outputs)
    return app


def check_port(host: str, port: int):
    """Refuse a port that another program holds, in one line.

    Raises:
        VitError: naming the address and the fix, the parameter `port` (of `launch_app`),
            which the command line words as --port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise VitError(f"cannot serve on {host}:{port} ({error.strerror or error})",
                           "another program uses that port; choose one with "
                           f"{param('port')}") from None


def launch_app(host: str = "127.0.0.1", port: int = 7860, output_dir="output",
               data_dir="data", max_upload: str = "20mb", block: bool = True):
    """Start the app on `host:port`; return the Gradio app (serving in the background when
    `block` is False). The app owns its process: it takes the fast CPU settings (vit/cpu.py)."""
    check_port(host, port)
    cpu.configure()
    folders = AppFolders(Path(output_dir).resolve(), Path(data_dir).resolve())
    cache = folders.scratch / "gradio-cache"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's requests to itself
    app = build_app(folders)
    app.queue(default_concurrency_limit=8)
    app.launch(server_name=host, server_port=port, share=False, inbrowser=False,
               prevent_thread_lock=not block, show_error=True, quiet=True,
               allowed_paths=folders.served(), max_file_size=max_upload,
               enable_monitoring=False, run_history=False, ssr_mode=False, pwa=False,
               mcp_server=False, footer_links=["settings"], css=APP_CSS, i18n=i18n())
    return app
