"""medrepro benchmarks: engine overhead, data-pipeline wait, roofline, bf16, paper wall times (`python -m benchmarks.run`)."""
