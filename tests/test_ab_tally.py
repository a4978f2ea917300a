"""tools/ab_tally.py: a blind A/B's verdict by source, and summed over judges."""

from __future__ import annotations

import json

from conftest import load_tool


def _judgement(tmp_path, name, pairs, answers):
    key = {f"pair_{i:02d}": {"left": left, "right": "b" if left == "a" else "a", "stem": stem}
           for i, (left, stem) in enumerate(pairs)}
    (tmp_path / f"key_{name}.json").write_text(json.dumps(key))
    (tmp_path / f"answers_{name}.txt").write_text(
        "".join(f"pair_{i:02d} {a}\n" for i, a in enumerate(answers)) + "pair_99 L\nnotes\n")
    return tmp_path / f"key_{name}.json", tmp_path / f"answers_{name}.txt"


def test_a_tally_reads_answers_through_the_key_by_source(tmp_path):
    tool = load_tool("ab_tally")
    key, answers = _judgement(tmp_path, "one", [("a", "photo_tiger"), ("b", "photo_dog"),
                                                ("b", "jpeg75_101087"), ("a", "real_3096")],
                              ["L", "L", "R", "tie"])
    t = tool.tally(key, answers)
    # tiger: L is a; dog: L is b; 101087: R is a; 3096: a tie counts for nobody
    assert dict(t.a) == {"photo": 1, "jpeg75": 1} and dict(t.b) == {"photo": 1}
    assert t.sides == {"L": 2, "R": 1}
    assert t.line().startswith("a-b 2-1  jpeg75 1-0  photo 1-1")


def test_the_sum_adds_every_judgement(tmp_path, capsys):
    tool = load_tool("ab_tally")
    one = _judgement(tmp_path, "one", [("a", "photo_x"), ("a", "real_y")], ["L", "R"])
    two = _judgement(tmp_path, "two", [("b", "photo_x"), ("b", "real_y")], ["L", "L"])
    assert tool.main([str(p) for p in (*one, *two)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("answers_one.txt: a-b 1-1")
    assert lines[1].startswith("answers_two.txt: a-b 0-2")
    assert lines[2].startswith("sum of 2: a-b 1-3  photo 1-1  real 0-2  answered L 3 / R 1")
    assert tool.main([str(one[0])]) == 2  # a key without its answers


def test_by_image_sums_each_input_over_judgements_worst_first(tmp_path, capsys):
    tool = load_tool("ab_tally")
    one = _judgement(tmp_path, "one", [("a", "photo_x"), ("a", "real_y")], ["L", "R"])
    two = _judgement(tmp_path, "two", [("b", "photo_x"), ("b", "real_y")], ["R", "L"])
    assert tool.main(["--by-image", *(str(p) for p in (*one, *two))]) == 0
    lines = capsys.readouterr().out.splitlines()
    # real_y: lost in both (R of one is b, L of two is b); photo_x: won in both
    assert lines[-2:] == ["real_y 0-2", "photo_x 2-0"]
