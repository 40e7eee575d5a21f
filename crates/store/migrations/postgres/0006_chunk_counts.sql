-- A listed file's chunk count is kept on its row, written with its chunks
-- (replace_chunks), instead of counted for each file of each page listed
-- (issue 18).
ALTER TABLE files ADD COLUMN chunk_count BIGINT NOT NULL DEFAULT 0;
UPDATE files f SET chunk_count = n.n
FROM (SELECT file_id, COUNT(*) AS n FROM chunks GROUP BY file_id) n
WHERE f.id = n.file_id;
