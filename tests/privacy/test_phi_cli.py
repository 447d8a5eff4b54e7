"""`medops phi scan` and `medops phi redact` on JSONL, CSV and text, run as a subprocess."""

from __future__ import annotations

import csv
import json

from conftest import write_jsonl

ROWS = [
    {
        "id": "c1",
        "text": "환자 김민수 님 연락처 010-1234-5678, 김민수 님 재방문.",
        "meta": {"doctor": "Dr. Emily Chen"},
        "n": 3,
    },
    {"id": "c2", "text": "Metformin 500 mg bid, HbA1c 7.2%, Parkinson's disease.", "tags": ["no phi"]},
    {"id": "c3", "messages": [{"role": "user", "content": "My name is Daniel Lee, MRN: 88120034"}]},
]
VALUES = ["김민수", "010-1234-5678", "Emily Chen", "Daniel Lee", "88120034"]


def test_scan_jsonl_counts_by_type_and_line_without_values(cli, tmp_path):
    path = write_jsonl(tmp_path / "chats.jsonl", ROWS)
    result = cli.run("phi", "scan", str(path), "--json")
    assert result.returncode == 0, result.stderr
    report = result.json()
    assert report["counts"] == {"MRN": 1, "PERSON": 4, "PHONE_NUMBER": 1}
    assert report["lines"] == 3 and report["lines_with_phi"] == 2
    assert {(f["line"], f["field"], f["type"]) for f in report["findings"]} >= {
        (1, "text", "PERSON"),
        (1, "meta.doctor", "PERSON"),
        (3, "messages[0].content", "MRN"),
    }
    plain = cli.run("phi", "scan", str(path))
    assert plain.returncode == 0 and "PHONE_NUMBER" in plain.stdout
    for output in (result.stdout + result.stderr, plain.stdout + plain.stderr):
        assert not any(value in output for value in VALUES)


def test_scan_show_prints_values(cli, tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("line one\nPatient John Smith, phone (617) 555-0134\n", encoding="utf-8")
    report = cli.run("phi", "scan", str(path), "--json", "--show").json()
    assert [(f["line"], f["type"], f["value"]) for f in report["findings"]] == [
        (2, "PERSON", "John Smith"),
        (2, "PHONE_NUMBER", "(617) 555-0134"),
    ]
    shown = cli.run("phi", "scan", str(path), "--show")
    assert "John Smith" in shown.stdout


def test_redact_jsonl_every_string_and_entities_in_original_offsets(cli, tmp_path):
    src = write_jsonl(tmp_path / "chats.jsonl", ROWS)
    out = tmp_path / "out" / "chats.jsonl"
    result = cli.run("phi", "redact", str(src), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert not any(value in result.stdout + result.stderr for value in VALUES)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [list(r) for r in rows] == [
        ["id", "text", "meta", "n", "entities"],
        ["id", "text", "tags", "entities"],
        ["id", "messages"],
    ]
    first = rows[0]
    assert first["text"] == "환자 [PERSON_1] 님 연락처 [PHONE_NUMBER_1], [PERSON_1] 님 재방문."
    assert first["meta"] == {"doctor": "Dr. [PERSON_2]"} and first["n"] == 3
    original = ROWS[0]["text"]
    assert [(e["type"], original[e["start"] : e["end"]]) for e in first["entities"]] == [
        ("PERSON", "김민수"),
        ("PHONE_NUMBER", "010-1234-5678"),
        ("PERSON", "김민수"),
    ]
    assert rows[1]["text"] == ROWS[1]["text"] and rows[1]["entities"] == []
    assert rows[2]["messages"][0]["content"] == "My name is [PERSON_1], MRN: [MRN_1]"
    assert not any(value in out.read_text(encoding="utf-8") for value in VALUES)


def test_redact_csv_and_text(cli, tmp_path):
    src = tmp_path / "notes.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["patient", "note"])
        writer.writerow(["환자 성명: 이영희", "이영희 님 1938년생, 주민등록번호 380101-2345678"])
        writer.writerow(["none", "BP 120/80, aspirin 100 mg"])
    out = tmp_path / "notes.red.csv"
    assert cli.run("phi", "redact", str(src), "-o", str(out)).returncode == 0
    rows = list(csv.reader(out.open(encoding="utf-8", newline="")))
    assert rows[0] == ["patient", "note"]
    assert rows[1] == ["환자 성명: [PERSON_1]", "[PERSON_1] 님 [DATE_OF_BIRTH_1], 주민등록번호 [KR_RRN_1]"]
    assert rows[2] == ["none", "BP 120/80, aspirin 100 mg"]

    text = tmp_path / "letter.txt"
    text.write_text(
        "Dear Dr. Rachel Adams,\nMs. Hannah Cole, DOB 11/02/1946.\nRegards,\nRachel Adams\n", encoding="utf-8"
    )
    red = tmp_path / "letter.red.txt"
    result = cli.run("phi", "redact", str(text), "-o", str(red), "--json")
    assert result.json()["counts"] == {"DATE_OF_BIRTH": 1, "PERSON": 3}
    assert red.read_text(encoding="utf-8") == (
        "Dear Dr. [PERSON_1],\nMs. [PERSON_2], DOB [DATE_OF_BIRTH_1].\nRegards,\n[PERSON_1]\n"
    )


def test_bad_input_is_one_line_exit_2(cli, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": 010-1234-5678}\n', encoding="utf-8")
    for args in (("scan", str(bad)), ("redact", str(bad), "-o", str(tmp_path / "x.jsonl"))):
        result = cli.run("phi", *args)
        assert result.returncode == 2
        assert f"{bad}:2" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "1234-5678" not in result.stderr and "Traceback" not in result.stderr
    missing = cli.run("phi", "scan", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "nope.csv" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    config = tmp_path / "phi.yaml"
    config.write_text("mrn_patterns: ['(']\n", encoding="utf-8")
    ok = write_jsonl(tmp_path / "ok.jsonl", [{"text": "hi"}])
    result = cli.run("phi", "scan", str(ok), env={"MEDOPS_PHI_CONFIG": str(config)})
    assert result.returncode == 2 and "phi.yaml" in result.stderr and "mrn_patterns[0]" in result.stderr


def test_redact_refuses_to_overwrite_an_existing_output_without_force(cli, tmp_path):
    src = tmp_path / "note.txt"
    src.write_text("Call 010-1234-5678 today.\n", encoding="utf-8")
    out = tmp_path / "kept.txt"
    out.write_text("someone's earlier work\n", encoding="utf-8")
    refused = cli.run("phi", "redact", str(src), "-o", str(out))
    assert refused.returncode == 2 and refused.stdout == "" and len(refused.stderr.strip().splitlines()) == 1
    assert f"{out} exists; give --force" in refused.stderr
    assert out.read_text(encoding="utf-8") == "someone's earlier work\n"
    forced = cli.run("phi", "redact", str(src), "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "010-1234-5678" not in out.read_text(encoding="utf-8") and "[PHONE_NUMBER_1]" in out.read_text("utf-8")
