"""Connecting to Ray for ``wideseek eval --ray`` and ``wideseek train --ray`` (the ``[ray]`` extra)."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

from wideseek_env.errors import WideseekError, require

__all__ = ["ray_session"]


@contextlib.contextmanager
def ray_session(address: str, init_kwargs: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module connected to ``address`` (``"local"`` starts a local instance).

    An already-initialised Ray is used as it is and left running; one started here is shut down after."""
    ray = require("ray", "ray")
    started_here = False
    if not ray.is_initialized():
        kwargs = dict(init_kwargs or {})
        kwargs.setdefault("include_dashboard", False)
        kwargs.setdefault("log_to_driver", False)
        if address != "local":
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise WideseekError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from None
        started_here = True
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()
