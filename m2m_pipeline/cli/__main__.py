"""``python -m m2m_pipeline.cli``: the same as the ``m2m-pipeline`` command."""

from .app import main

main()
