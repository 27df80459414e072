"""Where and how the work runs: run directories, executors, devices."""
