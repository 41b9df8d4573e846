-- A watch entry's edits (`seizewatch watchlist edit`): each field changed with its value before and after,
-- {"priority": ["normal", "urgent"]}, beside the snapshot of the new version. Empty for other changes.
ALTER TABLE watch_entry_history ADD COLUMN changes jsonb NOT NULL DEFAULT '{}';
