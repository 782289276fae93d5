"""Judging enhanced images: metrics, the quality gate, the ledger and the archivists' report."""
