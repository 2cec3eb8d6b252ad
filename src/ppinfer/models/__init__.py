"""Architectures, registered by PaddleClas's names (``ppinfer models`` lists them)."""

from ppinfer.models.registry import ModelSpec, get_model, list_models, register_model

__all__ = ["ModelSpec", "get_model", "list_models", "register_model"]
