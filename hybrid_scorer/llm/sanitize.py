"""What the LLM reads of a post, with text addressed to the LLM taken out (prompt injection).

The author of a post writes the LLM's input. Text that speaks to the rater instead of asking a science
question (instructions to an AI or rater, role markers such as "System:", markup tags, a JSON answer
written into the post) steers the LLM's ratings and, more, the hidden states the embedding is made of:
`python bench/injection.py` measured +0.57 log score for closing the `<post>` block with an instruction.
Such sentences are removed before the LLM sees the post, at training and at serving alike (the content
features still read the whole post). A post without them is passed through unchanged, so its cache keys
do not move. Patterns cover English, Spanish, French and German instructions; no list is complete, which
is why the measured moves, not this list, are the claim (reports/bench/injection.md)."""

from __future__ import annotations

import re

_TAG = re.compile(r"</?\s*[A-Za-z][\w-]*\s*/?>|[‹<]/?post[›>]", re.IGNORECASE)
_JSON = re.compile(r"\{[^{}]*\"[^\"]+\"\s*:[^{}]*\}")
_ROLE = re.compile(r"(?im)^\s*(system|assistant|user|developer)\s*:")
_WHO = r"(ai|a\.i\.|rater|raters|model|assistant|evaluator|grader|llm|chatbot|bot)"
_INSTRUCTION = re.compile(
    "|".join(
        (
            r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|rules|above|previous|prompt|everything)\b",
            rf"\b(note|message|instructions?|reminder|attention)\s+(to|for)\s+(the\s+)?{_WHO}\b",
            rf"\b(dear|hey|attention)\s+{_WHO}\b",
            rf"\byou are (a|an|the)\b.{{0,30}}\b{_WHO}\b",
            r"\b(rate|score|grade|give|answer|mark)\b.{0,60}\b(5|five|highest|maximum)\b.{0,40}"
            r"\b(every|all|each|scales?|ratings?|clarity|novelty|interest|everything)\b",
            r"\bdeserves?\b.{0,20}\b(5|five|highest|maximum)\b",
            r"\blet'?s play a game\b|\brole-?play\b",
            r"\bfront[- ]page material\b",
            r"\b(ignora|ignorez|ignoriere|olvida|oubliez|vergiss)\b",
            r"\b(instrucción|instruction|anweisung)\s+(para|pour|für)\b",
            r"\b(puntúa|califica|notez|bewerte)\b",
        )
    ),
    re.IGNORECASE,
)
_PARENTHETICAL = re.compile(r"\([^()]*\)")
_SENTENCE = re.compile(r"[^.!?\n]*[.!?]+|[^.!?\n]+|\n")  # every character in some match


def strip_instructions(text: str) -> str:
    """`text` without sentences (or parentheticals) that instruct the LLM, role markers, tags and JSON
    objects; `text` itself when it has none."""
    if not text:
        return text
    cleaned = _ROLE.sub(" ", _JSON.sub(" ", _TAG.sub(" ", text)))
    cleaned = _PARENTHETICAL.sub(lambda m: " " if _INSTRUCTION.search(m.group()) else m.group(), cleaned)
    kept = "".join(s for s in _SENTENCE.findall(cleaned) if not _INSTRUCTION.search(s))
    if kept == text:
        return text
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]{2,}", " ", kept)).strip()
