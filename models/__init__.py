"""Everything that knows about torch: NLLB loading, generation, error mapping."""

from models.nllb import NllbTranslator, resolve_model
from models.tiny import build_tiny_model, ensure_tiny_model

__all__ = ["NllbTranslator", "build_tiny_model", "ensure_tiny_model", "resolve_model"]
