"""The public contract of the HTTP API, as an OpenAPI 3.1 description.

Served at ``GET /api/openapi.json``. Written by hand next to the routes it
describes; ``tests/test_api.py`` checks that every route of the app is in it
and every path in it is a route, so the two cannot drift apart.
"""

from __future__ import annotations

from pipeline.api import openapi_extra
from pipeline.config import FORMATS, STAGES
from pipeline.sinks.grammar import HTTP_METHODS
from pipeline.store.records import MODES

STATES = ["QUEUED", "RUNNING", "INTERRUPTED", "SUCCEEDED", "FAILED", "CANCELED"]


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(ref: str, description: str = "OK") -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "a job id, or a unique prefix of one"}
NOT_FOUND = _error("no such job")
AMBIGUOUS = _error("the id prefix starts several jobs (the message names them)")
CONFLICT = _error("the job's state does not allow it")
CROSS_SITE = _error("a cross-site request, or one without X-Requested-With or the token")

JOB = {
    "type": "object",
    "required": ["id", "name", "state", "stage", "percent", "eta_seconds", "src", "tgt",
                 "created_at"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string", "description": "the document's file name"},
        "state": {"enum": STATES, "description": "INTERRUPTED: RUNNING in the store, but its "
                  "worker is gone (its process died, or its lease expired); any worker "
                  "resumes it"},
        "stage": {"enum": [*STAGES, "done"], "description": "the stage it is in or resumes at"},
        "percent": {"type": "number", "description": "overall, at the stage weights; in "
                    "inference from the same token counts as stage_units"},
        "stage_units": {"type": ["object", "null"], "description": "how far the current "
                        "stage is in its own unit (inference: source tokens of the chunks it "
                        "translates; a split chunk's tokens pass to its pieces, so the total "
                        "never grows); null where only the percent is known",
                        "properties": {"unit": {"type": "string"}, "done": {"type": "integer"},
                                       "total": {"type": "integer"}}},
        "queue_position": {"type": ["integer", "null"], "description": "a queued job's place "
                           "in the queue (1: the next a worker takes), by priority then age"},
        "eta_seconds": {"type": ["number", "null"],
                        "description": "null: unknown, or a retry is waiting"},
        "tokens_per_s": {"type": ["number", "null"]},
        "waiting": {"type": ["object", "null"], "description": "a retry's wait",
                    "properties": {"what": {"type": "string"}, "until": {"type": "number"},
                                   "error_class": {"type": "string"},
                                   "attempt": {"type": "integer"}, "limit": {"type": "integer"}}},
        "weights": {"type": "object", "description": "each stage's share of the bar: measured "
                    "on past jobs of its model and device, or the defaults"},
        "stage_percent": {"type": "object", "description": "how far each stage is"},
        "note": {"type": ["string", "null"],
                 "description": "why the job is not moving: interrupted (resumes on the next "
                                "run), or, before its run starts, what it waits for (the model "
                                "loading, room on the Ray cluster)"},
        "src": {"type": "string"}, "tgt": {"type": "string"},
        "format": {"enum": list(FORMATS)},
        "input": {"type": "string"}, "output": {"type": ["string", "null"]},
        "priority": {"type": "integer"},
        "created_at": {"type": "number", "description": "unix time"},
        "updated_at": {"type": "number"}, "finished_at": {"type": ["number", "null"]},
        "worker": {"type": ["string", "null"]},
        "error": {"type": ["object", "null"], "properties": {
            "class": {"type": ["string", "null"]}, "message": {"type": ["string", "null"]}}},
    },
}

DETAIL = {"allOf": [{"$ref": "#/components/schemas/Job"}, {"type": "object", "properties": {
    "params": {"type": "object"},
    "chunks": {"type": "object", "description": "counts by state: done, failed, pending"},
    "chunk_progress": {"type": "object", "description": "total, done, pending, failed, "
                       "reused (done without inference), split and pieces: a chunk the "
                       "quality ladder splits counts as its pieces"},
    "has_output": {"type": "boolean", "description": "the translation can be downloaded "
                   "(also when its delivery failed)"},
    "elapsed_s": {"type": "number", "description": "wall time of its stage runs; an "
                  "interrupted or canceled run counts to where it stopped"},
    "stages": {"type": "array", "items": {"type": "object", "properties": {
        "stage": {"type": "string"},
        "state": {"enum": ["finished", "running", "interrupted"]},
        "wall_s": {"type": ["number", "null"]},
        "cpu_s": {"type": ["number", "null"], "description":
                  "CPU seconds of the process while the stage ran, all its threads (null: "
                  "the run did not end in the process that started it)"},
        "units_total": {"type": ["number", "null"]}, "units_done": {"type": ["number", "null"]},
        "device": {"type": ["string", "null"]}}}},
    "failed_chunks": {"type": "array", "items": {"type": "object", "properties": {
        "chunk": {"type": "integer"}, "source": {"type": "string"},
        "attempts": {"type": "integer"}, "last_error": {"type": ["string", "null"]}}}},
    "delivery": {"type": ["object", "null"],
                 "description": "target, sha256, bytes, and what the sink answered"},
}}]}

ATTEMPT = {"type": "object", "properties": {
    "at": {"type": "number"}, "stage": {"type": "string"},
    "batch_id": {"type": ["integer", "null"]}, "chunk_idx": {"type": ["integer", "null"]},
    "error_class": {"type": "string"}, "attempt": {"type": "integer"},
    "decision": {"type": "string", "description": "retry, retry_batch, split, chunks, "
                 "give_up, skip or fail"},
    "delay_s": {"type": ["number", "null"]}, "trace_id": {"type": "string"},
    "message": {"type": "string"}}}

ACTION = {"type": "object", "properties": {
    "outcome": {"type": "string"}, "job": {"$ref": "#/components/schemas/Job"}}}

IDS = {"type": "object", "required": ["ids"], "properties": {
    "ids": {"type": "array", "maxItems": 1000, "items": {"type": "string"},
            "description": "job ids or unique prefixes"}}}

BULK = {"type": "object", "properties": {
    "ok": {"type": "integer"}, "refused": {"type": "integer"},
    "results": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "ok": {"type": "boolean"}, "outcome": {"type": "string"},
        "job": {"$ref": "#/components/schemas/Job"},
        "error": {"type": "object", "description": "class, message, and the status the "
                  "single-job route would have answered"}}}}}}


def _bulk(verb: str) -> dict:
    return {"post": {
        "summary": f"{verb} many jobs: each as POST /api/jobs/{{job_id}}/{verb} would; one "
                   "refused job does not stop the others",
        "requestBody": {"required": True, "content": {"application/json": {"schema": IDS}}},
        "responses": {"200": {"description": "one result per id, in order",
                              "content": {"application/json": {"schema": BULK}}},
                      "400": _error("no ids, more than 1000, or not JSON"),
                      "403": CROSS_SITE}}}

FORM = {"type": "object", "required": ["file", "src", "tgt"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "the document (UTF-8)"},
    "src": {"type": "string", "description": "FLORES-200 code, e.g. eng_Latn"},
    "tgt": {"type": "string"},
    "model": {"type": "string", "description": "hub id or model directory on the server"},
    "format": {"enum": ["auto", *FORMATS]},
    "jsonl_field": {"type": "string", "description": "JSON Lines: the field to translate"},
    "columns": {"type": "string", "description": "csv, tsv, parquet: the columns to "
                "translate, comma-separated header names (or 1-based numbers for a CSV "
                "without a header row)"},
    "delimiter": {"type": "string", "description": "csv: the delimiter, one character "
                  "(default: detected from the first line)"},
    "in_place": {"type": "boolean", "description": "jsonl, csv, tsv, parquet: replace the "
                 "field or columns instead of adding \"translation\" or <column>_<tgt>"},
    "overwrite_translated": {"type": "boolean", "description": "po: translate entries that "
                             "already have a msgstr too"},
    "fuzzy": {"type": "boolean", "description": "po: mark machine translations fuzzy "
              "(default true)"},
    "wrap": {"enum": ["keep", "reflow"], "description": "markdown, html: a translated "
             "paragraph keeps its source's line count (keep, the default) or is one line"},
    "beams": {"type": "integer", "minimum": 1, "maximum": 16},
    "max_chunk_tokens": {"type": "integer", "minimum": 16, "maximum": 1024},
    "length_ratio": {"type": "number"}, "length_offset": {"type": "integer"},
    "missing": {"enum": ["source", "marker"]},
    "quality": {"enum": ["repair", "flag", "off"], "description": "what becomes of a "
                "translation that fails the output checks (default repair)"},
    "priority": {"type": "integer", "description": "higher runs first"},
    "to": {"type": "string", "description": "an http(s):// URL, or a storage URL "
           "(s3://bucket/out/, any installed fsspec protocol), to deliver to as well; a presigned "
           "URL's signature is stored and shown as REDACTED"},
    "http_method": {"enum": list(HTTP_METHODS)},
    "tm": {"enum": list(MODES), "description": "how the job uses the translation "
           "memory (default on); not part of what the job is"}}}


def describe() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "nllb-pipeline", "version": "1",
                 "description": "Queue documents for translation and watch them. Every error "
                                "is {\"error\": {\"class\", \"message\"}}. With a token, every "
                                "call needs 'Authorization: Bearer TOKEN'. A POST needs "
                                "X-Requested-With (any value) or the token, and is refused "
                                "(403) when its Origin is another site. The page itself is at "
                                "/ and, opened on one job, at /jobs/{id}."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Job": JOB, "JobDetail": DETAIL, "Attempt": ATTEMPT, "Action": ACTION,
                "Error": {"type": "object", "properties": {"error": {"type": "object",
                          "properties": {"class": {"type": "string"},
                                         "message": {"type": "string"}}}}},
                "JobList": {"type": "object", "properties": {
                    "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                    "attention": {"type": "array", "items": {"$ref": "#/components/schemas/Job"},
                                  "description": "first page of the unfiltered list only: "
                                  "the running jobs, then the failures of the last 24 h"},
                    "next_cursor": {"type": ["string", "null"],
                                    "description": "pass as cursor for the next page"},
                    "recently_finished": {"type": "array", "description": "jobs that "
                                          "ended in the last hour (id, name, state, "
                                          "finished_at), whatever the filter"},
                    "counts": {"type": "object", "description": "jobs by state, all of them"},
                    "now": {"type": "number", "description": "the server's unix time"}}},
                **openapi_extra.SCHEMAS,
            },
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/api/jobs": {
                "get": {"summary": "jobs, newest first",
                        "parameters": [
                            {"name": "state", "in": "query", "schema": {"type": "string"},
                             "description": "comma-separated states"},
                            {"name": "limit", "in": "query",
                             "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                        "default": 100}},
                            {"name": "q", "in": "query", "schema": {"type": "string",
                                                                    "maxLength": 200},
                             "description": "search: the file name contains it, or the id "
                                            "starts with it (every character literal)"},
                            {"name": "cursor", "in": "query", "schema": {"type": "string"},
                             "description": "next_cursor of the previous page (keyset "
                                            "paging, newest first)"},
                            {"name": "If-None-Match", "in": "header",
                             "schema": {"type": "string"},
                             "description": "a poll: while another request renders a newer "
                                            "list, it may be answered from the previous "
                                            "rendering (at most 2 s old), with that "
                                            "rendering's ETag"},
                            {"name": "Cache-Control", "in": "header",
                             "schema": {"type": "string"},
                             "description": "no-cache: never the previous rendering"}],
                        "responses": {"200": _json("JobList"),
                                      "304": {"description": "nothing changed since the ETag "
                                                             "(or the previous rendering is "
                                                             "that ETag's, as above)"},
                                      "400": _error("bad state, limit, q or cursor")}},
                "post": {"summary": "submit a document",
                         "parameters": [{"name": "Idempotency-Key", "in": "header",
                                         "schema": {"type": "string", "maxLength": 200}}],
                         "requestBody": {"required": True, "content": {
                             "multipart/form-data": {"schema": FORM}}},
                         "responses": {
                             "201": _json("Job", "a new job"),
                             "200": _json("Job", "the same request again: the same job"),
                             "400": _error("bad document or options (nothing written)"),
                             "403": CROSS_SITE,
                             "409": _error("another queued or running job already delivers "
                                           "to the same place (the message names it)"),
                             "413": _error("over --max-upload-mb"),
                             "422": _error("the Idempotency-Key names another request")}},
            },
            "/api/jobs/retry": _bulk("retry"),
            "/api/jobs/cancel": _bulk("cancel"),
            "/api/jobs/{job_id}": {
                "get": {"summary": "one job: stages, chunks, failed chunks, delivery",
                        "parameters": [JOB_ID],
                        "responses": {"200": _json("JobDetail"), "404": NOT_FOUND,
                                      "409": AMBIGUOUS}},
                "delete": {"summary": "delete a job that no worker runs, with its chunks, "
                                      "batches, log, stored output and its upload (unless "
                                      "another job reads it)",
                           "parameters": [JOB_ID],
                           "responses": {"200": {"description": "deleted"}, "403": CROSS_SITE,
                                         "404": NOT_FOUND,
                                         "409": _error("it is running: cancel it first")}}},
            "/api/jobs/{job_id}/retry-now": {"post": {
                "summary": "end the retry's wait a running job is in (a batch after a "
                           "transient error, an upload after 429 or 503): its worker tries "
                           "again within a second",
                "parameters": [JOB_ID],
                "responses": {"202": _json("Action", "requested; ended_wait is the wait"),
                              "403": CROSS_SITE, "404": NOT_FOUND,
                              "409": _error("it is not waiting out a retry")}}},
            "/api/jobs/{job_id}/logs": {"get": {
                "summary": "the attempt history",
                "parameters": [JOB_ID, {"name": "format", "in": "query",
                                        "schema": {"enum": ["json", "text"], "default": "json"},
                                        "description": "text: a file to download, as the "
                                                       "CLI's logs prints it"}],
                "responses": {"200": {"description": "OK", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "job": {"type": "string"},
                        "attempts": {"type": "array",
                                     "items": {"$ref": "#/components/schemas/Attempt"}}}}},
                    "text/plain": {"schema": {"type": "string"}}}},
                    "404": NOT_FOUND}}},
            "/api/jobs/{job_id}/retry": {"post": {
                "summary": "queue a failed, canceled or interrupted job's remaining work again "
                           "(failed chunks get fresh attempts), or deliver a succeeded job "
                           "whose output is gone",
                "parameters": [JOB_ID],
                "responses": {"200": _json("Action"), "403": CROSS_SITE, "404": NOT_FOUND,
                              "409": CONFLICT}}},
            "/api/jobs/{job_id}/cancel": {"post": {
                "summary": "cancel: at once if nothing runs it, else within seconds",
                "parameters": [JOB_ID],
                "responses": {"200": _json("Action", "canceled"),
                              "202": _json("Action", "requested: the worker stops after its "
                                                     "batch"),
                              "403": CROSS_SITE, "404": NOT_FOUND, "409": CONFLICT}}},
            "/api/jobs/{job_id}/output": {"get": {
                "summary": "the translation (Content-Disposition names the file)",
                "parameters": [JOB_ID, {"name": "inline", "in": "query",
                                        "schema": {"enum": ["1"]},
                                        "description": "as text/plain, to preview"}],
                "responses": {"200": {"description": "the document"}, "404": NOT_FOUND,
                              "409": _error("no output yet, or collected by gc")}}},
            "/api/events": {"get": {
                "summary": "Server-Sent Events: 'job' events carrying a Job when it changes",
                "parameters": [{"name": "job", "in": "query", "schema": {"type": "string"},
                                "description": "only this job (starts with its current view)"}],
                "responses": {"200": {"description": "text/event-stream"}, "404": NOT_FOUND}}},
            "/api/info": {"get": {
                "summary": "version, languages, formats, default model, upload limit, workers",
                "responses": {"200": {"description": "OK"}}}},
            "/api/openapi.json": {"get": {"summary": "this description",
                                          "responses": {"200": {"description": "OK"}}}},
            **openapi_extra.PATHS,
        },
    }
