"""Versioned prompt templates from `hybrid_scorer/prompts/<name>_<version>/{system,user}.txt` (and
`questions.json`), package data read through importlib.resources, so an installed wheel has them too
(the top-level `prompts/` is a symlink to that folder: one copy, edited in either place).

The template text (and so its hash) is part of the cache key and of the model manifest: editing a
prompt changes every key, so nothing stale is ever served. A version with `questions.json` (field name
-> yes/no question) asks them too: its schema is `assessment_model(questions)`."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

from hybrid_scorer.config import DEFAULT_PROMPT
from hybrid_scorer.errors import MissingArtifactError
from hybrid_scorer.llm.sanitize import strip_instructions
from hybrid_scorer.llm.schema import PostAssessment, Topic, assessment_model

PROMPTS_DIR = Path(str(resources.files("hybrid_scorer") / "prompts"))
PROMPT_BODY_CHARS = 1000  # ~250 tokens: keeps the prompt short on 2 cores; the title carries most signal.
TITLE_LINE = re.compile(r"^Title: (.*)$", re.MULTILINE)  # every template shows the title on this line
BODY_LINES = re.compile(r"^Body: (.*)\n</post>", re.MULTILINE | re.DOTALL)  # and the body after it, to the end


def title_span(user_message: str) -> tuple[int, int]:
    """Where the post's title is in a rendered user message: the embedding pools its tokens only."""
    found = TITLE_LINE.search(user_message)
    if found is None:
        raise MissingArtifactError("the prompt's user template has no 'Title: {title}' line")
    return found.span(1)


def body_span(user_message: str) -> tuple[int, int]:
    """Where the post's body is in a rendered user message: the sentence pooling reads its parts."""
    found = BODY_LINES.search(user_message, title_span(user_message)[1])
    if found is None:
        raise MissingArtifactError("the prompt's user template has no 'Body: {body}' line closing the post")
    return found.span(1)


@dataclass(frozen=True)
class PostText:
    """What the LLM sees of a post: cleaned title and body, case kept."""

    post_id: str
    title: str
    body: str

    @cached_property
    def read_title(self) -> str:
        """The title as the LLM reads it: text addressed to it taken out (llm/sanitize.py). Computed once
        per post: every cache key and the prompt are built from it."""
        return strip_instructions(self.title)

    @cached_property
    def read_body(self) -> str:
        """The body as the LLM reads it, sanitized as the title is and cut to PROMPT_BODY_CHARS; computed
        only for a prompt that shows the body."""
        return strip_instructions(self.body)[:PROMPT_BODY_CHARS]

    def embedding_input(self) -> str:
        """What an embedding reads: the title alone, so no text in the body can move it (as the embedded
        model pools its title tokens: llm/backends/embedded.py)."""
        return self.read_title


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    system: str
    user: str
    questions: tuple[tuple[str, str], ...] = ()  # (field name, yes/no question), in answer order

    @property
    def sha256(self) -> str:
        asked = json.dumps(self.questions) if self.questions else ""  # versions without questions keep their hash
        return hashlib.sha256(f"{self.system}\x00{self.user}{asked}".encode()).hexdigest()

    @property
    def id(self) -> str:
        """`version@hash`: what a model records and serving compares (the text's hash, not only its name)."""
        return f"{self.version}@{self.sha256[:12]}"

    @property
    def response_model(self) -> type[PostAssessment]:
        """The schema the reply is constrained by and validated against."""
        return assessment_model(self.questions)

    @cached_property
    def _system(self) -> str:
        """The system message, the same for every post."""
        system = self.system.replace("{topics}", ", ".join(t.value for t in Topic))
        return system.replace("{questions}", "\n".join(f'"{name}": {text}' for name, text in self.questions)).strip()

    def messages(self, post: PostText) -> list[dict[str, str]]:
        """Chat messages for one post, between delimiters it cannot close itself: tags, role markers,
        JSON and sentences addressed to the LLM are taken out first (llm/sanitize.py)."""
        # Instructions live in the system message so they form a prefix shared by every post (KV reuse).
        shown = {"title": post.read_title}
        if "{body}" in self.user:  # a template that shows no body (assessment_v4) sanitizes none
            shown["body"] = post.read_body or "(none)"
        return [
            {"role": "system", "content": self._system},
            {"role": "user", "content": self.user.format(**shown).strip()},
        ]


def load_prompt(name: str = DEFAULT_PROMPT, directory: Path = PROMPTS_DIR) -> PromptTemplate:
    folder = directory / name
    try:
        system, user = (folder / "system.txt").read_text(), (folder / "user.txt").read_text()
    except FileNotFoundError as exc:
        available = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        raise MissingArtifactError(f"prompt {name!r} not found in {directory} (available: {available})") from exc
    asked = folder / "questions.json"
    questions = json.loads(asked.read_text()) if asked.is_file() else {}
    return PromptTemplate(name, system, user, tuple(questions.items()))
