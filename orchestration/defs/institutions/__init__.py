"""The institution partitions, kept in sync with the warehouse."""
