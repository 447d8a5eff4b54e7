"""The Presidio analyzer medops runs: built once, offline, with medops's recognizers.

Presidio's ``AnalyzerEngine`` is the engine of record. It gets an NLP engine that does no NLP
(nothing to download: no spaCy model is loaded), a context enhancer that does nothing (every
medops rule carries its own context), and the recognizers of ``recognizers.py``. An optional
NER model (``ner: spacy:<installed package>`` or ``ner: hf:<token-classification dir>`` in the
``MEDOPS_PHI_CONFIG`` file) adds a recognizer for names; it is loaded from disk only.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medops.errors import UserError
from medops.privacy.recognizers import (
    DEFAULT_MRN_PATTERNS,
    Recognizer,
    build_recognizers,
    eponym_used,
    model_person_ok,
    refine_people,
    scanner,
)

INSTALL_HINT = "pip install 'presidio-analyzer>=2.2.355' 'presidio-anonymizer>=2.2.355'"
CONFIG_ENV = "MEDOPS_PHI_CONFIG"
NER_ENV = "MEDOPS_PHI_NER"
SCORE_THRESHOLD = 0.4
# A model's finding loses to every rule's where they overlap (a record number stays MRN), but is kept.
NER_SCORE = 0.5
LANGUAGE = "en"  # a label only: the rules are language-agnostic (Korean and English alike)


class PhiUnavailable(UserError):
    """PHI detection cannot run (a component is missing): one line naming what to install."""


@dataclass(frozen=True)
class Entity:
    """One detected PHI span of ``text[start:end]``; the value itself is never stored."""

    type: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class PhiConfig:
    mrn_patterns: tuple[str, ...] = DEFAULT_MRN_PATTERNS
    ner: str | None = None
    source: str | None = None


def missing_components() -> str | None:
    """None when detection works; else one line naming what to pip install. Asks whether the
    packages are installed without importing them (an import costs a second on a cold path,
    and medops's rules run without Presidio's engine unless an NER model is configured)."""
    global _installed
    if _installed:  # found once: asked again for every exchange the recorder redacts
        return None
    import importlib.util

    missing = []
    for module, package in (("presidio_analyzer", "presidio-analyzer"), ("presidio_anonymizer", "presidio-anonymizer")):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    if missing:
        return f"PHI detection needs {' and '.join(missing)}, which are not installed: {INSTALL_HINT}"
    _installed = True
    return None


_installed = False


def _import_presidio(allow_torch: bool = False) -> None:
    """Import Presidio without the torch / transformers stack it imports eagerly (~6 s of start-up).

    Presidio's optional transformers NLP engine imports ``transformers`` (and so ``torch``) when
    they are installed, as they are with medops's local-model extra. medops never uses that
    engine, so unless they are already loaded (or an ``hf:`` NER model is configured) the import
    runs with both marked unavailable; the marks are removed straight after.
    """
    import sys

    if "presidio_analyzer.analyzer_engine" in sys.modules:
        return
    blocked = [] if allow_torch else [m for m in ("torch", "transformers") if m not in sys.modules]
    for module in blocked:
        sys.modules[module] = None  # type: ignore[assignment]
    try:
        import presidio_analyzer  # noqa: F401
        import presidio_anonymizer  # noqa: F401
    finally:
        for module in blocked:
            if sys.modules.get(module, 0) is None:
                del sys.modules[module]


def load_config(path: str | os.PathLike[str] | None = None) -> PhiConfig:
    """The site configuration named by ``MEDOPS_PHI_CONFIG`` (YAML), or the defaults."""
    path = path if path is not None else os.environ.get(CONFIG_ENV) or None
    ner = os.environ.get(NER_ENV) or None
    if path is None:
        return PhiConfig(ner=ner)
    import yaml

    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{where}: cannot read the PHI config ({CONFIG_ENV}): {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise UserError(f"{where}: not valid YAML: {first}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{where}: the PHI config must be a mapping with mrn_patterns: [...]")
    unknown = sorted(set(raw) - {"mrn_patterns", "ner"})
    if unknown:
        raise UserError(f"{where}: {unknown[0]}: unknown field (known: mrn_patterns, ner)")
    patterns = raw.get("mrn_patterns", [])
    if patterns is None:
        patterns = []
    if not isinstance(patterns, list):
        raise UserError(f"{where}: mrn_patterns: must be a list of regular expressions")
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern:
            raise UserError(f"{where}: mrn_patterns[{i}]: must be a non-empty string (a regular expression)")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UserError(f"{where}: mrn_patterns[{i}]: invalid regular expression: {exc}") from None
    ner_value = raw.get("ner", ner)
    if ner_value is not None and not (isinstance(ner_value, str) and ner_value.startswith(("spacy:", "hf:"))):
        raise UserError(f"{where}: ner: must be 'spacy:<installed model>' or 'hf:<directory>'")
    return PhiConfig(tuple(DEFAULT_MRN_PATTERNS) + tuple(patterns), ner_value, where)


def _config_key() -> tuple[Any, ...]:
    path = os.environ.get(CONFIG_ENV) or None
    mtime = None
    if path:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = -1
    return (path, mtime, os.environ.get(NER_ENV) or None)


class _Analyzer:
    """The cached analyzer for one configuration: medops's rules called directly (no per-call
    registry, context or result objects), or, with an NER model, Presidio's ``AnalyzerEngine``
    over the same rules and the model."""

    def __init__(self, config: PhiConfig):
        problem = missing_components()
        if problem:
            raise PhiUnavailable(problem)
        self.engine: Any = None
        self.rules = build_recognizers(config.mrn_patterns)
        self.scan = scanner(self.rules)
        if not config.ner:
            return
        _import_presidio(allow_torch=bool(config.ner and config.ner.startswith("hf:")))
        from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
        from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
        from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

        class NoNlpEngine(NlpEngine):
            """No tokenizer, no model: medops's recognizers need no NLP artifacts."""

            def __init__(self) -> None:
                from spacy.tokens import Doc
                from spacy.vocab import Vocab

                self._vocab = Vocab()
                self._doc = Doc
                self.nlp = {LANGUAGE: None}

            def load(self) -> None:
                pass

            def is_loaded(self) -> bool:
                return True

            def _empty(self, language: str) -> Any:
                doc = self._doc(self._vocab, words=[])
                return NlpArtifacts(
                    entities=[], tokens=doc, tokens_indices=[], lemmas=[], nlp_engine=self, language=language
                )

            def process_text(self, text: str, language: str) -> Any:
                return self._empty(language)

            def process_batch(self, texts: Iterable[str], language: str, batch_size: int = 1, n_process: int = 1, **kw):
                for text in texts:
                    yield text, self._empty(language)

            def is_stopword(self, word: str, language: str) -> bool:
                return False

            def is_punct(self, word: str, language: str) -> bool:
                return False

            def get_supported_entities(self) -> list[str]:
                return []

            def get_supported_languages(self) -> list[str]:
                return [LANGUAGE]

        class NoContext(ContextAwareEnhancer):
            """Context is part of each medops rule; nothing to add after the fact."""

            def __init__(self) -> None:
                super().__init__(
                    context_similarity_factor=0,
                    min_score_with_context_similarity=0,
                    context_prefix_count=0,
                    context_suffix_count=0,
                )

            def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
                return raw_results

        class MedopsRecognizer(EntityRecognizer):
            """A medops rule group as a Presidio recognizer."""

            def __init__(self, inner: Recognizer):
                self.inner = inner
                super().__init__(supported_entities=list(inner.entities), name=inner.name, supported_language=LANGUAGE)

            def load(self) -> None:
                pass

            def analyze(self, text, entities, nlp_artifacts=None):
                wanted = set(entities) if entities else None
                return [
                    RecognizerResult(entity_type=kind, start=start, end=end, score=score)
                    for kind, start, end, score in self.inner.find(text)
                    if wanted is None or kind in wanted
                ]

        recognizers: list[Any] = [MedopsRecognizer(r) for r in self.rules]
        if config.ner:
            recognizers.append(_ner_recognizer(config.ner, EntityRecognizer, RecognizerResult))
        registry = RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE])
        self.engine = AnalyzerEngine(
            registry=registry,
            nlp_engine=NoNlpEngine(),
            supported_languages=[LANGUAGE],
            context_aware_enhancer=NoContext(),
            default_score_threshold=SCORE_THRESHOLD,
        )
        self.entities = self.engine.get_supported_entities(LANGUAGE)
        self._artifacts = NoNlpEngine()._empty(LANGUAGE)

    def analyze(self, text: str) -> list[tuple[str, int, int, float]]:
        if self.engine is None:  # what Presidio's engine returns for these rules: over the threshold, each once
            return list(dict.fromkeys(c for c in self.scan(text) if c[3] >= SCORE_THRESHOLD))
        results = self.engine.analyze(
            text=text, language=LANGUAGE, entities=self.entities, nlp_artifacts=self._artifacts
        )
        return [(r.entity_type, r.start, r.end, r.score) for r in results]


def _ner_recognizer(spec: str, EntityRecognizer: Any, RecognizerResult: Any) -> Any:
    """A PERSON / ADDRESS recognizer from a local NER model; never downloads."""
    kind, _, name = spec.partition(":")
    labels = {
        "PER": "PERSON",
        "PERSON": "PERSON",
        "PATIENT": "PERSON",
        "DOCTOR": "PERSON",
        "NAME": "PERSON",
        "LOC": "ADDRESS",
    }
    if kind == "spacy":
        try:
            import spacy

            if not (spacy.util.is_package(name) or Path(name).is_dir()):
                raise OSError(f"spaCy model {name!r} is not installed (install it yourself; medops downloads nothing)")
            nlp = spacy.load(name)
        except Exception as exc:
            raise UserError(f"ner: {spec}: cannot load: {exc}") from None
        # Run only the entity recognizer (and the shared embedding layer when it listens to one):
        # the tagger, parser and lemmatizer cost most of a small pipeline's time and add nothing here.
        needed = {"ner"}
        for upstream in ("tok2vec", "transformer"):
            if upstream in nlp.pipe_names and "ner" in getattr(nlp.get_pipe(upstream), "listening_components", []):
                needed.add(upstream)
        if "ner" in nlp.pipe_names:
            nlp.select_pipes(enable=[p for p in nlp.pipe_names if p in needed])

        reads_hangul = nlp.lang in ("ko", "xx")  # else a Hangul "entity" is a guess in a script it never learnt

        def run(text: str) -> list[tuple[str, int, int, float]]:
            return [
                (labels[e.label_], e.start_char, e.end_char, NER_SCORE)
                for e in nlp(text).ents
                if e.label_ in labels and (reads_hangul or not _HANGUL.search(e.text))
            ]
    else:
        try:
            from transformers import pipeline

            if not Path(name).is_dir():
                raise OSError(f"{name} is not a directory")
            pipe = pipeline("token-classification", model=name, aggregation_strategy="simple", local_files_only=True)
        except Exception as exc:
            raise UserError(f"ner: {spec}: cannot load: {exc}") from None

        def run(text: str) -> list[tuple[str, int, int, float]]:
            out = []
            for e in pipe(text):
                label = str(e.get("entity_group", "")).split("-")[-1].upper()
                if label in labels and float(e["score"]) >= 0.5:
                    out.append((labels[label], int(e["start"]), int(e["end"]), NER_SCORE))
            return out

    class NerRecognizer(EntityRecognizer):
        def __init__(self) -> None:
            super().__init__(
                supported_entities=["PERSON", "ADDRESS"], name="MedopsNerRecognizer", supported_language=LANGUAGE
            )

        def load(self) -> None:
            pass

        def analyze(self, text, entities, nlp_artifacts=None):
            return [
                RecognizerResult(entity_type=k, start=s, end=e, score=sc)
                for k, s, e, sc in run(text)
                if k != "PERSON" or model_person_ok(text, s, e)
            ]

    return NerRecognizer()


_lock = threading.Lock()
_cache: dict[tuple[Any, ...], _Analyzer] = {}


def analyzer() -> _Analyzer:
    """The analyzer for the current configuration, built once (module-level cache)."""
    key = _config_key()
    found = _cache.get(key)
    if found is not None:
        return found
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = _Analyzer(load_config())
            _cache.clear()
            _cache[key] = found
    return found


# A cheap gate: text with none of these characters or words cannot hold anything medops detects.
_GATE = re.compile(
    r"\d|@|www\.|https?:|[A-Z][a-z]|[가-힣]{2}|\b(?:I am|I'm|my name|this is|hi|hello|dear|regards|name)\b"
)


def _merge(candidates: list[tuple[str, int, int, float]]) -> list[Entity]:
    """Overlapping spans of different types become one span (their union), typed by the highest score."""
    merged: list[list[Any]] = []
    for kind, start, end, score in sorted(candidates, key=lambda c: (c[1], -c[2])):
        if merged and start < merged[-1][2]:
            last = merged[-1]
            if score > last[3] or (score == last[3] and end - start > last[2] - last[1]):
                last[0], last[3] = kind, score
            last[2] = max(last[2], end)
        else:
            merged.append([kind, start, end, score])
    return [Entity(k, s, e, round(sc, 2)) for k, s, e, sc in merged]


_WORD_CHARS = re.compile(r"\w")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


def propagate(
    text: str, found: list[tuple[str, int, int, float]], extra: Iterable[str] = ()
) -> list[tuple[str, int, int, float]]:
    """Other mentions of names already found (and of ``extra`` known names) in the same text."""
    names = {text[s:e] for k, s, e, _ in found if k == "PERSON"} | set(extra)
    values: set[str] = set()
    for name in names:
        if len(name) < 2:
            continue
        values.add(name)
        if " " in name:  # English "John Smith": later "Smith", "John"
            values.update(t for t in name.split() if len(t) >= 3 and t[0].isupper() and not t.endswith("."))
    if not values:
        return found
    out = list(found)
    for value in sorted(values, key=len, reverse=True):
        ascii_word = value.isascii()
        for m in re.finditer(re.escape(value), text):
            s, e = m.span()
            if ascii_word and (
                (s > 0 and _WORD_CHARS.match(text[s - 1]))
                or (e < len(text) and _WORD_CHARS.match(text[e]))
                or eponym_used(text, e)  # Mr. Bell's "Bell's palsy" is the disease
            ):
                continue
            if not ascii_word and s > 0 and "가" <= text[s - 1] <= "힣":
                continue
            out.append(("PERSON", s, e, 0.6))
    return out


def normalise(text: str) -> tuple[str, list[int] | None]:
    """``text`` in NFKC (full-width digits and hyphens, ideographic spaces, ...) and, where that changed
    anything, the index in ``text`` of each character of the result (None: nothing changed)."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text, None
    parts: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = ch if ch.isascii() else unicodedata.normalize("NFKC", ch)
        parts.append(folded)
        origin.extend([i] * len(folded))
    return "".join(parts), origin


class DetectionMemo:
    """A bounded memo of ``detect`` results for one process, keyed by the exact text, the known names
    and the analyzer: ``detect`` is a function of those alone, so a hit returns what it would have
    computed. The recorder keeps one: chat clients resend the whole conversation every turn, and
    system prompts repeat, so most message texts it redacts it has seen before. Least recently used
    texts go first once ``max_chars`` characters of text are kept."""

    def __init__(self, max_chars: int = 4_000_000):
        self.max_chars = max_chars
        self.chars = 0
        self.hits = 0
        self.misses = 0
        self._kept: OrderedDict[tuple[Any, ...], tuple[Entity, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def detect(self, text: str, known_names: Iterable[str] = ()) -> list[Entity]:
        names = frozenset(known_names)
        key = (analyzer(), text, names)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                self.hits += 1
                return list(found)
        result = detect(text, names)
        if len(text) > self.max_chars:
            return result
        with self._lock:
            self.misses += 1
            if key not in self._kept:
                self._kept[key] = tuple(result)
                self.chars += len(text)
                while self.chars > self.max_chars:
                    (_, dropped, _), _ = self._kept.popitem(last=False)
                    self.chars -= len(dropped)
        return result


def detect(text: str, known_names: Iterable[str] = ()) -> list[Entity]:
    """PHI spans in ``text``, sorted by position, non-overlapping.

    The rules run on the NFKC form of the text (so a phone number in full-width digits is found);
    the offsets returned are into ``text`` itself.
    """
    if not isinstance(text, str):
        raise TypeError(f"detect() takes a str, not {type(text).__name__}")
    engine = analyzer()
    if not text:
        return []
    normal, origin = normalise(text)
    if not _GATE.search(normal):
        return []
    names = [unicodedata.normalize("NFKC", name) for name in known_names]
    found = _merge(refine_people(normal, propagate(normal, engine.analyze(normal), names)))
    if origin is None:
        return found
    return [Entity(e.type, origin[e.start], origin[e.end - 1] + 1, e.score) for e in found]
