"""Every command the docs show works as written.

Each command line in a fenced code block of README.md, README.zh.md and docs/*.md that runs a
project tool (`python tools/X.py ...`, `vit-X ...`, also after `python -m
paddle.distributed.launch ...`) is checked the cheap way: its flags parse with the tool's own
parser, a `--pretrained` name is in the registry, and its `-c`/`-o` configuration loads and
passes the checks `tools/train.py` makes before it trains. `make X` needs a Makefile target.
A new page, a new command or a changed flag is checked without anyone adding a case; that
covers commands that need a download, a GPU, an hour, or a path the reader supplies.

Beyond that, README.md's own commands on the digits run, in the README's order, in a folder
where `output/demo` is a quick run of the default config (the demo's stand-in): the summary,
the data report, the short training and its comparison, inference, export and the ONNX paths.
"""

import contextlib
import functools
import io
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = sorted([ROOT / "README.md", ROOT / "README.zh.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}
REDIRECTIONS = {">", ">>", "<", ">&", "<&", "&>"}  # what follows is a file, not an argument
PYTHON = re.compile(r"^(?:\S*/)?python(?:3(?:\.\d+)?)?$")
TOOL_SCRIPT = re.compile(r"^tools/(\w+)\.py$")
CLI_MODULE = re.compile(r"^vit\.cli\.(\w+)$")
MENTIONS_A_COMMAND = re.compile(r"tools/\w+\.py|\bvit-[a-z]|\bvit\.cli\.\w|\bmake\b")


@functools.lru_cache(maxsize=None)
def console_scripts() -> dict:
    """`vit-X` -> the `vit.cli` module behind it, read from setup.py's entry points."""
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    return dict(re.findall(r'"(vit-[\w-]+)=vit\.cli\.(\w+):cli"', text))


@functools.lru_cache(maxsize=None)
def make_targets() -> set:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w-]+):", text, flags=re.M))


def shell_lines(text: str):
    """(line, number) of every line of the page's shell code blocks, continuations joined."""
    for match in FENCE.finditer(text):
        language, body = match[1], match[2]
        if language not in ("", "bash", "sh", "shell", "console"):
            continue
        first = text.count("\n", 0, match.start()) + 2
        body = re.sub(r"\\\n", " ", body)
        for offset, line in enumerate(body.splitlines()):
            yield line.strip(), first + offset


def split_commands(line: str):
    """The simple commands of a shell line, each a list of words (comments dropped; a
    reader's placeholder such as `<run>` becomes one word)."""
    line = re.sub(r"<[^<>\s]+>", "PLACEHOLDER", line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.commenters = "#"
    lexer.whitespace_split = True
    command, redirected = [], False
    for word in lexer:
        if word in SHELL_OPERATORS:
            yield command
            command, redirected = [], False
        elif word in REDIRECTIONS or redirected:
            redirected = True  # `2>&1 | tee log`, `> out.txt`: the command's words ended
            if command and command[-1].isdigit() and word in REDIRECTIONS:
                command.pop()  # the descriptor of `2>`
        else:
            command.append(word)
    yield command


def tool_call(words):
    """(cli module name, its arguments) when `words` runs a project tool, else None."""
    scripts = console_scripts()
    if words and words[0] in scripts:
        return scripts[words[0]], words[1:]
    if words and PYTHON.match(words[0]):
        for index, word in enumerate(words[1:], start=1):
            tool = TOOL_SCRIPT.match(word) or (words[index - 1] == "-m" and CLI_MODULE.match(word))
            if tool:
                return tool[1], words[index + 1:]
    return None


def commands_of(text: str):
    """(line number, words) of every command in the text's shell blocks that runs a tool or
    make."""
    for line, number in shell_lines(text):
        if not MENTIONS_A_COMMAND.search(line):  # prose in a plain block: a tree, a table
            continue
        for words in split_commands(line):
            if tool_call(words) or (words and words[0] == "make"):
                yield number, words


def documented_commands():
    """(page, line number, words) of every command on the pages that runs a tool or make."""
    return [(page.relative_to(ROOT).as_posix(), number, words)
            for page in PAGES if page.exists()
            for number, words in commands_of(page.read_text(encoding="utf-8"))]


COMMANDS = documented_commands()


def test_the_docs_show_commands_and_every_tool_has_a_cli_module():
    tools = {tool_call(words)[0] for _, _, words in COMMANDS if tool_call(words)}
    assert {"train", "infer", "export", "summary", "compare", "scaling"} <= tools, tools
    for script in (ROOT / "tools").glob("*.py"):
        assert f"from vit.cli.{script.stem} import cli" in script.read_text(), script


def check_command(words):
    """Raise AssertionError naming what is wrong with a documented command; return None if it
    would start as written."""
    from vit.engine.trainer import checked_config
    from vit.models.pretrained_registry import find_weights

    if words[0] == "make":
        missing = [target for target in words[1:]  # VAR=value sets a make variable
                   if "=" not in target and target not in make_targets()]
        assert not missing, f"the Makefile has no target {missing}"
        return
    module_name, argv = tool_call(words)
    module = __import__(f"vit.cli.{module_name}", fromlist=["build_parser"])
    parser = module.build_parser()
    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint):
            args = parser.parse_args(argv)
    except SystemExit:
        said = complaint.getvalue().strip().splitlines()[-1:]  # argparse's own line
        raise AssertionError(f"{parser.prog} does not accept {shlex.join(argv)}: "
                             f"{' '.join(said)}") from None
    spec = getattr(args, "pretrained", None)
    if spec and not re.search(r"[/\\]|\.\w+$|://", spec):  # a name, not a path or URL
        assert find_weights(spec) is not None, f"--pretrained {spec} is not a registered name"
    if hasattr(args, "override"):
        if module_name == "train":
            config = module.training_config(args)
        else:
            from vit.cli import config_from_args
            config = config_from_args(args)
        checked_config(config)


@pytest.mark.parametrize("page,number,words", COMMANDS,
                         ids=[f"{page}:{number}" for page, number, _ in COMMANDS])
def test_every_documented_command_parses_and_its_config_validates(page, number, words,
                                                                  monkeypatch):
    monkeypatch.chdir(ROOT)  # the commands' relative paths (configs/...) start at the root
    try:
        check_command(words)
    except Exception as error:  # the parser's complaint, or a VitError naming the key
        raise AssertionError(f"{page}:{number}: {shlex.join(words)}\n  {error}") from None


def test_the_check_catches_a_broken_flag_and_a_broken_key():
    """The check above can fail: a renamed flag, an unknown `-o` key, a value outside its
    choices, a missing config file and a missing make target are each caught."""
    broken = {"python tools/infer.py --weigths output/demo --eval": "does not accept",
              "python tools/train.py -o train.epoch=5": "unknown key 'train.epoch'",
              "python tools/train.py -o optim.name=adamx": "optim.name must be one of",
              "python tools/train.py -o train.epochs=5 -o optim.warmup_epochs=5":
                  "must be shorter than train.epochs",
              "python tools/train.py -c configs/X.yaml": "'configs/X.yaml' does not exist",
              "python tools/infer.py --pretrained ViT_base_patch16_38 --images photo.jpg":
                  "not a registered name",
              "python -m paddle.distributed.launch tools/train.py -o model.name=ViT_b":
                  "ViT_b",
              "make demos": "no target ['demos']"}
    for line, problem in broken.items():
        with pytest.raises(Exception, match=re.escape(problem)):
            check_command(next(split_commands(line)))
    page = "Text.\n\n```bash\npython3.11 tools/train.py -o train.epochs=6 2>&1 | tee log\n" \
           "python -m vit.cli.infer --weights output/demo \\\n    --eval --evaluate\n```\n"
    (good, _), (bad, _) = [(words, number) for number, words in commands_of(page)]
    check_command(good)
    with pytest.raises(Exception, match="unrecognized arguments: --evaluate"):
        check_command(bad)


# --- README.md's own commands on the digits, run as written ------------------------------

RUN_TOOLS = {"summary", "train", "compare", "infer", "export"}


def reader_supplied_paths(argv, cwd: Path):
    """The arguments that name a file or folder the reader brings (absent here): `photos`,
    `my_digits/`, `digit.png`."""
    names = [word.split("=", 1)[1] for word in argv if word.startswith("data.root=")]
    names += [word for word in argv if "/" in word or re.search(r"\.(png|jpe?g)$", word)]
    names = [name for name in names if not name.startswith("-") and "=" not in name]
    return [name for name in names if not (cwd / name).exists()]


def why_not_run(words, cwd: Path):
    """Why a README command is not run here, or None to run it."""
    call = tool_call(words)
    if call is None:
        return "not a tool"
    tool, argv = call
    if tool not in RUN_TOOLS:
        return f"{tool}: long, a server, or a download"
    if "-c" in argv or "--pretrained" in argv:
        return "another config or published weights: a download or a GPU"
    if tool == "train" and not any(a.startswith("train.epochs=") for a in argv) \
            and "--stats-only" not in argv:
        return "the full default run: output/demo stands in for it"
    missing = reader_supplied_paths(argv, cwd)
    if missing:
        return f"the reader's own files {missing}"
    return None


def test_the_readmes_commands_on_the_digits_run_as_written(quick_run, tmp_path):
    pytest.importorskip("onnxruntime")
    import subprocess

    (tmp_path / "output").mkdir()
    shutil.copytree(quick_run, tmp_path / "output" / "demo")
    for folder in ("configs", "tests"):  # paths the commands name, relative to the root
        (tmp_path / folder).symlink_to(ROOT / folder)
    ran = []
    for number, words in commands_of((ROOT / "README.md").read_text(encoding="utf-8")):
        if why_not_run(words, tmp_path):
            continue
        tool, argv = tool_call(words)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(ROOT / "tools" / f"{tool}.py"), *argv],
                                cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (f"README.md:{number}: {shlex.join(words)}\n"
                                        f"{result.stderr[-3000:]}")
        ran.append((tool, argv))
        print(f"{time.monotonic() - started:5.1f} s  {shlex.join(words)}")  # shown with -s
    assert {tool for tool, _ in ran} == RUN_TOOLS, ran
    assert any("--onnx" in argv for _, argv in ran) and \
        any("--inference-model" in argv for _, argv in ran), ran
