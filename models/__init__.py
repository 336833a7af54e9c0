"""Everything that knows about torch and the model libraries: backends behind
the Translator protocol, checkpoints, error mapping, the tiny test model."""

from models.backends import open_translator
from models.checkpoint import resolve_model
from models.hf import HfTranslator
from models.tiny import build_tiny_model, ensure_tiny_model

__all__ = ["HfTranslator", "build_tiny_model", "ensure_tiny_model", "open_translator",
           "resolve_model"]
