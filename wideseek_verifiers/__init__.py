"""The verifiers taskset ``wideseek-verifiers`` (verifiers resolves a taskset id to a top-level module
exporting its ``Taskset`` through ``__all__``). The implementation is
:mod:`wideseek_env.integrations.verifiers_env`; this module only names it. Needs the ``[verifiers]`` extra."""

from wideseek_env.integrations.verifiers_env import WideSeekTaskset, load_environment

__all__ = ["WideSeekTaskset", "load_environment"]
