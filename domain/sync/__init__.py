"""Mall syncs: the connection's lease, page-by-page storage with its cursor, the sync schedule."""
