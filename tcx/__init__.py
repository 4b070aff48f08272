"""tcx: Total Correlation Explanation on PyTorch Lightning."""
