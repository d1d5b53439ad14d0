"""Lazy references to TensorFlow builders: a registry entry names its builder as "package.module:attribute", and
`resolve` imports that module only when the builder is first needed (so the registries load without TensorFlow)."""

import importlib
from functools import cache

from vae_tfp.errors import choose


@cache
def resolve(reference: str):
    """The object a lazy reference "package.module:attribute" names (its module is imported on first use)."""
    module, _, attribute = reference.partition(":")
    if not module or not attribute:
        raise ValueError(f"a builder reference looks like 'package.module:attribute', got {reference!r}")
    return getattr(importlib.import_module(module), attribute)


def lookup(what: str, name, registry: dict):
    """registry[name], or a ValueError naming the value and the allowed names."""
    return choose(what, name if isinstance(name, str) else repr(name), registry)


__all__ = ["lookup", "resolve"]
