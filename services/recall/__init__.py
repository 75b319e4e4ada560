"""Recall tier: multi-channel candidate generation over the item catalog."""
