"""Vector index backends shared by training and the recall tier."""
