"""Offline evaluation of top-K recommendation lists: split-agnostic metrics, baselines and reports."""
