"""Counterfactual rewriting rules (medops.equity.rewrite): each rule on small inline items, and on
real MedQA and KorMedMCQA items from ../shared/data (skipped when absent)."""

from __future__ import annotations

import difflib
import re

import pytest

from conftest import needs_shared
from medops.datasets.mcqa import load_mcqa
from medops.equity.rewrite import counterfactuals, expand, parse_attributes, rules
from medops.errors import UserError


def texts(outcome, value: str) -> tuple[str, ...]:
    return next(v.texts for v in outcome.variants if v.value == value)


def changed_words(a: str, b: str) -> list[tuple[str, str]]:
    """The (before, after) word runs that differ between two texts."""
    x, y = re.findall(r"\w+|\W", a), re.findall(r"\w+|\W", b)
    matcher = difflib.SequenceMatcher(a=x, b=y, autojunk=False)
    return [("".join(x[i1:i2]), "".join(y[j1:j2])) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"]


def test_sex_terms_pronouns_case_and_her_by_what_follows():
    question = "A 45-year-old woman comes because her knee hurts. Her husband says she fell; tell her to rest."
    outcome = counterfactuals([question, "Advise her to walk"], "sex", insert=False)
    assert outcome.status == "rewritten"
    male = texts(outcome, "male")
    assert male == (
        "A 45-year-old man comes because his knee hurts. His wife says he fell; tell him to rest.",
        "Advise him to walk",
    )
    assert texts(outcome, "female") == (question, "Advise her to walk")  # the original's own value: unchanged


def test_sex_is_never_changed_for_pregnancy_or_sex_specific_organs():
    assert counterfactuals(["A 28-year-old woman at 32 weeks' gestation."], "sex", insert=True).reason == "pregnancy"
    assert counterfactuals(["A 60-year-old man with an enlarged prostate."], "sex", insert=True).reason == (
        "sex_specific_anatomy"
    )
    assert counterfactuals(["A 30-year-old man and his sister; she is well."], "sex", insert=False).reason == (
        "several_values"
    )
    # a pronoun alone may be the physician's: not rewritten
    assert counterfactuals(["The attending says he will not report it."], "sex", insert=False).reason == (
        "no_patient_word"
    )


def test_age_rewrites_adult_ages_with_the_article_and_keeps_children():
    outcome = counterfactuals(["A 45-year-old man; at 45 years old he smokes."], "age", insert=False)
    assert texts(outcome, "80") == ("An 80-year-old man; at 80 years old he smokes.",)
    assert texts(outcome, "25") == ("A 25-year-old man; at 25 years old he smokes.",)
    assert counterfactuals(["A 4-year-old boy has a fever."], "age", insert=True).reason == "out_of_range"
    assert counterfactuals(["A 30-year-old woman and her 3-year-old son."], "age", insert=True).reason == (
        "several_ages"
    )


def test_race_terms_are_case_sensitive_and_white_blood_cells_are_not_a_patient():
    outcome = counterfactuals(["An African American man has a white blood cell count of 9,000."], "race", insert=False)
    assert texts(outcome, "white") == ("A Caucasian man has a white blood cell count of 9,000.",)
    assert texts(outcome, "asian") == ("An Asian man has a white blood cell count of 9,000.",)
    assert counterfactuals(["A Black man with sickle cell disease."], "race", insert=True).reason == (
        "ancestry_specific"
    )


def test_no_mention_gets_a_neutral_sentence_or_is_left_out():
    question, option = "A patient has a cough.", "Amoxicillin"
    inserted = counterfactuals([question, option], "insurance", insert=True)
    assert inserted.status == "inserted"
    assert texts(inserted, "uninsured") == ("The patient has no health insurance. A patient has a cough.", option)
    left_out = counterfactuals([question, option], "insurance", insert=False)
    assert (left_out.status, left_out.reason, left_out.variants) == ("left_out", "no_mention", ())
    # a description the rules cannot rewrite safely keeps the item as it is
    assert counterfactuals(["He is covered by Medicaid."], "insurance", insert=True).reason == "unrecognised_mention"
    spoken = counterfactuals([question], "language", insert=True)
    assert texts(spoken, "spanish")[0].startswith("The patient speaks only Spanish; a professional medical interpreter")
    assert counterfactuals([question], "nationality", insert=True).status == "inserted"


def test_korean_particles_agree_with_the_substituted_noun():
    outcome = counterfactuals(["14세 소년이 왔다. 소년은 소년과 소년을 보았다."], "sex", insert=False)
    assert texts(outcome, "female") == ("14세 소녀가 왔다. 소녀는 소녀와 소녀를 보았다.",)
    back = counterfactuals(["14세 소녀가 왔다. 소녀는 소녀와 소녀를 보았다."], "sex", insert=False)
    assert texts(back, "male") == ("14세 소년이 왔다. 소년은 소년과 소년을 보았다.",)
    # 이 followed by more Hangul is the copula (소년이다), not a particle: left as it is
    assert texts(counterfactuals(["환자는 소년이다."], "sex", insert=False), "female") == ("환자는 소녀이다.",)
    assert texts(counterfactuals(["38세 여자가 왔다."], "age", insert=False), "65") == ("65세 여자가 왔다.",)
    assert counterfactuals(["30세 여자가 임신 36주이다."], "sex", insert=True).reason == "pregnancy"
    inserted = counterfactuals(["기침이 있다."], "sex", insert=True)
    assert texts(inserted, "male") == ("환자는 남성이다. 기침이 있다.",)


def test_rubric_context_that_mentions_the_attribute_keeps_the_item():
    outcome = counterfactuals(["I am a 40-year-old woman with a rash."], "sex", insert=True, context=["Asks if she is"])
    assert outcome.reason == "rubric_mentions"


def test_attributes_are_parsed_and_unknown_ones_refused():
    assert parse_attributes("age,sex") == ("sex", "age")
    assert parse_attributes("all") == ("sex", "age", "race", "insurance", "nationality", "language")
    with pytest.raises(UserError, match="unknown attribute 'gender'"):
        parse_attributes("sex,gender")
    for language in ("en", "ko"):
        assert set(rules(language).attributes) == {"sex", "age", "race", "insurance", "nationality", "language"}


def sex_words(language: str) -> set[str]:
    return {w.lower() for row in rules(language).attributes["sex"].terms for w in row}


@pytest.mark.shared_data
def test_medqa_items_each_rule_only_changes_what_it_names():
    exam = load_mcqa("medqa", needs_shared("mcqa", "medqa", "test.jsonl"))
    items = [(i, (item.question, *item.options.values()), ()) for i, item in enumerate(exam.items[:150])]
    found, counts, values = expand(items, ("sex", "age", "race"), insert=False)
    assert values["sex"] == ("male", "female") and values["age"] == ("25", "45", "65", "80")
    assert counts["sex"]["kept"]["pregnancy"] > 0 and counts["sex"]["n_rewritten"] > 60
    assert counts["race"]["n_rewritten"] > 0
    words = sex_words("en")
    race = {w for row in rules("en").attributes["race"].terms for w in row}
    for variant, rewritten in found:
        original = items[variant.original_index][1]
        for before, after in zip(original, rewritten, strict=True):
            for a, b in changed_words(before, after):
                if {a.lower(), b.lower()} <= {"a", "an"}:
                    continue  # the article agreeing with the new word
                if variant.attribute == "sex":
                    assert a.lower() in words and b.lower() in words, (a, b)
                elif variant.attribute == "age":
                    assert a.isdigit() and b == variant.value, (a, b)
                else:  # a race term for another (African-American -> Asian American: the diff splits it)
                    assert any(a.strip() in t for t in race) and any(b.strip() in t for t in race), (a, b)
    pregnant = next(i for i, item in enumerate(exam.items) if "pregnan" in item.question.lower())
    outcome = counterfactuals([exam.items[pregnant].question], "sex", insert=True)
    assert (outcome.status, outcome.reason) == ("kept", "pregnancy")  # a pregnancy question never becomes male


@pytest.mark.shared_data
def test_kormedmcqa_items_sex_and_age_rules_with_particles():
    exam = load_mcqa("kormedmcqa", needs_shared("korean", "kormedmcqa", "train_sample_300_chat.jsonl"))
    items = [(i, (item.question, *item.options.values()), ()) for i, item in enumerate(exam.items)]
    found, counts, _ = expand(items, ("sex", "age"), insert=False)
    assert counts["sex"]["n_rewritten"] > 50 and counts["sex"]["kept"]["pregnancy"] > 0
    assert counts["age"]["n_rewritten"] > 50 and counts["age"]["kept"]["out_of_range"] > 0
    words = sex_words("ko")
    for variant, rewritten in found:
        original = items[variant.original_index][1]
        for before, after in zip(original, rewritten, strict=True):
            for a, b in changed_words(before, after):
                if variant.attribute == "sex":  # the noun, with its particle when the particle had to change
                    assert any(a.startswith(w) for w in words) and any(b.startswith(w) for w in words), (a, b)
                else:
                    age = re.fullmatch(r"\d+((?:세|살)\w*)", a)
                    assert age and b == variant.value + age.group(1), (a, b)
    male = next(i for i, item in enumerate(exam.items) if re.search(r"\d+세 남자가", item.question))
    female = texts(counterfactuals([exam.items[male].question], "sex", insert=False), "female")[0]
    assert re.search(r"\d+세 여자가", female)
    changes = changed_words(exam.items[male].question, female)
    assert changes and all(b == a.replace("남자", "여자") for a, b in changes)
