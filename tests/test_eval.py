"""``nllb-pipeline eval``: scores through the ordinary pipeline, in process.

The success path (chrF++ near 100) is tested on the trained test model,
whose answer ``models.trained.invented_translation`` computes; the random
model checks the rows, the comparison grid and the refusals.
"""

from __future__ import annotations

import json
import random

import pytest

from tests.test_cli_options import one_error_line, run

SENTENCES = [
    "The river runs past the old stone bridge.",
    "A garden in the morning light is quiet.",
    "",
    "The city had 42 windows and [3] doors.",
    "Every batch is committed to the database.",
]


@pytest.fixture
def test_set(tmp_path):
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    ref.write_text("\n".join(s.upper() for s in SENTENCES) + "\n", encoding="utf-8")
    return src, ref


def test_compare_prints_one_row_per_combination(capsys, tiny_model, test_set, tmp_path):
    src, ref = test_set
    code, out, err = run(capsys, "eval", str(src), "--ref", str(ref), "--src", "eng_Latn",
                         "--tgt", "fra_Latn", "--model", str(tiny_model), "--backend", "hf",
                         "--device", "cpu", "--compare", "--beams", "1,4", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["backend"], r["device"], r["beams"]) for r in rows] == [("hf", "cpu", 1),
                                                                        ("hf", "cpu", 4)]
    for r in rows:
        assert r["state"] == "SUCCEEDED" and r["lines"] == len(SENTENCES)
        assert 0 <= r["chrf"] < 50 and 0 <= r["bleu"] < 50  # noise against the reference
        assert r["signature"]["chrf"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:2")
        assert "tok:13a" in r["signature"]["bleu"]
        assert r["tokens_per_s"] > 0 and r["generated_tokens"] > 0
        assert isinstance(r["flags"], dict)
        assert r["reused"] == {"memory": 0, "document": 0}
    # the scratch store: nothing in the job database, the memory untouched
    assert not (tmp_path / "default-jobs.db").exists()

    code, out, err = run(capsys, "eval", str(src), "--ref", str(ref), "--src", "eng_Latn",
                         "--tgt", "fra_Latn", "--model", str(tiny_model), "--backend", "hf",
                         "--device", "cpu", "--beams", "1", "--no-progress")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("eval: 5 lines, eng_Latn -> fra_Latn")
    assert lines[1].split()[:6] == ["backend", "device", "dtype", "beams", "chrF++", "BLEU"]
    assert lines[2].split()[:4] == ["hf", "cpu", "float32", "1"]
    assert lines[-2].startswith("chrF++ signature: nrefs:1")
    assert lines[-1].startswith("BLEU signature:")


@pytest.mark.parametrize(("argv", "says"), [
    (["--beams", "1,4"], "several values need --compare"),
    (["--beams", "0"], "outside 1-16"),
    (["--compare", "--beams", "1,,4"], "an empty value"),
    (["--compare", "--backend", "hf,torch"], "'torch' is not one of"),
    (["--tgt", "xxx_Latn"], "xxx_Latn"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, test_set, argv, says):
    src, ref = test_set
    base = ["eval", str(src), "--ref", str(ref), "--src", "eng_Latn", "--tgt", "fra_Latn"]
    code, _, err = run(capsys, *base, *argv)
    assert code == 2 and says in one_error_line(err)


def test_a_misaligned_or_missing_reference_is_refused(capsys, test_set, tmp_path):
    src, ref = test_set
    ref.write_text("one line\n")
    code, _, err = run(capsys, "eval", str(src), "--ref", str(ref), "--src", "eng_Latn",
                       "--tgt", "fra_Latn")
    assert code == 2 and "has 5 lines" in one_error_line(err) and "has 1" in err
    code, _, err = run(capsys, "eval", str(src), "--ref", str(tmp_path / "nope.txt"),
                       "--src", "eng_Latn", "--tgt", "fra_Latn")
    assert code == 2 and "reference file not found" in one_error_line(err)


def test_bleu_tokenizes_chinese_by_character():
    from pipeline.quality.evaluate import bleu_tokenizer, score

    assert bleu_tokenizer("zho_Hans") == "zh" and bleu_tokenizer("fra_Latn") == "13a"
    perfect = score(["我们今天去公园。"], ["我们今天去公园。"], "zho_Hans")
    assert perfect.chrf == perfect.bleu == 100.0 and "tok:zh" in perfect.bleu_signature


# -- on the trained model --------------------------------------------------------


def test_the_trained_model_scores_near_100_on_its_own_task(capsys, trained_model, tmp_path):
    from models.trained import invented_translation

    rng = random.Random(3)
    words = ("river stone light morning table garden letter window city music paper road "
             "winter story bread field horse voice ocean mountain friend dream").split()
    sources = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))).capitalize()
               + "." for _ in range(40)]
    src, good, other = tmp_path / "src.txt", tmp_path / "good.txt", tmp_path / "other.txt"
    src.write_text("\n".join(sources) + "\n")
    good.write_text("\n".join(invented_translation(trained_model, s) for s in sources) + "\n")
    other.write_text("\n".join(sources) + "\n")  # the source itself: a reference that differs
    rows = {}
    for name, ref in (("good", good), ("other", other)):
        code, out, err = run(capsys, "eval", str(src), "--ref", str(ref), "--src", "eng_Latn",
                             "--tgt", "fra_Latn", "--model", str(trained_model), "--device",
                             "cpu", "--json")
        assert code == 0, err
        rows[name] = json.loads(out)[0]
    assert rows["good"]["chrf"] >= 95, rows["good"]
    assert rows["other"]["chrf"] < rows["good"]["chrf"] - 30, rows
    assert rows["good"]["flags"] == {}


def test_eval_refuses_before_a_job_exists(capsys, test_set, tmp_path):
    """A run option that cannot work is refused before any job or store is made."""
    src, ref = test_set
    code, _, err = run(capsys, "eval", str(src), "--ref", str(ref), "--src", "eng_Latn",
                       "--tgt", "fra_Latn", "--compare", "--dtype", "int8,bogus")
    assert code == 2 and "bogus" in one_error_line(err)
    assert not (tmp_path / "default-jobs.db").exists()
