"""Small modules with one job: no library file over 300 lines unless it is a table of data
that says so, and no function over 40 lines unless its docstring says why ("Long because")."""

import ast

from conftest import ROOT

MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 40  # the docstring counts


def library_files():
    return sorted((ROOT / "vit").rglob("*.py"))


def test_no_library_file_is_over_300_lines_unless_it_is_a_table_of_data():
    long = []
    for path in library_files():
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_FILE_LINES and "a table of data" not in doc:
            long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not long, "\n".join(long)


def test_no_function_is_over_40_lines_without_a_reason():
    long = []
    for path in library_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and "Long because" not in (
                        ast.get_docstring(node) or ""):
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines}")
    assert not long, "\n".join(long)
