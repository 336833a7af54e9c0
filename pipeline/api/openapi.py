"""The public contract of the HTTP API, as an OpenAPI 3.1 description.

Served at ``GET /api/openapi.json``. Written by hand next to the routes it
describes; ``tests/test_api.py`` checks that every route of the app is in it
and every path in it is a route, so the two cannot drift apart.
"""

from __future__ import annotations

from pipeline.api import openapi_extra
from pipeline.config import FORMATS, STAGES

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
        "percent": {"type": "number", "description": "overall, at the stage weights"},
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
        "note": {"type": ["string", "null"]},
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

FORM = {"type": "object", "required": ["file", "src", "tgt"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "the document (UTF-8)"},
    "src": {"type": "string", "description": "FLORES-200 code, e.g. eng_Latn"},
    "tgt": {"type": "string"},
    "model": {"type": "string", "description": "hub id or model directory on the server"},
    "format": {"enum": ["auto", *FORMATS]},
    "jsonl_field": {"type": "string", "description": "JSON Lines: the field to translate"},
    "beams": {"type": "integer", "minimum": 1, "maximum": 16},
    "max_chunk_tokens": {"type": "integer", "minimum": 16, "maximum": 1024},
    "length_ratio": {"type": "number"}, "length_offset": {"type": "integer"},
    "missing": {"enum": ["source", "marker"]},
    "quality": {"enum": ["repair", "flag", "off"], "description": "what becomes of a "
                "translation that fails the output checks (default repair)"},
    "priority": {"type": "integer", "description": "higher runs first"},
    "to": {"type": "string", "description": "an http(s):// URL to deliver to as well"},
    "http_method": {"enum": ["PUT", "POST"]},
    "tm": {"enum": ["off", "read", "on"], "description": "how the job uses the translation "
           "memory (default on); not part of what the job is"}}}


def describe() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "nllb-pipeline", "version": "1",
                 "description": "Queue documents for translation and watch them. Every error "
                                "is {\"error\": {\"class\", \"message\"}}. With a token, every "
                                "call needs 'Authorization: Bearer TOKEN'. A POST needs "
                                "X-Requested-With (any value) or the token, and is refused "
                                "(403) when its Origin is another site."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Job": JOB, "JobDetail": DETAIL, "Attempt": ATTEMPT, "Action": ACTION,
                "Error": {"type": "object", "properties": {"error": {"type": "object",
                          "properties": {"class": {"type": "string"},
                                         "message": {"type": "string"}}}}},
                "JobList": {"type": "object", "properties": {
                    "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
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
                            {"name": "If-None-Match", "in": "header",
                             "schema": {"type": "string"}}],
                        "responses": {"200": _json("JobList"),
                                      "304": {"description": "nothing changed since the ETag"},
                                      "400": _error("bad state or limit")}},
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
                             "413": _error("over --max-upload-mb"),
                             "422": _error("the Idempotency-Key names another request")}},
            },
            "/api/jobs/{job_id}": {"get": {
                "summary": "one job: stages, chunks, failed chunks, delivery",
                "parameters": [JOB_ID],
                "responses": {"200": _json("JobDetail"), "404": NOT_FOUND}}},
            "/api/jobs/{job_id}/logs": {"get": {
                "summary": "the attempt history", "parameters": [JOB_ID],
                "responses": {"200": {"description": "OK", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "job": {"type": "string"},
                        "attempts": {"type": "array",
                                     "items": {"$ref": "#/components/schemas/Attempt"}}}}}}},
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
