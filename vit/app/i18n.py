"""The app in its user's language: English and Chinese (zh-CN), chosen by the browser.

What a page shows when it is built (labels, headings, buttons, help texts) is a `gr.I18n` key,
which Gradio's front end translates by the browser's language, English otherwise. What a
handler writes later (progress lines, summaries, table headers, the app's own error messages)
is translated here, by the request's `Accept-Language`. The words are in `messages.yaml`; the
terms they use are in `glossary.yaml`. The library's own error messages stay English, but the
parameters they mark are named as this page labels its fields (`common.FIELDS`).
"""

import functools
import re
from pathlib import Path
from typing import Dict, Optional

import yaml

from ..errors import VitError

LANGUAGES = ("en", "zh-CN")  # the first is the fallback
_FOLDER = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def translations() -> Dict[str, Dict[str, str]]:
    """language -> key -> text, from messages.yaml; the data sources' English descriptions
    come from the source registry."""
    from ..data.sources import SOURCES

    entries = yaml.safe_load((_FOLDER / "messages.yaml").read_text(encoding="utf-8"))
    for name, source in SOURCES.items():
        entries.setdefault(f"source.{name}", {}).setdefault("en", source.description)
    return {language: {key: texts[language] for key, texts in entries.items()
                       if language in texts} for language in LANGUAGES}


@functools.lru_cache(maxsize=None)
def glossary() -> Dict[str, str]:
    """English term -> Chinese term, from glossary.yaml."""
    return yaml.safe_load((_FOLDER / "glossary.yaml").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def i18n():
    """The `gr.I18n` of every key (Chinese under `zh-CN` and `zh`, for browsers that send
    only the language)."""
    import gradio as gr

    words = translations()
    return gr.I18n(en=words["en"], **{"zh-CN": words["zh-CN"], "zh": words["zh-CN"]})


def t(key: str):
    """The key of a text shown when the page is built, translated by the browser."""
    if key not in translations()["en"]:
        raise KeyError(f"no text for '{key}' in vit/app/messages.yaml")
    return i18n()(key)


def language_of(request) -> str:
    """The first of `LANGUAGES` the browser asks for (its Accept-Language), else English."""
    header = ""
    if request is not None:
        header = (getattr(request, "headers", None) or {}).get("accept-language", "") or ""
    for part in header.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return LANGUAGES[0]


class Key(str):
    """A value that is itself a message key (a field's name), translated with the message."""


def say(language: str, key: str, /, **values) -> str:
    """The text of `key` in `language` (English where it has none), values filled in."""
    words = translations()
    text = words.get(language, {}).get(key, words["en"][key])
    return text.format(**{name: say(language, value) if isinstance(value, Key) else value
                          for name, value in values.items()})


class AppError(VitError):
    """A mistake the app itself catches: its message and fix (`<key>` and `<key>.fix` in
    messages.yaml), English in the exception, the user's language on the page."""

    def __init__(self, key: str, /, **values):
        self.key, self.values = key, values
        fix = f"{key}.fix" if f"{key}.fix" in translations()["en"] else None
        super().__init__(say("en", key, **values), say("en", fix, **values) if fix else "")

    def in_language(self, language: str) -> str:
        fix = f"{self.key}.fix"
        message = say(language, self.key, **self.values)
        if fix in translations()["en"]:
            message += ("；" if language.startswith("zh") else "; ") + \
                say(language, fix, **self.values)
        return message


def keys_used_in(text: str):
    """The message keys a module's source names: `t("...")`, `say(..., "...")` and
    `AppError("...")`."""
    key = r"""["']([a-z][\w.]*)["']"""
    return set(re.findall(r"\b(?:t|AppError)\(\s*" + key, text)) | \
        set(re.findall(r"\bsay\([^,()]+,\s*" + key, text))


def request_language(args, kwargs) -> Optional[str]:
    """The language of the gr.Request among a handler's arguments, if it has one."""
    import gradio as gr

    for value in (*args, *kwargs.values()):
        if isinstance(value, gr.Request):
            return language_of(value)
    return None
