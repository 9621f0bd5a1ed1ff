"""Value tests of m2m_pipeline/pools/reuse.py (fast; used by the mutation run)."""
