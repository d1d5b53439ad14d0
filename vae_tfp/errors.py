"""Helpers that turn bad input into a ValueError that names the value and what is allowed."""


def unknown_name(what: str, value, allowed) -> ValueError:
    """`unknown likelihood 'foo'; allowed: bernoulli, gaussian`."""
    return ValueError(f"unknown {what} {value!r}; allowed: {', '.join(sorted(allowed))}")


def choose(what: str, value: str, registry: dict):
    """Look `value` up in `registry`, or raise a ValueError listing the registry's keys."""
    if value not in registry:
        raise unknown_name(what, value, registry)
    return registry[value]
