"""Host tools for Hourglass: build, flash, deploy, the virtual board, benchmarks."""
