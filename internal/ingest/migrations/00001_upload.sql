-- +goose Up
-- One row per object that reached the uploads bucket (bucket, key, ETag), or
-- per upload an admin announced through the API before sending its bytes
-- (etag NULL until the object exists). See docs/ingest.md.
CREATE TABLE ingest_upload (
    id               uuid PRIMARY KEY,
    bucket           text NOT NULL,
    key              text NOT NULL,
    etag             text,                  -- NULL: announced, bytes not complete yet
    size             bigint,
    state            text NOT NULL CHECK (state IN ('pending', 'received', 'probing', 'transcoding', 'ready', 'failed')),
    reason           text,                  -- failed: machine-readable reason
    detail           text,                  -- failed: a sentence for people
    -- who uploaded (admin API / CLI); NULL for plain S3 uploads
    uploader_id      text,
    filename         text,
    content_type     text,
    multipart_id     text,                  -- the S3 multipart upload the API created
    -- options
    auto_publish     boolean,               -- NULL: INGEST_AUTO_PUBLISH
    replace_track_id uuid,
    -- outcome
    track_id         uuid,                  -- the track made, replaced or matched; chosen at claim for a new track
    content_hash     text,                  -- sha256 of the object's bytes
    duplicate        boolean NOT NULL DEFAULT false,
    published        boolean NOT NULL DEFAULT false,
    -- processing lease: a crashed attempt's lease runs out and the next claim
    -- first deletes what it left under the output prefix
    attempts         int NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE UNIQUE INDEX ingest_upload_object ON ingest_upload (bucket, key, etag) WHERE etag IS NOT NULL;
CREATE UNIQUE INDEX ingest_upload_announced ON ingest_upload (bucket, key) WHERE etag IS NULL;
CREATE INDEX ingest_upload_content ON ingest_upload (content_hash) WHERE state = 'ready';
CREATE INDEX ingest_upload_created ON ingest_upload (created_at DESC);

-- +goose Down
DROP TABLE ingest_upload;
