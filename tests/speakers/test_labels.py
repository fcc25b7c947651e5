"""Labels on the transcript: pure functions, checked on hand-made turns and words."""

from __future__ import annotations

from dataclasses import dataclass

from verbatim.engines.base import Segment, Word
from verbatim.speakers.labels import (
    label_transcript,
    smooth,
    split_segments,
    word_labels,
)


@dataclass(frozen=True)
class T:
    start: float
    end: float
    label: str


def w(start: float, end: float, text: str) -> Word:
    return Word(start, end, f" {text}", 0.9)


def seg(*words: Word) -> Segment:
    return Segment(
        start=words[0].start,
        end=words[-1].end,
        text="".join(x.word for x in words).strip(),
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        words=words,
    )


def test_each_word_takes_the_speaker_with_most_overlap() -> None:
    turns = [T(0.0, 1.05, "A"), T(1.05, 3.0, "B")]
    # The second word straddles the change: 0.05 s with A, 0.35 s with B.
    words = [w(0.2, 0.6, "hello"), w(1.0, 1.4, "there"), w(0.9, 1.1, "um")]
    assert word_labels(words, turns) == ["A", "B", "A"]


def test_overlap_is_summed_per_speaker_and_gaps_take_the_nearest_turn() -> None:
    # Two short A turns around a longer-looking but smaller B piece: A has 0.3 s, B 0.2 s.
    turns = [T(0.0, 1.15, "A"), T(1.15, 1.35, "B"), T(1.35, 3.0, "A")]
    assert word_labels([w(1.0, 1.5, "word")], turns) == ["A"]
    # Words in silence between turns go to the closest turn.
    turns = [T(0.0, 1.0, "A"), T(3.0, 4.0, "B")]
    assert word_labels([w(1.2, 1.4, "x"), w(2.7, 2.9, "y"), w(9, 9.5, "z")], turns) == [
        "A",
        "B",
        "B",
    ]
    assert word_labels([w(0, 1, "x")], []) == [None]


def test_segments_split_at_speaker_changes_between_words() -> None:
    words = [
        w(0.0, 0.4, "Did"),
        w(0.4, 0.7, "you"),
        w(0.7, 1.2, "eat?"),
        w(1.6, 1.9, "Yes,"),
        w(1.9, 2.2, "I"),
        w(2.2, 2.6, "did."),
    ]
    segments = [seg(*words)]
    turns = [T(0.0, 1.3, "B"), T(1.5, 2.8, "A")]
    out = split_segments(segments, turns)
    assert [(s.speaker, s.text) for s in out] == [("B", "Did you eat?"), ("A", "Yes, I did.")]
    assert out[0].start == 0.0 and out[0].end == 1.2
    assert out[1].start == 1.6 and out[1].end == 2.6
    # Every word is in exactly one piece, whole.
    assert [x for s in out for x in s.words] == words
    for s in out:
        assert all(s.start <= x.start and x.end <= s.end for x in s.words)


def test_renumbered_by_first_appearance_and_counted() -> None:
    words = [w(0.0, 0.5, "one"), w(0.5, 1.0, "two"), w(2.0, 2.5, "three")]
    turns = [T(0.0, 1.2, "SPEAKER_7"), T(1.8, 3.0, "SPEAKER_2"), T(5.0, 6.0, "SPEAKER_3")]
    centroids = {"SPEAKER_7": [1.0, 0.0], "SPEAKER_2": [0.0, 1.0], "SPEAKER_3": [0.6, 0.8]}
    segments, speakers = label_transcript([seg(*words)], turns, centroids)
    assert [s.speaker for s in segments] == ["SPEAKER_1", "SPEAKER_2"]
    # SPEAKER_3 (a noise cluster) says nothing and is dropped.
    assert [(s.label, s.talk_time, s.word_count, s.centroid) for s in speakers] == [
        ("SPEAKER_1", 1.2, 2, (1.0, 0.0)),
        ("SPEAKER_2", 1.2, 1, (0.0, 1.0)),
    ]


def test_talk_time_counts_overlapping_turns_of_one_speaker_once() -> None:
    turns = [T(0.0, 2.0, "A"), T(1.0, 3.0, "A"), T(3.5, 4.0, "A")]
    _, speakers = label_transcript([seg(w(0.5, 1.0, "hi"))], turns)
    assert speakers[0].talk_time == 3.5


def test_short_flicker_inside_a_turn_is_smoothed() -> None:
    words = [w(0.0, 0.5, "so"), w(0.5, 0.8, "the"), w(0.8, 1.2, "plan"), w(1.2, 1.6, "is")]
    # The diarizer gave 0.3 s of B in the middle of A's sentence.
    turns = [T(0.0, 0.5, "A"), T(0.5, 0.8, "B"), T(0.8, 2.0, "A")]
    assert word_labels(words, turns) == ["A", "B", "A", "A"]
    assert smooth(words, word_labels(words, turns)) == ["A", "A", "A", "A"]
    out = split_segments([seg(*words)], turns)
    assert [(s.speaker, s.text) for s in out] == [("A", "so the plan is")]


def test_real_interjections_and_long_runs_are_kept() -> None:
    # "Yes." alone between pauses is a turn of its own, however short.
    words = [w(0.0, 1.0, "Ready"), w(1.5, 1.8, "Yes."), w(2.3, 3.0, "Good")]
    assert smooth(words, ["A", "B", "A"]) == ["A", "B", "A"]
    # A run of 0.5 s or more is not a flicker.
    words = [w(0.0, 1.0, "a"), w(1.0, 1.6, "b"), w(1.6, 2.0, "c")]
    assert smooth(words, ["A", "B", "A"]) == ["A", "B", "A"]
    # A short run at a change (A then B) is not inside one speaker's turn.
    assert smooth(words[:2], ["A", "B"]) == ["A", "B"]
    assert smooth(words, ["A", "B", "C"]) == ["A", "B", "C"]


def test_no_turns_or_no_words() -> None:
    segments = [seg(w(0.0, 0.5, "hi"))]
    assert split_segments(segments, []) == segments
    labelled, speakers = label_transcript(segments, [])
    assert labelled[0].speaker is None and speakers == []
    # Segments without word timings are labelled whole, by overlap.
    bare = Segment(0.0, 2.0, "hello there", -0.1, 0.0)
    out, speakers = label_transcript([bare], [T(0.0, 0.5, "X"), T(0.5, 2.0, "Y")])
    assert [(s.speaker, s.text) for s in out] == [("SPEAKER_1", "hello there")]
    assert speakers[0].word_count == 2
    assert label_transcript([], [T(0, 1, "A")]) == ([], [])


def test_runner_reads_dialogue_options_from_the_row() -> None:
    from verbatim.engines.base import DialogueOptions
    from verbatim.models import Mode, Transcription
    from verbatim.transcriptions.runner import dialogue_options

    def row(mode: Mode, **options: object) -> Transcription:
        return Transcription(mode=mode, options={"beam_size": 5, **options})

    assert dialogue_options(row(Mode.mono)) is None
    assert dialogue_options(row(Mode.dialogue, diarization="off")) is None
    assert dialogue_options(row(Mode.dialogue, diarization="auto")) == DialogueOptions()
    assert dialogue_options(
        row(Mode.dialogue, diarization="channels", min_speakers=2, max_speakers=3)
    ) == DialogueOptions(method="channels", min_speakers=2, max_speakers=3)
    assert dialogue_options(row(Mode.dialogue, num_speakers=4)) == DialogueOptions(num_speakers=4)
