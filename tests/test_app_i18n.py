"""The app's two languages: every key the app uses has its English and Chinese text with the
same placeholders, the terms follow the one glossary (in the app and in the Chinese docs), and
the app's own errors and live texts come in the language of the request. (The browser test in
test_app.py opens the app in a zh-CN and an en-US browser.)"""

import re
import string

import gradio as gr
import pytest

from conftest import ROOT
from vit.app.i18n import (LANGUAGES, AppError, Key, glossary, keys_used_in, language_of, say,
                          translations)

APP = ROOT / "vit" / "app"
# the keys the app builds from a name: one per data source, split, run state, column of the
# runs' comparison, figure of an evaluation, and named value of a config key it offers
DYNAMIC = {"source": None, "split": ("train", "val", "test"),
           "state": ("starting", "preparing", "running", "finished", "stopped", "failed",
                     "none"), "compare.column": None, "score": None}


def dynamic_keys():
    from vit.app.common import CHOICE_KEYS, FIELDS, key_choices
    from vit.app.score_words import FIGURES
    from vit.data.sources import source_names
    from vit.engine.compare import COLUMNS

    names = {**DYNAMIC, "source": tuple(source_names()), "compare.column": COLUMNS,
             "score": FIGURES, **{FIELDS[key]: key_choices(key) for key in CHOICE_KEYS}}
    return {f"{prefix}.{name}" for prefix, values in names.items() for name in values}


def test_every_key_the_app_uses_has_both_languages():
    from vit.app.common import FIELDS

    words = translations()
    used = set().union(*(keys_used_in(path.read_text(encoding="utf-8"))
                         for path in APP.glob("*.py")))
    assert len(used) > 60, sorted(used)  # the scan finds the app's calls
    used |= set(FIELDS.values())  # the fields' labels (common.label)
    for key in sorted(used | dynamic_keys()):
        for language in LANGUAGES:
            assert key in words[language], (language, key)


def test_both_languages_have_the_same_keys_and_placeholders():
    words = translations()
    assert set(words["en"]) == set(words["zh-CN"])
    for key, english in words["en"].items():
        names = {field for _, field, _, _ in string.Formatter().parse(english) if field}
        chinese = {field for _, field, _, _ in string.Formatter().parse(words["zh-CN"][key])
                   if field}
        assert names == chinese, key
    for key in words["en"]:  # an error's fix, where there is one, belongs to an error
        if key.endswith(".fix"):
            assert key[:-4] in words["en"], key


def _prose(text: str) -> str:
    """Text without code blocks and `code`: commands and file names are not translated."""
    return re.sub(r"`[^`]*`", " ", re.sub(r"```.*?```", " ", text, flags=re.S))


def _says(term: str, text: str) -> bool:
    return re.search(rf"(?<![\w/.-]){re.escape(term)}s?(?![\w/-]|\.\w)", _prose(text),
                     re.I) is not None


def test_the_app_says_each_glossary_term_as_the_glossary_does():
    words = translations()
    for key, english in words["en"].items():
        for term, chinese in glossary().items():
            if _says(term, english):
                assert chinese in words["zh-CN"][key], (key, term, chinese)


@pytest.mark.parametrize("english,chinese", [
    ("getting_started.md", "getting_started.zh.md"), ("architecture.md", "architecture.zh.md"),
    ("finetune.md", "finetune.zh.md")])
def test_the_chinese_docs_say_each_glossary_term_as_the_app_does(english, chinese):
    source = (ROOT / "docs" / english).read_text(encoding="utf-8")
    translated = (ROOT / "docs" / chinese).read_text(encoding="utf-8")
    for term, word in glossary().items():
        if _says(term, source):
            assert word in translated, (chinese, term, word)


def test_the_language_follows_the_browser_and_falls_back_to_english():
    def request(header):
        return gr.Request(headers={"accept-language": header} if header is not None else {})

    assert language_of(request("zh-CN,zh;q=0.9,en;q=0.8")) == "zh-CN"
    assert language_of(request("zh-TW")) == "zh-CN"
    assert language_of(request("en-US,en;q=0.9")) == "en"
    assert language_of(request("fr-FR,fr;q=0.9")) == "en"
    assert language_of(request(None)) == language_of(None) == "en"


def test_the_apps_own_errors_and_live_texts_speak_the_requests_language(tmp_path):
    from vit.app.common import changed_overrides, user_errors
    from vit.app.training_tab import progress_line
    from vit.config import load_default_config

    @user_errors
    def handler(value, request: gr.Request):
        return changed_overrides(load_default_config(), ["train.epochs"], [value])

    chinese = gr.Request(headers={"accept-language": "zh-CN"})
    with pytest.raises(gr.Error) as raised:
        handler("", chinese)
    assert raised.value.message == "“epoch 数”字段为空；请填写，或重新选择配置"
    with pytest.raises(gr.Error) as raised:
        handler("", gr.Request(headers={"accept-language": "en-US"}))
    assert raised.value.message == ("the epochs field is empty; fill it in, or choose "
                                    "the config again")
    error = AppError("error.path_missing", what=Key("training.pretrained"), path="/nowhere")
    assert str(error) == "pretrained weights '/nowhere' does not exist; check the path"
    assert error.in_language("zh-CN") == "预训练权重“/nowhere”不存在；请检查路径"
    status = {"state": "finished", "epoch": 6, "epochs": 6, "step": 114, "steps": 114,
              "images_per_s": 650.0}
    assert progress_line(tmp_path / "run", status, "zh-CN") == \
        "**run**：已完成，epoch 6/6，第 114/114 步，每秒 650 张图片"
    assert progress_line(tmp_path / "run", status) == \
        "**run**: finished, epoch 6/6, step 114/114, 650 images/s"
    assert say("zh-CN", "inference.rank", rank=2) == "第 2 名（概率）"


def test_a_library_error_names_the_parameters_it_marks_as_the_app_labels_their_fields(tmp_path):
    """The library marks its parameters (errors.param); the app words each mark as the label
    of the field that sets it, in the page's language, and leaves a parameter it has no field
    for (train.resume: the Resume button) as it is."""
    from vit.app.common import user_errors
    from vit.engine.run_folder import RunFolder

    run = RunFolder(tmp_path / "taken")
    run.checkpoints.mkdir(parents=True)

    @user_errors
    def handler(request: gr.Request):
        run.refuse_if_taken()  # marks output.run_name and train.resume

    words = {}
    for language in ("en-US", "zh-CN"):
        with pytest.raises(gr.Error) as raised:
            handler(gr.Request(headers={"accept-language": language}))
        words[language] = raised.value.message
    assert words["en-US"] == (f"{run.path} already holds a run; choose another run name, or "
                              f"continue it with train.resume={run.path}")
    assert words["zh-CN"] == (f"{run.path} already holds a run; choose another 运行名, or "
                              f"continue it with train.resume={run.path}")
