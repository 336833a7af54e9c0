"""End to end on the tiny model: documents through all four stages."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from markdown_it import MarkdownIt

from pipeline.cli import main
from pipeline.samples import generate_markdown, generate_text
from pipeline.store import Store


def translate(capsys, db, src, model, *extra) -> tuple[int, dict | None, str]:
    code = main(["--db", str(db), "translate", str(src), "--src", "eng_Latn", "--tgt",
                 "fra_Latn", "--model", str(model), "--beams", "1", "--json",
                 # random weights always use the whole output budget: keep it short
                 "--length-ratio", "0.5", "--length-offset", "4", *extra])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


BACKENDS = pytest.mark.parametrize("backend", [pytest.param("hf", marks=pytest.mark.slow),
                                               "ctranslate2"])


@BACKENDS
def test_text_document_goes_through_all_four_stages(tmp_path, capsys, tiny_model, backend):
    src = tmp_path / "book.txt"
    src.write_text(generate_text(300, seed=1))
    db = tmp_path / "jobs.db"
    code, result, err = translate(capsys, db, src, tiny_model, "--backend", backend)
    assert code == 0, err
    out = tmp_path / "book.fra_Latn.txt"
    assert result["output"] == str(out) and result["state"] == "SUCCEEDED"
    assert len(paragraphs(out.read_text())) == len(paragraphs(src.read_text()))
    store = Store(db)
    job = store.job(result["job"])
    assert [r.stage for r in store.stage_runs(job.id)] == [
        "preprocess", "inference", "postprocess", "upload"]
    chunks = store.chunks(job.id)
    document = [c for c in chunks if c.parent is None]
    assert len(document) >= 280  # the segmenter may join a few generated sentences
    # Each sentence done, or replaced by pieces (the repair ladder: random
    # weights never stop); every translation committed exactly once.
    assert all(c.state in ("done", "replaced") for c in document)
    assert all(c.state in ("done", "replaced") for c in chunks)
    assert all(c.commits == 1 for c in chunks if c.batch_id is not None)
    assert all(c.commits == 0 for c in chunks if c.state == "replaced")
    compute_type = {"hf": "float32", "ctranslate2": "int8"}[backend]
    assert {(b.backend, b.device, b.compute_type) for b in store.batches(job.id)} == {
        (backend, "cpu", compute_type)}
    delivery = store.artifact(job.id, "delivery")
    import hashlib

    assert delivery.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()


def _blocks(text: str):
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    return {
        "headings": [t.tag for t in tokens if t.type == "heading_open"],
        "items": sum(t.type == "list_item_open" for t in tokens),
        "quotes": sum(t.type == "blockquote_open" for t in tokens),
        "rows": sum(t.type == "tr_open" for t in tokens),
        "paragraphs": sum(t.type == "paragraph_open" for t in tokens),
        "code": [t.content for t in tokens if t.type in ("fence", "code_block")],
        "links": [
            c.attrGet("href") for t in tokens if t.children for c in t.children
            if c.type == "link_open"
        ],
    }


@BACKENDS
def test_markdown_keeps_its_structure(tmp_path, capsys, tiny_model, backend):
    from importlib import resources

    sample = (resources.files("pipeline") / "data" / "sample.md").read_text()
    src = tmp_path / "manual.md"
    src.write_text(sample + "\n" + generate_markdown(250, seed=2))
    code, result, err = translate(capsys, tmp_path / "jobs.db", src, tiny_model,
                                  "--backend", backend)
    assert code == 0, err
    before, after = _blocks(src.read_text()), _blocks((tmp_path / "manual.fra_Latn.md").read_text())
    assert after == before
    assert before["code"] and before["links"] and before["rows"]  # the test has teeth


def test_a_5000_word_sentence_is_split_never_truncated(tmp_path, capsys, tiny_model):
    words = generate_text(400, seed=3).replace(".", "").replace("?", "").replace("!", "")
    words = re.sub(r"[,\s]+", " ", words).split()[:5000]
    assert len(words) == 5000
    src = tmp_path / "long.txt"
    src.write_text(" ".join(words) + "\n")
    db = tmp_path / "jobs.db"
    code, result, err = translate(capsys, db, src, tiny_model, "--max-chunk-tokens", "128")
    assert code == 0, err
    store = Store(db)
    chunks = [c for c in store.chunks(result["job"]) if c.parent is None]  # not their pieces
    assert len(chunks) > 10
    from models import HfTranslator
    recount = HfTranslator(str(tiny_model)).count_tokens([c.source for c in chunks])
    assert max(recount) <= 128 and [c.n_tokens for c in chunks] == recount
    assert "".join(c.source for c in chunks).replace(" ", "") == "".join(words)


def test_same_command_after_success_does_no_inference(tmp_path, capsys, tiny_model, monkeypatch):
    src = tmp_path / "doc.txt"
    src.write_text(generate_text(40, seed=4))
    db = tmp_path / "jobs.db"
    assert translate(capsys, db, src, tiny_model)[0] == 0
    first = (tmp_path / "doc.fra_Latn.txt").read_bytes()

    import models.hf

    def forbidden(*a, **k):
        raise AssertionError("the model was used")

    monkeypatch.setattr(models.hf.HfTranslator, "__init__", forbidden)
    code, result, _ = translate(capsys, db, src, tiny_model)
    assert code == 0 and result["note"] == "already translated; nothing to do"
    assert (tmp_path / "doc.fra_Latn.txt").read_bytes() == first
    assert [r.stage for r in Store(db).stage_runs(result["job"])].count("inference") == 1


def test_a_deleted_output_is_delivered_again_without_translating(tmp_path, capsys, tiny_model,
                                                                   monkeypatch):
    src = tmp_path / "doc.txt"
    src.write_text(generate_text(20, seed=5))
    db = tmp_path / "jobs.db"
    assert translate(capsys, db, src, tiny_model)[0] == 0
    out = tmp_path / "doc.fra_Latn.txt"
    first = out.read_bytes()
    out.unlink()
    import models.hf

    def forbidden(*a, **k):
        raise AssertionError("translated again")

    monkeypatch.setattr(models.hf.HfTranslator, "translate_batch", forbidden)
    code, result, err = translate(capsys, db, src, tiny_model)
    assert code == 0, err
    assert out.read_bytes() == first


# -- bad input: one line, exit 2, database untouched ------------------------------


def _db_snapshot(db):
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("jobs", "chunks", "batches", "artifacts")}
    finally:
        conn.close()


@pytest.fixture
def populated_db(tmp_path, capsys, tiny_model):
    src = tmp_path / "good.txt"
    src.write_text("A good document. It has two sentences.\n")
    db = tmp_path / "jobs.db"
    assert translate(capsys, db, src, tiny_model)[0] == 0
    return db


def _bad_cases(tmp_path, tiny_model):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b"  \n\n 42 \n")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait.".encode("latin-1"))
    (tmp_path / "ok.txt").write_text("Fine text.\n")
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "weights.txt").write_text("x")
    ok, model = str(tmp_path / "ok.txt"), str(tiny_model)
    return {
        "empty file": ([str(tmp_path / "empty.txt")], "is empty"),
        "no words": ([str(tmp_path / "blank.txt")], "without any words"),
        "binary file": ([str(tmp_path / "binary.txt")], "binary file"),
        "invalid utf-8": ([str(tmp_path / "latin1.txt")], "not valid UTF-8 (byte 0xe9 at offset 3"),
        "missing file": ([str(tmp_path / "nope.txt")], "input file not found"),
        "input is a directory": ([str(tmp_path)], "is a directory"),
        "unknown target": ([ok, "--tgt", "fr"], "unknown language code 'fr' (did you mean fra_Latn?)"),
        "wrong case source": ([ok, "--src", "eng_latn"],
                              "unknown language code 'eng_latn' (did you mean eng_Latn?)"),
        "missing model dir": ([ok, "--model", str(tmp_path / "models" / "nllb")],
                              "model directory not found"),
        "dir that is not a model": ([ok, "--model", str(tmp_path / "not-a-model")],
                                    "is not a model directory"),
        "output dir missing": ([ok, "-o", str(tmp_path / "no" / "such" / "dir" / "o.txt")],
                               "does not exist"),
        "output under a file": ([ok, "-o", str(tmp_path / "ok.txt" / "o.txt")], "does not exist"),
        "output is a directory": ([ok, "-o", str(tmp_path)], "is a directory"),
        "bad beams": ([ok, "--beams", "0"], "--beams must be between 1 and 16"),
    }, model


@pytest.mark.parametrize("case", [
    "empty file", "no words", "binary file", "invalid utf-8", "missing file",
    "input is a directory", "unknown target", "wrong case source", "missing model dir",
    "dir that is not a model", "output dir missing", "output under a file",
    "output is a directory", "bad beams",
])
def test_bad_input_is_one_line_exit_2_and_leaves_the_database_intact(
        case, tmp_path, capsys, tiny_model, populated_db):
    cases, model = _bad_cases(tmp_path, tiny_model)
    argv, expected = cases[case]
    before = _db_snapshot(populated_db)
    args = {"--src": "eng_Latn", "--tgt": "fra_Latn", "--model": model}
    rest = list(argv[1:])
    for i in range(0, len(rest), 2):
        args[rest[i]] = rest[i + 1]
    flat = [x for kv in args.items() for x in kv]
    code = main(["--db", str(populated_db), "translate", argv[0], *flat, "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nllb-pipeline: error: "), err
    assert expected in lines[0]
    assert "Traceback" not in err + out
    assert _db_snapshot(populated_db) == before


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_directory(tmp_path, capsys, tiny_model):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    src = tmp_path / "a.txt"
    src.write_text("Some text.\n")
    code = main(["--db", str(tmp_path / "j.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(tiny_model), "-o", str(locked / "o.txt")])
    assert code == 2 and "not writable" in capsys.readouterr().err
