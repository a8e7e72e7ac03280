"""MkDocs hook: build the site from the pages that exist, while others are still being written.

The nav in mkdocs.yml names every planned page. A page that is not in docs/ yet is dropped from
the nav, and links to it render as plain text, so ``mkdocs build --strict`` passes in the
meantime; a link to a page that is neither written nor planned still fails the strict build.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

log = logging.getLogger("mkdocs.hooks.pardo")

_LINK = re.compile(r"\[([^\]]+)\]\(([\w./-]+\.md)(#[\w-]*)?\)")
_KEY = "_pages_not_written"


def _prune(items: list[Any], docs_dir: str, missing: list[str]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        title, target = next(iter(item.items())) if isinstance(item, dict) else (None, item)
        if isinstance(target, list):
            children = _prune(target, docs_dir, missing)
            if children:
                kept.append({title: children})
        elif "://" in target or os.path.exists(os.path.join(docs_dir, target)):
            kept.append(item)
        else:
            missing.append(target)
    return kept


def on_config(config: Any) -> Any:
    """Drop nav entries whose page does not exist yet."""
    missing: list[str] = []
    if config["nav"]:
        config["nav"] = _prune(config["nav"], config["docs_dir"], missing)
    if missing:
        log.info("pages not written yet, left out of the nav: %s", ", ".join(missing))
    config["extra"][_KEY] = frozenset(missing)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Render links to planned-but-unwritten pages as their plain text."""
    missing = config["extra"].get(_KEY, frozenset())
    if not missing:
        return markdown

    def unlink(match: re.Match[str]) -> str:
        target = os.path.normpath(os.path.join(os.path.dirname(page.file.src_uri), match[2]))
        return match[1] if target in missing else match[0]

    return _LINK.sub(unlink, markdown)
