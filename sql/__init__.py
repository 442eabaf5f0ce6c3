"""The ksqlDB-flavoured SQL dialect, analysis and logical plans; knows nothing of execution."""
