"""How fast each way of running a ViT is on this machine, next to the matrix-product ceiling and
PyTorch: what `tools/benchmark.py` prints and docs/performance.md reports. The PyTorch reference
is in `benchmark_pytorch.py`, the input pipeline's benchmark in `benchmark_data.py`.

Every figure is the median of `repeats` timed runs after `warmup` untimed ones (`timing.py`),
measured in this process with the same thread count. Achieved GFLOP/s count 2 floating-point
operations per multiply-add of the project's own FLOP count (`count_flops`).
"""

import functools
import tempfile
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import paddle

from ..models import count_flops, create_model, model_args
from ..models.layers import to_2tuple
from ..progress import Progress
from .benchmark_pytorch import pytorch_inference_timings, torch_step, torch_vit
from .export import graph_file
from .paddle_predictor import PRECISIONS, PaddlePredictor, native_bf16
from .runtime import gpu_available
from .timing import Timing, median_seconds


# the packages whose versions a benchmark's numbers depend on
RUNTIME_PACKAGES = ("paddlepaddle", "paddlepaddle-gpu", "paddle2onnx", "onnxruntime", "openvino",
                    "nncf", "torch", "transformers")


def runtime_versions() -> Dict[str, str]:
    """The installed version of each of `RUNTIME_PACKAGES` that is installed."""
    from importlib import metadata

    versions = {}
    for name in RUNTIME_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def matmul_ceiling(size: int = 2048, repeats: int = 5) -> Dict[str, float]:
    """GFLOP/s of a float32 square matrix product: NumPy's BLAS and Paddle's."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    flop = 2 * size ** 3
    tensor = paddle.to_tensor(a)
    return {"numpy": flop / median_seconds(lambda: a @ a, repeats) / 1e9,
            "paddle": flop / median_seconds(lambda: paddle.matmul(tensor, tensor), repeats) / 1e9}


def inference_timings(name: str, batch: int = 8, repeats: int = 5, warmup: int = 2,
                      progress: Progress = None, **model_overrides) -> List[Timing]:
    """Batch-1 latency and batch-`batch` throughput of model `name` on every path this machine
    can run: eager, `paddle.jit.to_static`, Paddle Inference fp32 and bf16, GPU AMP, ONNX
    Runtime fp32 and int8, and PyTorch fp32, bf16 and int8."""
    args = model_args(name, **model_overrides)
    with paddle.utils.unique_name.guard():
        model = create_model(name, **model_overrides)
    model.eval()
    size = model.patch_embed.img_size
    gflop = count_flops(model, (1, 3, *size)).total / 1e9
    inputs = {b: paddle.to_tensor(np.random.default_rng(b).standard_normal(
        (b, 3, *size)).astype(np.float32)) for b in (1, batch)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="vit-bench-") as folder:  # the exported graph
        paths = _paths(model, size, Path(folder))
        for done, (path, build) in enumerate(paths.items()):
            if progress:
                progress(f"timing {path}", done, len(paths))
            runner = build()
            for b in sorted({1, batch}):
                if isinstance(runner, str):  # why this path cannot run here
                    rows.append(Timing(path, b, None, gflop, runner))
                    continue
                with paddle.no_grad():
                    seconds = median_seconds(lambda: runner(inputs[b]), repeats, warmup)
                rows.append(Timing(path, b, seconds, gflop))
    torch_rows = pytorch_inference_timings(args, batch, repeats, warmup, gflop)
    return rows + torch_rows


def _paths(model, size, folder: Path) -> Dict[str, Callable[[], object]]:
    """Path name -> a builder of its callable(batch tensor), or of a string saying why it cannot
    run here. The caller builds each just before timing it, so a path is timed with only the
    ones before it loaded. `paddle.jit.to_static` converts `model.forward`, not the model: given
    a Layer it converts that Layer in place, and "paddle eager" would then run the static graph.
    The graph that Paddle Inference and ONNX Runtime run is saved into `folder` once."""
    spec = [paddle.static.InputSpec([None, 3, *size], "float32", "images")]

    @functools.lru_cache(maxsize=None)
    def graph() -> Path:
        paddle.jit.save(model, str(folder / "model"), input_spec=spec)
        return graph_file(folder)

    def predictor(precision: str):
        return lambda: PaddlePredictor(graph(), folder / "model.pdiparams", precision).logits

    def amp(images):
        with paddle.amp.auto_cast(dtype="float16"):
            return model(images)

    paths = {"paddle eager": lambda: model,
             "paddle.jit.to_static": lambda: paddle.jit.to_static(
                 model.forward, input_spec=spec, full_graph=True),
             "paddle inference fp32": predictor("fp32")}
    if gpu_available():
        paths["paddle inference fp16 (GPU)"] = predictor("fp16")
        paths["paddle eager AMP fp16 (GPU)"] = lambda: amp
    elif native_bf16():
        paths["paddle inference bf16"] = predictor("bf16")
    else:
        paths["paddle inference bf16"] = lambda: "this CPU has no native bfloat16 (AVX512-BF16/AMX)"
    return {**paths, **_converted_paths(graph, folder, size)}


def _converted_paths(graph: Callable[[], Path], folder: Path, size) -> Dict[str, Callable]:
    """ONNX Runtime's and OpenVINO's rows, as `_paths` gives them: the saved graph (`graph()`)
    is converted to ONNX once, and OpenVINO's IR once from that."""
    @functools.lru_cache(maxsize=None)
    def onnx():
        return _onnx_runners(graph(), folder, size)

    @functools.lru_cache(maxsize=None)
    def openvino():
        onnx()  # writes the model.onnx OpenVINO's IR is converted from
        return _openvino_runners(folder, size)

    paths = {"onnxruntime fp32": lambda: onnx()[0], "onnxruntime int8": lambda: onnx()[1]}
    for index, path in enumerate(OPENVINO_PATHS):
        paths[path] = functools.partial(lambda i: openvino()[i], index)
    return paths


# OpenVINO's rows, in the order `_openvino_runners` builds them
OPENVINO_PATHS = ("openvino fp32", "openvino fp32 (OpenVINO's own settings)", "openvino bf16",
                  "openvino int8 (NNCF)")


def _onnx_runners(graph: Path, folder: Path, size):
    """ONNX Runtime on the graph converted by paddle2onnx, in float32 and statically
    quantised to int8 (calibrated on random images: the speed does not depend on them), or
    why they cannot run here."""
    from ..errors import VitError
    from .onnx_export import INT8_FILE, ONNX_FILE, OnnxPredictor, convert_to_onnx, quantize_onnx

    try:
        fp32 = OnnxPredictor(convert_to_onnx(graph, folder / "model.pdiparams",
                                             folder / ONNX_FILE))
        images = np.random.default_rng(0).standard_normal((4, 3, *size)).astype(np.float32)
        quantize_onnx(folder, images, images[:1])
        return fp32.logits, OnnxPredictor(folder / INT8_FILE, precision="int8").logits
    except VitError as error:
        return str(error), str(error)


def _openvino_runners(folder: Path, size):
    """OpenVINO on the IR converted from `folder/model.onnx`: with the project's settings in
    float32, with OpenVINO's own (no settings), with the bf16 hint (where the CPU has native
    bfloat16), and NNCF's int8 (calibrated on random images: the speed does not depend on
    them); or why each cannot run here."""
    from ..errors import VitError
    from .onnx_export import ONNX_FILE
    from .openvino_export import (INT8_FILE, IR_FILE, OpenvinoPredictor, export_openvino,
                                  native_bf16_in_openvino, quantize_openvino,
                                  require_openvino)

    try:
        images = np.random.default_rng(0).standard_normal((4, 3, *size)).astype(np.float32)
        fp32 = OpenvinoPredictor(folder / ONNX_FILE)  # as the eager reference of the check
        export_openvino(folder, folder / ONNX_FILE, fp32.logits, (3, *size))
        quantize_openvino(folder, images, images[:1])
        openvino = require_openvino()
        plain = openvino.Core().compile_model(str(folder / IR_FILE), "CPU")
        bf16 = (OpenvinoPredictor(folder / IR_FILE, precision="bf16").logits
                if native_bf16_in_openvino(openvino.Core())
                else "this CPU has no native bfloat16 (AVX512-BF16/AMX)")
        return (OpenvinoPredictor(folder / IR_FILE).logits,
                lambda batch: plain(np.asarray(batch, dtype=np.float32))[0], bf16,
                OpenvinoPredictor(folder / INT8_FILE, precision="int8").logits)
    except VitError as error:
        return (str(error),) * len(OPENVINO_PATHS)


def training_timings(name: str, batch: int = 64, rounds: int = 5, steps: int = 6,
                     warmup: int = 5, drop_path_rate: float = 0.1, label_smoothing: float = 0.1,
                     **model_overrides) -> List[Timing]:
    """Training images/s of one step (forward, label-smoothed cross-entropy, backward, AdamW)
    on one fixed batch: Paddle with and without stochastic depth and, when installed, PyTorch
    (the same architecture; transformers' ViT has no stochastic depth, so the row without it is
    the like-for-like one). The paths take turns, `steps` steps each per round, so a machine
    that speeds up or slows down during the run favours none of them."""
    overrides = {"num_classes": 10, **model_overrides}
    args = model_args(name, **overrides)
    rng = np.random.default_rng(0)
    size = to_2tuple(args["img_size"])
    images = rng.standard_normal((batch, 3, *size)).astype(np.float32)
    labels = rng.integers(0, overrides["num_classes"], batch)
    steppers, notes = {}, {}
    for rate in sorted({drop_path_rate, 0.0}, reverse=True):
        with paddle.utils.unique_name.guard():
            model = create_model(name, drop_path_rate=rate, **overrides)
        key = f"paddle eager training, drop path {rate}"
        steppers[key], notes[key] = _paddle_step(model, images, labels, label_smoothing), \
            f"drop path {rate}"
    gflop = 3 * count_flops(model, (1, 3, *size)).total / 1e9  # backward ~ 2x forward
    reference = torch_vit(args, overrides["num_classes"])
    if reference is not None:
        key = "pytorch eager training (transformers)"
        steppers[key], notes[key] = torch_step(reference, images, labels, label_smoothing), \
            "no drop path"
    seconds = {key: [] for key in steppers}
    for step in steppers.values():
        for _ in range(warmup):
            step()
    for _ in range(rounds):
        for key, step in steppers.items():
            seconds[key].append(median_seconds(step, repeats=steps, warmup=0))
    return [Timing(key.split(",")[0], batch, float(np.median(values)), gflop, notes[key])
            for key, values in seconds.items()]


def _paddle_step(model, images, labels, label_smoothing):
    """One training step of `model` on the fixed batch, as a function to time (PyTorch's twin:
    `benchmark_pytorch.torch_step`)."""
    model.train()
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-3, parameters=model.parameters(),
                                       weight_decay=0.05)
    images, labels = paddle.to_tensor(images), paddle.to_tensor(labels)

    def step():
        loss = paddle.nn.functional.cross_entropy(model(images), labels,
                                                  label_smoothing=label_smoothing)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return loss.item()
    return step


def precision_of(path: str) -> str:
    """The arithmetic a benchmark row runs in, from its name: a reduced precision it names,
    else fp32."""
    return next((kind for kind in PRECISIONS if kind != "fp32" and kind in path), "fp32")


def format_timings(rows: List[Timing], ceiling: Dict[str, float]) -> str:
    """The rows as an aligned table: each path's time as a ratio to PyTorch's fp32 time and to
    PyTorch's at the same precision (where PyTorch has that row), and its GFLOP/s as a share
    of Paddle's float32 matrix-product ceiling."""
    torch_time = {(r.batch, "training" in r.path, precision_of(r.path)): r.seconds
                  for r in rows if r.path.startswith("pytorch") and r.seconds}
    header = f"{'path':<40}{'batch':>6}{'ms/batch':>11}{'images/s':>10}{'GFLOP/s':>9}" \
             f"{'ceiling':>9}{'vs PyTorch':>12}{'same prec.':>12}  note"
    lines = [header, "-" * len(header)]
    for row in rows:
        kind = ("training" in row.path)
        fp32 = torch_time.get((row.batch, kind, "fp32"))
        same = torch_time.get((row.batch, kind, precision_of(row.path)))
        ratio = f"{row.seconds / fp32:.2f}x" if row.seconds and fp32 else "-"
        peer = f"{row.seconds / same:.2f}x" if row.seconds and same else "-"
        share = f"{row.gflops / ceiling['paddle']:.0%}" if row.seconds else "-"
        lines.append(
            f"{row.path:<40}{row.batch:>6}"
            f"{(f'{row.seconds * 1000:.1f}' if row.seconds else '-'):>11}"
            f"{(f'{row.images_per_s:.1f}' if row.seconds else '-'):>10}"
            f"{(f'{row.gflops:.0f}' if row.seconds else '-'):>9}{share:>9}{ratio:>12}"
            f"{peer:>12}  {row.note}")
    lines.append(f"matrix-product ceiling (float32, 2048^3): NumPy {ceiling['numpy']:.0f} "
                 f"GFLOP/s, Paddle {ceiling['paddle']:.0f} GFLOP/s ('ceiling': the row's GFLOP/s "
                 "as a share of Paddle's); ratios are time / PyTorch's time (below 1: faster), "
                 "against fp32 and against PyTorch at the row's precision")
    return "\n".join(lines + fastest_paths(rows))


def fastest_paths(rows: List[Timing]) -> List[str]:
    """One line per precision and batch: this project's fastest inference path (PyTorch's rows
    are the reference, not a path)."""
    lines = []
    for precision in PRECISIONS:
        for batch in sorted({row.batch for row in rows}):
            timed = [row for row in rows if row.seconds and row.batch == batch
                     and not row.path.startswith("pytorch") and "training" not in row.path
                     and precision_of(row.path) == precision]
            if timed:
                best = min(timed, key=lambda row: row.seconds)
                lines.append(f"fastest {precision} at batch {batch}: {best.path} "
                             f"({best.seconds * 1000:.1f} ms)")
    return lines
