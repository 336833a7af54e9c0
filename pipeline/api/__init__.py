"""The HTTP face of the pipeline: a JSON API, its event stream and the page.

``create_app`` builds the ASGI application over one job store;
``nllb-pipeline serve`` (``pipeline.cli.serve``) runs it under uvicorn with
its queue workers. The API calls the verbs of ``pipeline.service``, as the
CLI does, and renders ``pipeline.views``: neither face holds logic the
other lacks. Needs the ``serve`` extra (starlette, uvicorn,
python-multipart); nothing here imports torch.
"""

from pipeline.api.app import ApiSettings, create_app

__all__ = ["ApiSettings", "create_app"]
