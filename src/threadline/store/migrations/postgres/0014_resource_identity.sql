-- Which resource and signing key this database belongs to (issue 14): the CLI and the server refuse
-- to mint or check tokens with another key. One row; the fingerprint reveals nothing of the key.
CREATE TABLE resource_identity (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    resource_id TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
