"""The four-tab web app (Gradio) over the same library the command-line tools use: data,
preprocessing, training (each run its own process) and inference. `vit-app` starts it."""
