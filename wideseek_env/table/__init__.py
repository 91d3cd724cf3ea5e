"""The bottom layer shared by :mod:`wideseek_env.tasks`, :mod:`wideseek_env.taskgen` and
:mod:`wideseek_env.evaluation`: the task record and the table primitives both sides read.

- :mod:`.schema`: :class:`~.schema.Task` and :class:`~.schema.ColumnSpec` (re-exported by
  ``wideseek_env.tasks``, where users import them);
- :mod:`.markdown`: finding a markdown table in text, splitting it into cells, rendering one;
- :mod:`.cells`: cleaning a cell to the string that is compared;
- :mod:`.preprocess`: the per-column preprocess functions (``norm_str``, ``extract_number``,
  ``norm_date``);
- :mod:`.dates`: the strict date parser of the default mode;
- :mod:`.official_dates`: dates read by ``dateparser`` as the official WideSearch scorer reads them
  (``compat="widesearch"``; the ``[widesearch]`` extra).

Dependency direction: modules here import the standard library, each other and
:mod:`wideseek_env.errors`, nothing else of ``wideseek_env``. ``tasks`` and ``evaluation`` both sit
on this layer and do not import each other (whoever needs both, e.g. ``wideseek score``, the env or
``taskgen``, sits above them); ``tests/test_layering.py`` checks this and that no module imports
form a circle.

Departure from DESIGN.md's list for this layer (task schema, markdown, preprocess, dates, cells):
:mod:`.official_dates` is here too, split out of ``evaluation.official``, because the
``norm_date`` preprocess calls it in widesearch mode; the pandas half of compat mode stays in
:mod:`wideseek_env.evaluation.official`.
"""
