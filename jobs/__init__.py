"""Job tasks. Every module here is discovered: add a file with a task to make it schedulable."""
