"""Tests of the support package (helpers with I/O shared by node and hub)."""
