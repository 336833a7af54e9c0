"""The four stages. Each one is ``run(ctx)``: read from the store, do the
work, write the results and the next stage in one transaction."""

from pipeline.stages import inference, postprocess, preprocess, upload

STAGE_RUNNERS = {
    "preprocess": preprocess.run,
    "inference": inference.run,
    "postprocess": postprocess.run,
    "upload": upload.run,
}
