import pytest

from medops.datasets.healthbench import RubricItem
from medops.errors import UserError
from medops.grading.parse import parse_verdict
from medops.grading.templates import default_template, load_template, render_conversation, render_grader_prompt


@pytest.mark.parametrize(
    ("reply", "met", "explanation"),
    [
        ('{"explanation": "ok", "criteria_met": true}', True, "ok"),
        ('```json\n{"explanation": "no", "criteria_met": false}\n```', False, "no"),
        ('Sure! Here you go:\n```json\n{"explanation": "e", "criteria_met": true}\n```\nThanks', True, "e"),
        ('{"explanation": "s", "criteria_met": "true"}', True, "s"),
        ('{"explanation": "s", "criteria_met": "False"}', False, "s"),
        ('{"criteria_met": true}', True, ""),
        ('{"note": {"x": 1}} then {"explanation": "second", "criteria_met": false}', False, "second"),
        (
            '{"explanation": "draft", "criteria_met": true}\nOn reflection:\n'
            '{"explanation": "final", "criteria_met": false}',
            False,
            "final",
        ),
        ('Example: {"criteria_met": false}\n```json\n{"explanation": "mine", "criteria_met": true}\n```', True, "mine"),
        ('{"explanation": "s", "criteria_met": " TRUE "}', True, "s"),
        ('{"explanation": "uses {braces}", "criteria_met": true}', True, "uses {braces}"),
        ('{"explanation": "설명", "criteria_met": true}', True, "설명"),
    ],
)
def test_parse_verdict_reads_real_world_replies(reply, met, explanation):
    verdict = parse_verdict(reply)
    assert verdict is not None
    assert (verdict.criteria_met, verdict.explanation) == (met, explanation)


@pytest.mark.parametrize(
    "reply",
    [
        None,
        "",
        "The response meets the criterion.",
        '{"explanation": "x"}',
        '{"criteria_met": "maybe"}',
        '{"criteria_met": 1}',
        '{"criteria_met": 0}',
        '{"criteria_met": null}',
        '{"criteria_met": "yes"}',
        '{"criteria_met": "no"}',
        '{"criteria_met": "met"}',
        '{"criteria_met": "not met"}',
        '{"criteria_met": ["true"]}',
        '{"criteria_met": {"value": true}}',
        # the last object with criteria_met decides: an unusable last value is not replaced by an earlier one
        '{"explanation": "a", "criteria_met": true} and then {"explanation": "b", "criteria_met": "maybe"}',
        # only top-level objects count, as in the reference's json.loads(reply)["criteria_met"]
        '{"result": {"criteria_met": true}}',
        '{"explanation": "cut off", "criteria_met": tr',
        "[true]",
    ],
)
def test_parse_verdict_never_guesses(reply):
    assert parse_verdict(reply) is None


def test_rendering_follows_the_reference_rules(tmp_path):
    """Placeholders are replaced in the reference's order; turns become 'role: content' blocks."""
    template_file = tmp_path / "official.txt"
    template_file.write_text("\nJudge this.\n\n# Conversation\n<<conversation>>\n\n# Rubric item\n<<rubric_item>>\n\n")
    template = load_template(template_file)
    conversation = render_conversation(
        [
            {"role": "user", "content": "Is 38.5 C a fever?\nMy child is 2."},
            {"role": "assistant", "content": "Yes. <<rubric_item>> stays literal? no: it is replaced later."},
        ]
    )
    item = RubricItem(criterion="Says it is a fever", points=5, tags=[]).render()
    prompt = render_grader_prompt(template, conversation, item)
    # What the reference's code does, written out independently:
    convo = (
        "user: Is 38.5 C a fever?\nMy child is 2.\n\n"
        "assistant: Yes. <<rubric_item>> stays literal? no: it is replaced later."
    )
    expected = "Judge this.\n\n# Conversation\n<<conversation>>\n\n# Rubric item\n<<rubric_item>>".replace(
        "<<conversation>>", convo
    ).replace("<<rubric_item>>", "[5] Says it is a fever")
    assert prompt == expected
    assert prompt.count("[5] Says it is a fever") == 2  # the reference's quirk, reproduced


def test_template_must_have_both_placeholders(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("only <<conversation>> here")
    with pytest.raises(UserError, match=r"lacks the placeholder.*<<rubric_item>>"):
        load_template(bad)


def test_default_template_puts_the_conversation_first():
    template = default_template()
    assert template.index("<<conversation>>") < template.index("<<rubric_item>>")
    assert "criteria_met" in template
