"""wideseek-env: a multi-agent environment for broad information seeking (WideSeek-R1)."""

__version__ = "0.1.0"

from wideseek_env.registration import register_envs as _register_envs  # noqa: E402

_register_envs()
