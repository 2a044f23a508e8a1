"""The engine names its parameters; the command line words them as flags."""

import ast
import re
from pathlib import Path

from conftest import ROOT, assert_one_line_error, run_tool

FLAG = re.compile(r"(?<![\w-])--?[A-Za-z]")


def raised_texts(path: Path):
    """(line, text) of every string written inside a `raise` statement of a module; an
    f-string's values read as `X`. A `pip install` command is the installer's, not ours."""
    def text(node) -> str:
        if isinstance(node, ast.JoinedStr):
            return "".join(text(value) for value in node.values)
        return node.value if isinstance(node, ast.Constant) else "X"

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            parts = list(ast.walk(node.exc))
            inside = {id(value) for part in parts if isinstance(part, ast.JoinedStr)
                      for value in part.values}
            for part in parts:
                if id(part) in inside or not (isinstance(part, ast.JoinedStr) or isinstance(
                        part, ast.Constant) and isinstance(part.value, str)):
                    continue
                if "pip install" not in text(part):
                    yield node.lineno, text(part)


def test_no_error_raised_under_the_engine_names_a_command_line_flag():
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}"
             for path in sorted((ROOT / "vit" / "engine").rglob("*.py"))
             for line, text in raised_texts(path) if FLAG.search(text)]
    assert not found, "\n".join(found)


def test_the_scan_sees_a_flag_in_an_error():
    source = 'raise ConfigError("bad", f"pass --precision {x} or -c CONFIG")\n'
    path = Path(__file__).parent / "__flag_probe.py"
    try:
        path.write_text(source)
        assert [text for _, text in raised_texts(path) if FLAG.search(text)]
    finally:
        path.unlink()


def test_marked_parameters_read_as_names_and_the_command_line_words_them_as_flags():
    from vit.cli import flag_of
    from vit.errors import ConfigError, param

    error = ConfigError(f"{param('precision', 'int8')} needs ONNX",
                        f"export with {param('fmt', 'onnx')} or leave out {param('config')}; "
                        f"lower {param('optim.lr')} or set {param('train.resume', 'run')}")
    assert str(error) == ("precision=int8 needs ONNX; export with fmt=onnx or leave out config; "
                          "lower optim.lr or set train.resume=run")
    assert error.worded({name: flag_of(name) for name in error.parameters}) == (
        "--precision int8 needs ONNX; export with --format onnx or leave out -c CONFIG; "
        "lower optim.lr or set -o train.resume=run")
    assert error.worded({"precision": "Precision"}).startswith("Precision int8 needs ONNX")


def test_a_tool_words_the_engines_error_as_its_flags(quick_run, tmp_path):
    result = run_tool("export", "--weights", quick_run, "--output", tmp_path / "e",
                      "--precision", "int8")
    assert_one_line_error(result, "--precision int8 is quantised by ONNX Runtime or OpenVINO",
                          "export with --format onnx or --format openvino")
    assert not (tmp_path / "e").exists()
