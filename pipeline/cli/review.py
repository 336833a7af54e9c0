"""``nllb-pipeline review JOB``: the review loop from the command line, the
same verbs as ``/api/jobs/{id}/chunks`` (``pipeline.quality.review``).

    nllb-pipeline review JOB                       # chunks, flagged first
    nllb-pipeline review JOB --chunk 12 --wrong    # marked wrong, no correction
    nllb-pipeline review JOB --chunk 12 --correct 'the right sentence'
"""

from __future__ import annotations

import argparse
import json

from pipeline.quality import review
from pipeline.cli.options import add_json_option, at_least, open_store
from pipeline.errors import InvalidInput


def add_review_command(command, job_help: str) -> None:
    p = command("review", "a job's chunks beside their source; mark one wrong, correct it",
                cmd_review)
    p.add_argument("job", help=job_help)
    p.add_argument("--offset", type=at_least(0), default=0, metavar="N",
                   help="skip the first N chunks of the list, >= 0 (default 0)")
    p.add_argument("--limit", type=at_least(1, review.MAX_PAGE), default=50, metavar="N",
                   help=f"list N chunks, 1-{review.MAX_PAGE} (default 50)")
    p.add_argument("--chunk", type=at_least(0), default=None, metavar="IDX",
                   help="the chunk to mark (its number in the list), >= 0")
    mark = p.add_mutually_exclusive_group()
    mark.add_argument("--wrong", action="store_true", help="mark --chunk wrong, no correction")
    mark.add_argument("--correct", default=None, metavar="TEXT",
                      help="mark --chunk wrong with this translation: the memory keeps it as a "
                           "human translation and the output is delivered again by a worker")
    add_json_option(p)


def cmd_review(args: argparse.Namespace) -> int:
    store = open_store(args, existing=True)
    if args.wrong or args.correct is not None:
        if args.chunk is None:
            raise InvalidInput("--wrong and --correct need --chunk IDX")
        done = review.review_chunk(store, args.job, args.chunk, correction=args.correct)
        if args.json:
            print(json.dumps(done))
        else:
            print(f"chunk {args.chunk} of job {done['job']} marked wrong"
                  + (", corrected; delivered again by the next worker"
                     if done["redelivery"] else "")
                  + ("" if done["memory"] or args.correct is None else
                     " (the job used no translation memory: only its output changes)"))
        return 0
    if args.chunk is not None:
        raise InvalidInput("--chunk needs --wrong or --correct TEXT")
    page = review.chunks_for_review(store, args.job, offset=args.offset, limit=args.limit)
    if args.json:
        print(json.dumps(page))
        return 0
    print(f"job {page['job']} ({page['state']}): {page['total']} chunks, {page['flagged']} "
          f"flagged; {args.offset + 1}-{args.offset + len(page['chunks'])} shown")
    for c in page["chunks"]:
        marks = [c["flag"] and f"flag: {c['flag']}", c["reused"] and f"from the {c['reused']}",
                 c["review"] and ("corrected" if c["review"]["correction"] else "marked wrong")]
        print(f"{c['idx']:>6}  {c['source']!r}" + (f"  [{', '.join(filter(None, marks))}]"
                                                   if any(marks) else ""))
        print(f"{'':>6}  -> {c['translation']!r}")
    return 0
