"""Tests of the node status views: SyncHealth, mbe-node status, the German page GET /status."""
