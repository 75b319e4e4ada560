"""Recall logic shared by training (evaluation, quotas) and the recall tier: catalog, channels, merge."""
