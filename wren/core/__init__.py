"""What training and serving share (bundle, schema, types, errors, indexes, recall); imports nothing of ours above."""
