"""The memory keeps what a chunk delivered, whatever the repair ladder did
to it: decoded again with the guard, replaced by its fragments when a
placeholder was lost, split into clauses, flagged. A revised document then
sends inference only its edited sentences, at every ``--quality``, and each
reused chunk gives exactly the bytes it gave before; a reuse stays flagged."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from pipeline import views
from pipeline.config import JobParams
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.memory.exchange import export_tmx, import_tmx
from pipeline.documents.pieces import joined
from pipeline.documents.protect import load_spec
from pipeline.runner import run_job
from pipeline.store import NewChunk, Store
from pipeline.translator import Translation
from tests.conftest import corpus_file
from tests.test_quality_ladder import Planted, guarded, reverse_words

CLEAN = "The weather is fine today and we go for a walk."
FIXED = "The looping sentence is cured by the guard alone."
SPLIT = ("The endless first clause needs a split to end, and the second clause "
         "is fine as it is on its own.")
HOPELESS = "Every copied piece stays bad, whatever we try, and it is flagged in the end."
LINKED = "Read [the guide](https://docs.example.org/guide) before you start the tool."
LOST = "Mail name@example.org or see https://lost.example/a_b for the lost placeholder."
SHORT = "A looping line."  # cannot be split: flagged after the guarded decode
DOC = [CLEAN, FIXED, SPLIT, HOPELESS, LINKED, LOST, SHORT]


class Ladder(Planted):
    """Planted bad outputs that send each sentence of DOC down its own path
    of the ladder, whatever words an edit adds; and a translation of a
    sentence with "lost" in it drops its last placeholder."""

    def __init__(self):
        super().__init__(self._bad)

    @staticmethod
    def _bad(text, decoding):
        if "cured" in text:
            return None if guarded(decoding) else "looping"
        if "endless" in text and "second clause" in text:  # the whole, not its pieces
            return "endless"
        if "copied" in text or "whatever" in text or "flagged" in text:
            return "copied"
        if "looping line" in text:
            return "looping"
        return None

    def translate_batch(self, texts, src, tgt, decoding):
        out = super().translate_batch(texts, src, tgt, decoding)
        return [Translation(re.sub(r"\[\d+\](?!.*\[\d+\])", "", t.text) if "lost" in s
                            else t.text, t.tokens, t.stopped) for s, t in zip(texts, out)]

    def sent(self) -> list[str]:
        return [t for texts, _ in self.calls for t in texts]


def translate(store: Store, path: Path, text: str, translator, *, quality: str, out: str,
              fmt: str = "markdown"):
    path.write_text(text)
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt=fmt,
                       output=str(path.parent / out), quality=quality)
    job = submit(store, params, read_input(path))[0]
    assert run_job(store, job.id, translator).state == "SUCCEEDED"
    return job, (path.parent / out).read_text()


def edited(sentences: list[str], which: list[int]) -> list[str]:
    return [s.replace("The ", "This time the ", 1).replace("Read ", "Now read ", 1)
            if i in which else s for i, s in enumerate(sentences)]


@pytest.mark.parametrize("quality", ["repair", "flag", "off"])
def test_a_revision_infers_only_its_edited_sentences_whatever_the_ladder_did(tmp_path, quality):
    store = Store(tmp_path / "jobs.db")
    first = Ladder()
    job1, out1 = translate(store, tmp_path / "doc.md", "\n\n".join(DOC) + "\n", first,
                           quality=quality, out="v1.md")
    steps = {(a.reason, a.decision) for a in store.attempts(job1.id)}
    assert ("placeholders", "fragments") in steps  # LOST's placeholder did not survive
    if quality == "repair":
        assert {"guarded", "clauses", "flag"} <= {d for _, d in steps}

    revised = edited(DOC, [0, 2, 4])  # clean, split into clauses, linked
    second = Ladder()
    job2, out2 = translate(store, tmp_path / "doc.md", "\n\n".join(revised) + "\n", second,
                           quality=quality, out="v2.md")
    changed = [revised[i] for i in (0, 2, 4)]
    # Inference saw the edited sentences and, where the ladder took them
    # apart, their pieces: nothing of an unchanged one.
    sent = second.sent()
    assert sent and all(any(_piece_of(t, s) for s in changed) for t in sent), sent
    chunks2 = [c for c in store.chunks(job2.id) if c.parent is None]
    assert store.job_counters([job2.id])[job2.id].reused_memory == len(DOC) - 3
    assert all(c.reused == "memory" for c in chunks2 if not any(
        _piece_of(c.source, s) for s in changed))
    # The unchanged paragraphs are the bytes the first run delivered.
    para1, para2 = out1.split("\n\n"), out2.split("\n\n")
    assert [p for i, p in enumerate(para2) if i not in (0, 2, 4)] == [
        p for i, p in enumerate(para1) if i not in (0, 2, 4)]

    # A third run of the revision infers nothing, and gives the same bytes.
    third = Ladder()
    _, out3 = translate(store, tmp_path / "doc.md", "\n\n".join(revised) + "\n", third,
                        quality=quality, out="v3.md")
    assert third.calls == [] and out3 == out2


def _piece_of(text: str, sentence: str) -> bool:
    """``text`` is what inference is given for ``sentence`` or a piece of it
    (placeholders as the model sees them)."""
    visible = re.sub(r"\[the guide\]\(https://docs\.example\.org/guide\)", "[1]the guide[2]",
                     sentence)
    return text in visible


def test_a_reuse_of_a_flagged_chunk_is_still_flagged_and_exported_so(tmp_path):
    store = Store(tmp_path / "jobs.db")
    job1, out1 = translate(store, tmp_path / "doc.txt", "\n\n".join(DOC) + "\n", Ladder(),
                           quality="repair", out="v1.txt", fmt="text")
    memory = {e.source: e for e in store.memory_entries()}
    # Every text of the document is kept as it was delivered, and every
    # fragment of one (a text decoded plainly as it is); never a guarded
    # decode or a clause, which are not what their text alone becomes.
    chunks = store.chunks(job1.id)
    assert set(memory) == {c.source for c in chunks if c.rung == 0 and c.n_tokens}
    assert len([c for c in chunks if c.parent is None]) == len(DOC)
    assert memory[SPLIT].translation == reverse_words(SPLIT) and memory[SPLIT].flag is None
    assert memory[FIXED].translation == reverse_words(FIXED)
    # The flagged ones keep the reason of their first flagged piece.
    assert memory[HOPELESS].flag == "copy" and memory[SHORT].flag == "loop"
    assert memory[CLEAN].flag is None

    job2, out2 = translate(store, tmp_path / "doc.txt", "\n\n".join(DOC) + "\n", Ladder(),
                           quality="repair", out="v2.txt", fmt="text")
    assert out2 == out1
    quality = views.quality(store, store.job(job2.id))["quality"]
    assert {(c["reason"], c["reused"]) for c in quality["flagged"]} == {
        ("copy", "memory"), ("loop", "memory")}
    assert quality["flags"] == {"copy": 1, "loop": 1} and quality["repairs"] == {}

    export_tmx(store, tmp_path / "tm.tmx")
    tmx = (tmp_path / "tm.tmx").read_text()
    assert tmx.count('<prop type="x-nllb-flag">copy</prop>') == 1
    assert tmx.count('<prop type="x-nllb-flag">loop</prop>') == 1
    other = Store(tmp_path / "other.db")
    scope = next(iter(store.memory_entries())).scope
    assert import_tmx(other, tmp_path / "tm.tmx", scope).added == len(memory)
    assert {e.source: e.flag for e in other.memory_entries()} == {
        s: e.flag for s, e in memory.items()}


def test_joined_keeps_only_a_text_that_restores_to_the_pieces_bytes():
    spec = load_spec('[[0,0,""],[1,0,""]]')
    parts = [("Lisez", False), (" [1] ", True), ("ou", False), (" [2].", True)]
    assert joined(parts, spec) == "Lisez [1] ou [2]."
    # a piece's translation that writes a "[2]" of its own: whole, it would be a placeholder
    assert joined([("Lisez [2]", False), (" [1] ", True), ("ou", False), (" [2].", True)],
                  spec) is None
    # a run of spaces a copied piece keeps: whole, it would be cleaned to one
    assert joined([("Lisez", False), ("  [1]  ", True), ("ou", False), (" [2].", True)],
                  spec) is None
    assert joined([("Lisez", False), (" ", False), ("ou.", False)], []) == "Lisez ou."


# -- on the random-weight model, a real document ---------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("quality", ["repair", "off"])
def test_a_revised_readme_infers_only_its_edited_sentences_on_random_weights(
        tmp_path, tiny_model, quality):
    """Random weights lose nearly every placeholder and loop on nearly every
    sentence: most of the README is replaced by pieces, and still only the
    edited sentences reach the model the second time."""
    from models import HfTranslator
    from pipeline.config import RunSettings
    from tests.test_memory import Counting

    source = corpus_file("markdown_rich_README.md").read_text(encoding="utf-8")
    store = Store(tmp_path / "jobs.db")
    hf = HfTranslator(str(tiny_model), RunSettings(device="cpu", threads=1))

    def run(text: str, name: str) -> tuple[object, Counting, str]:
        doc = tmp_path / "README.md"
        doc.write_text(text, encoding="utf-8")
        params = JobParams(model=str(tiny_model), src_lang="eng_Latn", tgt_lang="fra_Latn",
                           fmt="markdown", output=str(tmp_path / name), beams=1,
                           length_ratio=0.5, length_offset=4, quality=quality)
        job = submit(store, params, read_input(doc))[0]
        counting = Counting(hf)
        assert run_job(store, job.id, counting).state == "SUCCEEDED"
        return job, counting, (tmp_path / name).read_text(encoding="utf-8")

    job1, _, out1 = run(source, "v1.md")
    lines = source.split("\n")
    prose = [i for i, line in enumerate(lines) if re.fullmatch(r"[A-Z][a-z].{40,}", line)
             and "`" not in line and "](" not in line]
    edits = random.Random(3).sample(prose, 2)
    for i in edits:
        lines[i] = "Indeed, " + lines[i][0].lower() + lines[i][1:]
    job2, second, out2 = run("\n".join(lines), "v2.md")

    before = {c.source for c in store.chunks(job1.id) if c.parent is None}
    new = {c.source for c in store.chunks(job2.id) if c.parent is None} - before
    assert new and all("Indeed, " in s for s in new)
    assert second.texts and all(any(t in s for s in new) for t in second.texts)
    unchanged = [c for c in store.chunks(job2.id) if c.parent is None and c.source not in new]
    assert all(c.reused == "memory" or (c.state == "done" and c.commits == 0)  # or copied
               for c in unchanged)
    # The output is the first's, but for a line per edited one.
    v1, v2 = out1.split("\n"), out2.split("\n")
    assert len(v1) == len(v2)
    assert sum(a != b for a, b in zip(v1, v2)) == len(edits)


def test_a_unit_is_reused_only_where_its_translation_keeps_the_chunks_pairs(tmp_path):
    """One text, two kinds of pieces: "[1]" and "[2]" are a link's two ends
    in one document and two URLs in another. A translation that swapped them
    suits the URLs; for the link it would close before it opens, and
    postprocess would fall back to the source, so it is translated again."""
    from tests.test_memory import SCOPE

    store = Store(tmp_path / "j.db")
    source = "Click [1]here[2] now."
    store.import_memory([(SCOPE, source, "[2]Cliquez ici[1] maintenant.")])
    job, _ = store.get_or_create_job(idem_key="k", params="{}", input_path="/in",
                                     input_sha256="0", input_bytes=1, output_path="/out")
    assert store.claim_job(job.id, "w", 30)
    run = store.start_stage(job.id, "preprocess", units_total=1)
    link, urls = '[[0,2,"o"],[1,1,"c"]]', '[[0,0,""],[1,0,""]]'
    store.finish_preprocess(job.id, run, "w", "{}", [NewChunk(0, source, 5, protected=link),
                                                     NewChunk(1, source, 5, protected=urls)],
                            memory=store.memory_scope_id(SCOPE))
    assert [(c.state, c.reused) for c in store.chunks(job.id)] == [
        ("pending", None), ("done", "memory")]
