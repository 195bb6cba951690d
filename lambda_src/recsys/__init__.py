"""Code shared by the platform's Lambda functions (numpy only on the serving path: no torch, no pickle)."""
