"""The recommender platform's Pulumi components (one per module) and their pure helpers."""
