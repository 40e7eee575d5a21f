-- What a connection syncs, and the names of the people and groups its
-- content names by id (issue 16).

-- The kinds of content a connection syncs, comma-separated, from
-- pages, blogposts, comments and attachments: all of them by default.
ALTER TABLE connections ADD COLUMN content_kinds TEXT NOT NULL
    DEFAULT 'pages,blogposts,comments,attachments';

-- Names of the accounts and groups a connection's content names by id, as
-- Confluence's user and group APIs gave them: mentions render as the
-- person's name (asked for once per connection, not once per page), and
-- an operator can search as a group by its name.
CREATE TABLE principal_names (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    -- 'user' or 'group'
    kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (connection_id, kind, principal_id)
);
CREATE INDEX principal_names_by_name ON principal_names (kind, name);
