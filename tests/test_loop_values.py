"""Value tests of m2m_pipeline/training/loop.py (fast; used by the mutation run)."""
