"""Install vit-paddle: `pip install -e '.[cpu]'` on CPU; on GPU install paddlepaddle-gpu first
(https://www.paddlepaddle.org.cn/install/quick) and then `pip install -e .`."""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
ONNX = ["paddle2onnx==2.1.0", "onnxruntime>=1.20"]  # the ONNX converter and runtime


class BuildWithConfigs(build_py):
    """Ship `configs/*.yaml` inside the package as `vit/configs/`, so an installed wheel finds
    its default config from any folder; the repository keeps the one readable copy."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "vit" / "configs"
        self.mkpath(str(target))
        for path in sorted((ROOT / "configs").glob("*.yaml")):
            self.copy_file(str(path), str(target / path.name))

version = {}
for line in (ROOT / "vit" / "__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)

setup(
    name="vit-paddle",
    version=version["__version__"],
    description="The Vision Transformer (Dosovitskiy et al., ICLR 2021) in PaddlePaddle: "
                "data, training, inference and attention maps",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["vit", "vit.*"]),
    # the ImageNet-1k class names, taken from the list Gradio ships (gradio/media_assets)
    # cpu_kernels.cc: compiled on the user's machine (vit/kernels/build.py)
    package_data={"vit.models": ["imagenet1k_classes.txt"], "vit.kernels": ["cpu_kernels.cc"],
                  "vit.app": ["messages.yaml", "glossary.yaml"]},
    cmdclass={"build_py": BuildWithConfigs},
    # Paddle itself is not here: CPU users take the `cpu` extra, GPU users install
    # paddlepaddle-gpu for their CUDA version first, as Paddle's install guide says.
    install_requires=[
        "numpy>=1.24",
        "Pillow>=9.0",
        "PyYAML>=6.0",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "scikit-learn>=1.2",
        "visualdl>=2.5",
        "safetensors>=0.4",
        "gradio>=6.17",
        "huggingface_hub>=0.20",  # published weights on the Hugging Face hub
    ],
    extras_require={
        "cpu": ["paddlepaddle==3.3.1"],
        # the ONNX path: tools/export.py --format onnx, tools/infer.py --onnx
        "onnx": ONNX,
        # the OpenVINO path: tools/export.py --format openvino, tools/infer.py --openvino; its
        # IR is converted from the ONNX file (OpenVINO does not read Paddle 3's model.json),
        # and NNCF quantises it to int8
        "openvino": [*ONNX, "openvino>=2026.4", "nncf>=3.4"],
        # test-only references: torch (CPU wheel) and transformers check the converters
        # ... and Playwright drives Debian's chromium for the web app's browser test
        "dev": ["pytest>=7.0", "torch==2.13.0", "transformers>=4.40", "playwright>=1.50"],
    },
    entry_points={
        "console_scripts": [
            "vit-train=vit.cli.train:cli",
            "vit-infer=vit.cli.infer:cli",
            "vit-summary=vit.cli.summary:cli",
            "vit-export=vit.cli.export:cli",
            "vit-convert=vit.cli.convert:cli",
            "vit-compare=vit.cli.compare:cli",
            "vit-benchmark=vit.cli.benchmark:cli",
            "vit-visualize=vit.cli.visualize:cli",
            "vit-scaling=vit.cli.scaling:cli",
            "vit-probe=vit.cli.probe:cli",
            "vit-embed=vit.cli.embed:cli",
            "vit-app=vit.cli.app:cli",
        ],
    },
)
