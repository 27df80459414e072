"""What the user reads: result files, tables, the console summary, the report, comparisons."""
