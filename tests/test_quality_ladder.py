"""The repair ladder and the placeholder fallback through real jobs, with a
translator that returns planted bad outputs for chosen inputs: each reason
found, each remedy applied in order and recorded, clean output never
flagged, placeholders restored in place or fallen back from, a sentence out
of memory alone split, a killed run resumed without redoing a committed
piece, and progress that never goes back."""

from __future__ import annotations

import json
import re

import pytest

from pipeline import views
from pipeline.config import JobParams
from pipeline.errors import ErrorClass
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.progress import Events
from pipeline.quality import ladder
from pipeline.runner import run_job
from pipeline.store import Store
from pipeline.translator import Translation, TranslatorInfo

CLEAN = "The weather is fine today and we go for a walk."
BAD = {  # a word in the source -> what the model does with it, at every rung
    "looping": lambda text: " ".join(["encore"] * 12),
    "endless": lambda text: None,  # runs into its budget
    "cyrillic": lambda text: "Погода сегодня хорошая и мы идём гулять.",
    "copied": lambda text: text,
    "terse": lambda text: "Oui.",
}


def reverse_words(text: str) -> str:
    """A "translation" that passes every check: each word reversed,
    placeholders kept where they are."""
    return re.sub(r"\[\d+\]|\w+", lambda m: m.group() if m.group()[0] == "[" else m.group()[::-1],
                  text)


class Planted:
    """Translates with ``reverse_words`` unless ``bad(text, decoding)`` says
    how to fail: a key of BAD. Records every call."""

    def __init__(self, bad=lambda text, decoding: None, *, oom_over: int = 10_000,
                 interrupt_at: int | None = None):
        self.bad, self.oom_over, self.interrupt_at = bad, oom_over, interrupt_at
        self.calls: list[tuple[list[str], object]] = []

    def describe(self):
        return TranslatorInfo("fake", "fake", "cpu", "float32", 2048, 512, 510)

    def load(self):
        pass

    def check_language(self, code):
        pass

    def count_tokens(self, texts):
        return [len(t.split()) + 2 for t in texts]

    def unknown_characters(self, texts):
        return set()

    def translate_batch(self, texts, src, tgt, decoding):
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            self.interrupt_at = None
            raise KeyboardInterrupt  # the process is killed here
        if len(texts) == 1 and self.count_tokens(texts)[0] > self.oom_over:
            raise MemoryError("CUDA out of memory (planted)")
        self.calls.append((list(texts), decoding))
        out = []
        for text in texts:
            how = self.bad(text, decoding)
            made = BAD[how](text) if how else reverse_words(text)
            out.append(Translation(made or "on et on et on", 12, stopped=made is not None))
        return out

    def classify(self, exc):
        return ErrorClass.OOM if isinstance(exc, MemoryError) else ErrorClass.INTERNAL

    def recover(self, error_class):
        pass


def job(tmp_path, text, quality="repair", fmt="text", name="doc"):
    src = tmp_path / f"{name}.{'md' if fmt == 'markdown' else 'txt'}"
    src.write_text(text)
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt=fmt,
                       output=str(tmp_path / f"{name}.out"), quality=quality)
    store = Store(tmp_path / f"{name}.db")
    return store, submit(store, params, read_input(src))[0], tmp_path / f"{name}.out"


def steps(store, job_id):
    """(reason, decision) of each ladder step, in order."""
    return [(a.reason, a.decision) for a in store.attempts(job_id) if a.error_class == "quality"]


def by_word(word):
    """Bad wherever ``word`` is in the text."""
    return lambda text, decoding: next((k for k in BAD if k in text), None) if word in text else None


def guarded(decoding) -> bool:
    return decoding.no_repeat_ngram_size == ladder.GUARD["no_repeat_ngram_size"]


def test_each_reason_is_found_and_flagged_at_once_with_quality_flag(tmp_path):
    text = "\n\n".join([f"This {word} sentence is here for a good reason." for word in BAD]
                       + [CLEAN])
    store, j, out = job(tmp_path, text, quality="flag")
    translator = Planted(lambda text, d: next((k for k in BAD if k in text), None))
    assert run_job(store, j.id, translator).state == "SUCCEEDED"
    flags = {c.source.split()[1]: c.flag for c in store.chunks(j.id)}
    assert flags == {"looping": "loop", "endless": "budget", "cyrillic": "script",
                     "copied": "copy", "terse": "length", "weather": None}
    # each chunk decoded once: no second decode in flag mode
    assert sorted(t for texts, _ in translator.calls for t in texts) == sorted(
        c.source for c in store.chunks(j.id))
    assert sorted(steps(store, j.id)) == sorted((r, "flag") for r in flags.values() if r)
    assert reverse_words(CLEAN) in out.read_text()  # the clean one as translated
    detail = views.quality(store, store.job(j.id))["quality"]
    assert detail["flags"] == {"budget": 1, "copy": 1, "length": 1, "loop": 1, "script": 1}
    assert [c["reason"] for c in detail["flagged"]] == ["loop", "budget", "script", "copy",
                                                        "length"]


def test_the_ladder_goes_guarded_then_clauses_then_flag_each_once(tmp_path):
    fixed = "The looping sentence is cured by the guard alone."
    split = ("The endless first clause needs a split to end, and the second clause "
             "is fine as it is on its own.")
    hopeless = "Every copied piece stays bad, whatever we try, and it is flagged in the end."
    short = "A looping line."
    text = "\n\n".join([fixed, split, hopeless, short, CLEAN])

    def bad(text, decoding):
        if "cured" in text:
            return None if guarded(decoding) else "looping"
        if text in split:  # the whole sentence, not its pieces
            return "endless" if text == split else None
        if text in hopeless:  # the sentence and every piece of it
            return "copied"
        return next((k for k in BAD if k in text), None)

    store, j, out = job(tmp_path, text)
    translator = Planted(bad)
    assert run_job(store, j.id, translator).state == "SUCCEEDED"
    chunks = {c.idx: c for c in store.chunks(j.id)}
    lineage = {}
    for a in store.attempts(j.id):
        root = a.chunk_idx
        while chunks[root].parent is not None:
            root = chunks[root].parent
        lineage.setdefault(chunks[root].source, []).append((a.reason, a.decision))
    assert lineage == {
        fixed: [("loop", "guarded")],
        split: [("budget", "guarded"), ("budget", "clauses")],
        hopeless: [("copy", "guarded"), ("copy", "clauses"), ("copy", "flag"), ("copy", "flag")],
        # (its middle clause, "whatever we try,", is too short to count as a copy)
        short: [("loop", "guarded"), ("loop", "flag")],  # too short to split
    }
    # Rung 0 decodes plainly, rungs 1 and 2 with the guard, each at its own budget.
    batches = sorted((b for b in store.batches(j.id) if b.state == "committed"),
                     key=lambda b: (b.seq, b.id))  # the order they ran in
    assert len(batches) == len(translator.calls)
    for batch, (texts, decoding) in zip(batches, translator.calls):
        members = [chunks[i] for i in batch.chunk_idxs]
        assert texts == [c.source for c in members]
        assert guarded(decoding) == ({c.rung for c in members} != {ladder.PLAIN})
        assert decoding.max_new_tokens == JobParams.from_json(j.params).output_budget(
            members[0].n_tokens, 510)
    assert sum(CLEAN in texts for texts, _ in translator.calls) == 1  # never decoded again
    assert all(c.commits == 1 for c in chunks.values() if c.batch_id is not None)
    assert all(c.commits == 0 for c in chunks.values() if c.state == "replaced")
    output = out.read_text()
    assert reverse_words(fixed) in output and reverse_words(CLEAN) in output
    assert reverse_words(split.split(", ")[0] + ",") in output  # the pieces, joined
    stats = views.quality(store, store.job(j.id))["quality"]
    assert stats["repairs"] == {"budget": 2, "copy": 2, "loop": 2}
    assert stats["flags"] == {"copy": 2, "loop": 1}


def test_quality_off_checks_nothing(tmp_path):
    store, j, out = job(tmp_path, "This looping sentence is bad.", quality="off")
    assert run_job(store, j.id, Planted(by_word("looping"))).state == "SUCCEEDED"
    assert steps(store, j.id) == [] and "encore encore" in out.read_text()


MD = ("Read [the guide](https://docs.example.org/guide_v2?x=1&y=2) first, or mail "
      "name@example.org from ~/.config/app.toml with version 1.2.3.\n\n"
      "Keep **this** as it is at https://keep.example/a_b.\n")


def test_placeholders_come_back_in_place_whatever_the_order(tmp_path):
    """The model moves a placeholder: it is restored where the model put it."""

    class Moving(Planted):
        def translate_batch(self, texts, src, tgt, decoding):
            out = super().translate_batch(texts, src, tgt, decoding)
            # the last placeholder moved to the front
            return [Translation(re.sub(r"^(.*)(\[\d+\])(\W*)$", r"\2 \1\3", t.text), t.tokens,
                                t.stopped) for t in out]

    store, j, out = job(tmp_path, MD, fmt="markdown")
    assert run_job(store, j.id, Moving()).state == "SUCCEEDED"
    output = out.read_text()
    for url in ("https://docs.example.org/guide_v2?x=1&y=2", "name@example.org",
                "~/.config/app.toml", "1.2.3", "https://keep.example/a_b"):
        assert output.count(url) == 1
    assert output.startswith("1.2.3 ") and "[eht ediug](https://docs.example.org/" in output
    assert "**siht**" in output
    assert views.quality(store, store.job(j.id))["placeholders"] == {
        "protected": 8, "fallbacks": 0, "unknown": {"pieces": 0, "texts": {}}}


def test_a_lost_placeholder_falls_back_to_fragments_around_the_pieces(tmp_path):
    class Losing(Planted):
        def translate_batch(self, texts, src, tgt, decoding):
            out = super().translate_batch(texts, src, tgt, decoding)
            return [Translation(t.text.replace("[2]", ""), t.tokens, t.stopped) for t in out]

    store, j, out = job(tmp_path, MD, fmt="markdown")
    translator = Losing()
    assert run_job(store, j.id, translator).state == "SUCCEEDED"
    output = out.read_text()
    assert output == (
        "daeR [eht ediug](https://docs.example.org/guide_v2?x=1&y=2) tsrif, ro liam "
        "name@example.org morf ~/.config/app.toml htiw noisrev 1.2.3.\n\n"
        "peeK **siht** sa ti si ta https://keep.example/a_b.\n")
    assert steps(store, j.id) == [("placeholders", "fragments")] * 2
    fragments = sorted(t for texts, _ in translator.calls[2:] for t in texts)
    assert fragments == sorted(["Read", "the guide", "first, or mail", "from", "with version",
                                "Keep", "this", "as it is at"])
    assert views.quality(store, store.job(j.id))["placeholders"]["fallbacks"] == 2


def test_a_sentence_out_of_memory_on_its_own_is_split_and_goes_on(tmp_path):
    long = ("This sentence is far too long to fit in memory on its own, so it is split at "
            "its clauses, and each piece is translated after all.")
    store, j, out = job(tmp_path, f"{long}\n\n{CLEAN}", quality="off")
    assert run_job(store, j.id, Planted(oom_over=20)).state == "SUCCEEDED"
    assert [(a.error_class, a.decision) for a in store.attempts(j.id)][-1] == (
        "oom", "split_chunk")
    assert reverse_words(long) in out.read_text()  # its clauses, joined as they were


def test_a_killed_run_resumes_without_losing_or_redoing_a_piece(tmp_path):
    text = "\n\n".join(f"Sentence number {n} is looping, and it has a second clause here."
                       for n in range(6)) + "\n\n" + CLEAN
    bad = by_word("looping")

    def run(name, translator):
        store, j, out = job(tmp_path, text, name=name)
        try:
            run_job(store, j.id, translator)
        except KeyboardInterrupt:
            store = Store(store.path)
            committed = {c.idx: (c.translation, c.batch_id) for c in store.chunks(j.id)
                         if c.batch_id is not None}
            assert committed, "the kill must land after some pieces committed"
            assert any(c.parent is not None for c in store.chunks(j.id))
            assert run_job(store, j.id, Planted(bad)).state == "SUCCEEDED"
            after = {c.idx: (c.translation, c.batch_id) for c in store.chunks(j.id)}
            assert all(after[i] == v for i, v in committed.items())
        return store, j, out.read_bytes()

    _, _, clean = run("clean", Planted(bad))
    store, j, resumed = run("killed", Planted(bad, interrupt_at=3))
    assert resumed == clean
    chunks = store.chunks(j.id)
    assert all(c.commits == 1 for c in chunks if c.batch_id is not None)
    sent = [i for b in store.batches(j.id) if b.state == "committed" for i in b.chunk_idxs]
    assert len(sent) == len(set(sent))


def test_progress_never_goes_back_while_chunks_are_replaced(tmp_path):
    class Progress(Events):
        def __init__(self):
            self.total, self.seen = None, []

        def stage_started(self, stage, total, done=0.0):
            if stage == "inference":
                self.total = total

        def stage_progress(self, stage, done):
            if stage == "inference":
                self.seen.append(done)

    text = "\n\n".join(f"Line {n} is looping now, then it goes on with more words." for n in
                       range(5)) + "\n\n" + CLEAN
    store, j, _ = job(tmp_path, text)
    _, total = store.token_counts(j.id)
    events = Progress()
    assert run_job(store, j.id, Planted(by_word("looping")), events=events).state == "SUCCEEDED"
    assert events.seen == sorted(events.seen) and events.seen[-1] == events.total
    assert store.token_counts(j.id) == (events.total, events.total)
    assert any(c.state == "replaced" for c in store.chunks(j.id))


def test_the_settings_that_change_output_include_the_quality_ladder():
    from pipeline.memory import output_settings

    params = JobParams(model="m", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output="/o.txt")
    settings = output_settings(params)
    assert settings["quality"] == "repair" and settings["guard"] == ladder.GUARD
    assert settings["thresholds"]["zlib_ratio"] == 2.4
    flagged = JobParams(**{**json.loads(params.canonical_json()), "quality": "flag"})
    assert output_settings(flagged) != settings  # another memory scope
    assert flagged.canonical_json() != params.canonical_json()  # another job
    assert "output" not in settings and "sink" not in settings
    with pytest.raises(Exception, match="--quality"):
        JobParams(**{**json.loads(params.canonical_json()), "quality": "maybe"})


def test_repeats_of_a_replaced_chunk_take_its_pieces_with_their_own_urls(tmp_path):
    text = "\n\n".join(f"See https://site{n}.example/page for this looping sentence, and more."
                       for n in range(3)) + "\n\n" + CLEAN
    store, j, out = job(tmp_path, text)
    translator = Planted(by_word("looping"))
    assert run_job(store, j.id, translator).state == "SUCCEEDED"
    sent = [t for texts, _ in translator.calls for t in texts]
    # Decoded once (its loop lost the placeholder: fragments next), and its
    # fragments' ladder ran once, for all three.
    assert sent.count("See [1] for this looping sentence, and more.") == 1
    assert sent.count("for this looping sentence, and more.") == 2  # plain, then guarded
    output = out.read_text()
    assert all(output.count(f"https://site{n}.example/page") == 1 for n in range(3))
    assert output.index("site0") < output.index("site1") < output.index("site2")
    repeats = [c for c in store.chunks(j.id) if c.dup_of is not None]
    assert len(repeats) == 2 and all(c.state == "replaced" for c in repeats)


def test_the_memory_keeps_what_the_ladder_delivered_and_never_a_piece_alone(tmp_path):
    fixed = "The looping sentence is cured by the guard alone."
    split = ("The endless first clause needs a split to end, and the second clause "
             "is fine as it is on its own.")
    text = "\n\n".join([fixed, split, CLEAN])

    def bad(text, decoding):
        if "cured" in text:
            return None if guarded(decoding) else "looping"
        return "endless" if text == split else None

    first = Planted(bad)
    store, j, out = job(tmp_path, text, name="first")
    assert run_job(store, j.id, first).state == "SUCCEEDED"
    memory = {e.source: e.translation for e in store.memory_entries()}
    assert memory[fixed] == reverse_words(fixed) and memory[CLEAN] == reverse_words(CLEAN)
    # Replaced by its clauses: what it delivered is theirs, joined...
    assert memory[split] == reverse_words(split)
    # ...and a clause, a guarded decode, is not what that text alone becomes.
    assert set(memory) == {fixed, split, CLEAN}

    again = Planted(bad)
    src = tmp_path / "first.txt"
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(tmp_path / "second.out"))
    second = submit(store, params, read_input(src))[0]
    assert run_job(store, second.id, again).state == "SUCCEEDED"
    assert again.calls == []  # the ladder is not paid twice
    assert (tmp_path / "second.out").read_bytes() == out.read_bytes()


def test_a_piece_that_repeats_another_sentences_piece_is_decoded_once(tmp_path):
    # Five sentences share their second clause and loop in their first: the
    # shared clause is decoded once at its rung and every sentence takes it,
    # the way a repeated sentence takes its first occurrence's translation.
    shared = "then it goes on with more words."
    lines = [f"Line {n} is looping now, {shared}" for n in range(5)]
    looping_clause = {"Line 2 is looping now,"}  # fails at every rung: flagged

    def bad(text, decoding):
        if text in lines:
            return "looping"  # rungs 0 and 1: split into clauses
        return "looping" if text in looping_clause else None

    translator = Planted(bad)
    store, j, out = job(tmp_path, "\n\n".join(lines))
    assert run_job(store, j.id, translator).state == "SUCCEEDED"
    decoded = [(t, d) for texts, d in translator.calls for t in texts]
    assert len(decoded) == len(set(decoded))
    assert [t for t, _ in decoded].count(shared) == 1
    pieces = [c for c in store.chunks(j.id) if c.source == shared]
    assert len(pieces) == 5 and sum(c.dup_of is None for c in pieces) == 1
    assert {c.translation for c in pieces} == {reverse_words(shared)}
    output = out.read_text()
    assert output.count(reverse_words(shared)) == 5
    # Each sentence is remembered as delivered, the flagged one with its flag.
    memory = {e.source: e for e in store.memory_entries()}
    assert set(memory) == set(lines)
    assert [e.flag is not None for e in (memory[line] for line in lines)] == [
        False, False, True, False, False]
    again = Planted(bad)
    second = submit(store, JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn",
                                     fmt="text", output=str(tmp_path / "second.out")),
                    read_input(tmp_path / "doc.txt"))[0]
    assert run_job(store, second.id, again).state == "SUCCEEDED" and again.calls == []
    assert (tmp_path / "second.out").read_bytes() == out.read_bytes()
