"""The assets: ``play_totals`` (the file's totals as shards), the checks that read its shards
back, and ``play_history`` (every file's totals in one table), with its maintenance job."""
