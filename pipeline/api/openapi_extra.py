"""The OpenAPI description of the review loop and of ``/metrics`` (issue
23), merged into ``pipeline.api.openapi.describe``."""

from __future__ import annotations


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "a job id, or a unique prefix of one"}
IDX = {"name": "idx", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0},
       "description": "the chunk's number, as the list gives it"}

REVIEW_CHUNK = {"type": "object", "properties": {
    "idx": {"type": "integer"},
    "source": {"type": "string", "description": "what the model was given; [1], [2]... stand "
               "for links, markup and symbols it must not touch"},
    "translation": {"type": ["string", "null"], "description": "what was delivered for it"},
    "flag": {"type": ["string", "null"], "description": "accepted with a quality flag: why"},
    "reused": {"type": ["string", "null"], "description": "memory or document: not inferred"},
    "state": {"type": "string"},
    "review": {"type": ["object", "null"], "description": "the latest review",
               "properties": {"correction": {"type": ["string", "null"]},
                              "was": {"type": ["string", "null"]}, "at": {"type": "number"}}}}}

SCHEMAS = {
    "ReviewChunk": REVIEW_CHUNK,
    "ReviewPage": {"type": "object", "properties": {
        "job": {"type": "string"}, "state": {"type": "string"},
        "total": {"type": "integer", "description": "the document's chunks"},
        "flagged": {"type": "integer", "description": "of them flagged; listed first"},
        "offset": {"type": "integer"}, "limit": {"type": "integer"},
        "chunks": {"type": "array", "items": {"$ref": "#/components/schemas/ReviewChunk"}}}},
    "Reviewed": {"type": "object", "properties": {
        "job": {"$ref": "#/components/schemas/Job"},
        "chunk": {"$ref": "#/components/schemas/ReviewChunk"},
        "memory": {"type": "boolean", "description": "the correction went into the translation "
                   "memory as a human translation (false: the job used none)"},
        "redelivery": {"enum": ["queued", None], "description": "queued: a worker renders the "
                       "output and delivers it again"}}},
}

PATHS = {
    "/api/jobs/{job_id}/chunks": {"get": {
        "summary": "the job's chunks, source beside translation, flagged first, a page at a time",
        "parameters": [JOB_ID,
                       {"name": "offset", "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "default": 0}},
                       {"name": "limit", "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200,
                                   "default": 50}}],
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReviewPage"}}}},
            "400": _error("bad offset or limit"), "404": _error("no such job")}}},
    "/api/jobs/{job_id}/chunks/{idx}/review": {"post": {
        "summary": "mark a delivered chunk wrong, with a correction or without: a correction "
                   "becomes its translation (and its repeats'), the memory's under its key as "
                   "a human translation, and the job delivers its output again",
        "parameters": [JOB_ID, IDX],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"correction": {
                "type": "string", "maxLength": 4000,
                "description": "one line; keeps the source's [1], [2]... each once"}}}}}},
        "responses": {"200": {"description": "marked", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Reviewed"}}}},
            "400": _error("a bad body or correction (nothing written)"),
            "403": _error("a cross-site request, or one without X-Requested-With or the token"),
            "404": _error("no such job or chunk"),
            "409": _error("the job has not succeeded (yet), or the chunk was not translated")}}},
    "/metrics": {"get": {
        "summary": "Prometheus text format: jobs by state, finished jobs by outcome, attempts "
                   "by error class and decision, OOM splits, quality flags and repairs, tokens, "
                   "memory reuse, stage wall time and ETA error histograms, ETA drift, queue "
                   "depth and age, live workers and leases, reviews, and this server's HTTP "
                   "requests (README, 'Monitoring'); with a token it needs it",
        "responses": {"200": {"description": "text/plain; version=1.0.0"},
                      "401": _error("a token is set and was not given")}}},
}
