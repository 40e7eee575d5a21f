-- A listed file's chunk count is kept on its row, written with its chunks
-- (replace_chunks), instead of counted in the chunks' index for each file
-- of each page listed: about a quarter of SQLite's work on a page of 100
-- files (issue 18).
ALTER TABLE files ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 0;
UPDATE files SET chunk_count = (SELECT COUNT(*) FROM chunks WHERE chunks.file_id = files.id);
