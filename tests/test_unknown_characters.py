"""Nothing silently dropped: a character the model's tokenizer maps to its
unknown token (most emoji, ♪, rare symbols) would vanish from a
translation, so preprocess carries it through as a protected piece, it
comes back in place, and ``show`` counts such pieces."""

from __future__ import annotations

import json

from pipeline import views
from pipeline.documents import protect
from pipeline.cli import main
from pipeline.config import JobParams
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.runner import run_job
from pipeline.store import Store
from tests.fakes import FakeTranslator

M = protect.marker


def test_each_run_of_unreadable_clusters_becomes_one_protected_piece():
    unknown = {"🤗", "👍", "🏽", "♪", "\u200d", "👩", "👧"}
    text = "Hi 🤗 and 👍🏽! 👩\u200d👧 ♪♪ la a\u200db " + M(0) + "♪"
    marked, pieces, runs = protect.protect_unknown(text, (("x", -1),), unknown)
    # one piece per run of whole grapheme clusters: the skin tone stays with
    # its hand, the joined family stays whole, two notes in a row are one run
    assert runs == ["🤗", "👍🏽", "👩\u200d👧", "♪♪", "♪"]
    assert marked == (f"Hi {M(1)} and {M(2)}! {M(3)} {M(4)} la a\u200db " + M(0) + M(5))
    assert pieces == (("x", -1), ("🤗", -1), ("👍🏽", -1), ("👩\u200d👧", -1), ("♪♪", -1),
                      ("♪", -1))
    # a joiner inside a word is invisible: left to the model, as before
    assert "a\u200db" in marked
    # the model sees numbered brackets; they come back as the characters
    source, spec = protect.chunk_view(marked, pieces)
    assert source == "Hi [1] and [2]! [3] [4] la a\u200db [5][6]"  # numbered in order
    assert protect.restore(source, spec) == marked


def test_nothing_unknown_leaves_the_text_as_it_is():
    assert protect.protect_unknown("Hello there.", (), {"🤗"}) == ("Hello there.", (), [])
    assert protect.protect_unknown("Hello 🤗.", (), set()) == ("Hello 🤗.", (), [])
    # rendered as the unit writes literal text (here: escaped for a JSON string)
    assert protect.protect_unknown('Say "🤗"', (), {"🤗"}, lambda t: f"<{t}>")[1] == (
        ("<🤗>", -1),)


def test_the_tiny_models_real_tokenizer_cannot_read_emoji_or_music_notes(tiny_model):
    from models.checkpoint import Checkpoint

    checkpoint = Checkpoint(str(tiny_model))
    texts = ["Hello 🤗 world, ♪ la la ♪", "It works: 👍🏽 and café.", "tab\tand\u00a0space"]
    unknown = checkpoint.unknown_characters(texts)
    assert {"🤗", "♪", "👍", "🏽"} <= unknown
    assert not unknown & set("Helo wrd,laItks:nécaf") and not any(c.isspace() for c in unknown)
    # each character is answered once; the same question again needs no tokenizer
    checkpoint.tokenizer = None
    assert checkpoint.unknown_characters(texts) == unknown


def _job(tmp_path, text: str, fmt: str, translator, name: str = "doc"):
    ext = {"markdown": "md", "srt": "srt"}.get(fmt, "txt")
    src = tmp_path / f"{name}.{ext}"
    src.write_text(text, encoding="utf-8")
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt=fmt,
                       output=str(tmp_path / f"{name}.out.{ext}"), quality="off")
    store = Store(tmp_path / f"{name}.db")
    job = submit(store, params, read_input(src))[0]
    assert run_job(store, job.id, translator).state == "SUCCEEDED"
    return store, job, (tmp_path / f"{name}.out.{ext}").read_text(encoding="utf-8")


README = "".join(f"## Model {n} 🤗\n\nLoad it from the hub 🤗 and run it, see `x{n}`.\n\n"
                 for n in range(10))
SUBTITLE = "1\n00:00:01,000 --> 00:00:03,000\n♪ We sing along ♪\n\n" \
           "2\n00:00:04,000 --> 00:00:06,000\nAnd then we stop.\n"


def test_what_the_model_cannot_read_comes_back_in_place(tmp_path):
    """The fake drops what it cannot read, as a real model does: without
    the protection each 🤗 and ♪ would be gone."""
    fake = FakeTranslator(unknown="🤗♪")
    store, job, out = _job(tmp_path, README, "markdown", fake)
    assert out.count("🤗") == README.count("🤗") == 20
    assert out.splitlines()[:3] == ["## MODEL 0 🤗", "", "LOAD IT FROM THE HUB 🤗 AND RUN IT, "
                                    "SEE `x0`."]
    assert all("🤗" not in t for texts in fake.calls for t in texts)  # never sent to the model
    unknown = views.quality(store, store.job(job.id))["placeholders"]["unknown"]
    assert unknown == {"pieces": 20, "texts": {"🤗": 20}}

    store, job, out = _job(tmp_path, SUBTITLE, "srt", FakeTranslator(unknown="🤗♪"), "subs")
    assert "♪ WE SING ALONG ♪\n" in out
    assert views.quality(store, store.job(job.id))["placeholders"]["unknown"] == {
        "pieces": 2, "texts": {"♪": 2}}


def test_show_counts_the_pieces_the_model_cannot_read(tmp_path, tiny_model, capsys):
    """On the tiny model's real tokenizer, through the CLI, at the defaults'
    quality (random weights lose every placeholder: the fallback to
    fragments copies the pieces)."""
    src = tmp_path / "README.md"
    src.write_text(README + "♪ Sing ♪ along, 👍🏽.\n", encoding="utf-8")
    db = str(tmp_path / "jobs.db")
    assert main(["--db", db, "translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn",
                 "--model", str(tiny_model), "--json", "--no-progress", "--beams", "1",
                 "--length-ratio", "0.5", "--length-offset", "4", "--threads", "1"]) == 0
    job = json.loads(capsys.readouterr().out)["job"]
    out = (tmp_path / "README.fra_Latn.md").read_text(encoding="utf-8")
    assert (out.count("🤗"), out.count("♪"), out.count("👍🏽")) == (20, 2, 1)
    assert main(["--db", db, "show", job, "--json"]) == 0
    unknown = json.loads(capsys.readouterr().out)["placeholders"]["unknown"]
    assert unknown["texts"]["🤗"] == 20 and unknown["texts"]["♪"] == 2
    assert unknown["texts"]["👍🏽"] == 1
    assert main(["--db", db, "show", job]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "cannot read" in x)
    assert f"unreadable: {unknown['pieces']} piece(s)" in line and "🤗 x20" in line
