"""``orbitmq bench <workload>``: benchmarks that print JSON, each measuring its own baseline in the same run."""
