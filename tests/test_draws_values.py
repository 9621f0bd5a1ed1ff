"""Value tests of m2m_pipeline/pools/draws.py (fast; used by the mutation run)."""
