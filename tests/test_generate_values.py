"""Value tests of m2m_pipeline/pools/generate.py (fast; used by the mutation run)."""
