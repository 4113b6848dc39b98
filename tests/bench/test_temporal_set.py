"""The facts-in-time evaluation set (bench/eval/temporal.jsonl) keeps its shape: enough histories in
both languages and both kinds, every expected answer a step of its history and valid at the time
asked (bench/temporal.py replays it against a real server; this only reads the file)."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import timedelta

from bench import temporal


def test_the_set_has_no_problems() -> None:
    assert temporal.problems(temporal.load()) == []


def test_counts_languages_kinds_and_shapes() -> None:
    histories = temporal.load()
    assert len(histories) >= 120
    languages = Counter(h["lang"] for h in histories)
    assert set(languages) == {"en", "zh"}
    assert min(languages.values()) >= 0.4 * len(histories)  # about half each
    kinds = Counter((h["lang"], h["kind"]) for h in histories)
    assert all(kinds[(lang, kind)] >= 15 for lang in ("en", "zh") for kind in ("memory", "relation"))
    shapes = Counter((h["kind"], h["shape"]) for h in histories)
    # a change, two changes, and a change back (A -> B -> A), for memories and relations alike
    assert all(
        shapes[(kind, shape)] >= 5 for kind in ("memory", "relation") for shape in ("change", "two changes", "back")
    )
    for history in histories:
        steps = history["steps"]
        assert history["shape"] == (
            "change"
            if len(steps) == 2
            else "back"
            if temporal.answers(history)[0] == temporal.answers(history)[-1]
            else "two changes"
        )


def test_every_history_is_asked_about_now_and_about_each_earlier_step() -> None:
    for history in temporal.load():
        questions = history["questions"]
        now = [q for q in questions if q["asOf"] is None]
        assert [q["expect"] for q in now] == [temporal.answers(history)[-1]], history["id"]
        past = sorted(temporal.parse_time(q["asOf"]) for q in questions if q["asOf"] is not None)
        steps = [temporal.parse_time(step["at"]) for step in history["steps"]]
        # one dated question inside every gap between two steps
        assert len(past) == len(steps) - 1, history["id"]
        assert all(a < moment < b for moment, a, b in zip(past, steps, steps[1:], strict=False)), history["id"]
        for question in questions:
            assert question["expect"] in temporal.answers(history)


def test_histories_do_not_share_a_subject() -> None:
    """Run in one namespace per language (--shared), histories must not answer for each other."""
    for lang in ("en", "zh"):
        histories = [h for h in temporal.load() if h["lang"] == lang]
        questions = Counter(q["q"] for h in histories for q in h["questions"] if q["asOf"] is None)
        assert max(questions.values()) == 1
        texts = Counter(text for h in histories for text in dict.fromkeys(temporal.answers(h)) if h["kind"] == "memory")
        assert max(texts.values()) == 1


def test_problems_finds_a_wrong_expected_answer() -> None:
    history = copy.deepcopy(temporal.load()[0])
    history["questions"][0]["expect"] = history["steps"][0]["text"]  # stale, asked about now
    found = temporal.problems([history])
    assert len(found) == 1
    assert "was not valid at now" in found[0]
    history = copy.deepcopy(temporal.load()[0])
    history["questions"][-1]["expect"] = "Somebody else entirely."
    assert any("is not in the history" in problem for problem in temporal.problems([history]))


def test_a_dated_question_maps_to_the_replay_instant_between_its_two_steps() -> None:
    """Real-time modes (supersede, functional) ask a dated question at the first whole second
    after the earlier step was stored, before the later step began."""
    history = next(h for h in temporal.load() if h["shape"] == "two changes")
    start = temporal.parse_time("2026-01-01T10:00:00.400000Z")
    replay = temporal.Replay(history, "temporal:test")
    for index in range(3):
        began = start + timedelta(seconds=index * temporal.GAP_SECONDS)
        replay.before.append(began)
        replay.after.append(began + timedelta(milliseconds=300))
    moments = [temporal.parse_time(replay.moment(q["asOf"])) for q in history["questions"] if q["asOf"]]
    assert len(moments) == 2
    for index, moment in enumerate(sorted(moments)):
        assert replay.after[index] < moment < replay.before[index + 1]
