"""Getting examples into batches: loaders, splits, samples (no model code)."""
