"""wideseek-env: a multi-agent environment for broad information seeking (WideSeek-R1)."""

__version__ = "0.1.0"
