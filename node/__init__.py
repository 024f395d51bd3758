"""The office node: the office's system of record and its only door to the network."""
