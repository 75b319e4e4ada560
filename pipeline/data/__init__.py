"""Reading and validating MovieLens-format datasets."""
