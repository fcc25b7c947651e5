"""Direct uploads to storage through presigned URLs."""
