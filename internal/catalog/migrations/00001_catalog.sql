-- +goose Up
-- The catalog write model: the truth every read model is rebuilt from.
CREATE TABLE genre (
    id         text PRIMARY KEY,            -- slug, e.g. 'post-punk'
    name       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE artist (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    country    text,
    bio        text,                        -- may be large: TOAST
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE album (
    id           uuid PRIMARY KEY,
    title        text NOT NULL,
    artist_id    uuid NOT NULL REFERENCES artist(id),
    release_year int,
    cover_key    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX album_artist_idx ON album(artist_id);

CREATE TABLE track (
    id           uuid PRIMARY KEY,
    title        text NOT NULL,
    album_id     uuid REFERENCES album(id),
    genre_id     text REFERENCES genre(id),
    position     int,
    duration_ms  int,
    explicit     boolean NOT NULL DEFAULT false,
    lyrics       text,                      -- may be large: TOAST
    popularity   bigint NOT NULL DEFAULT 0,
    state        text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'published', 'unpublished')),
    published_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX track_album_idx ON track(album_id);

CREATE TABLE track_artist (
    track_id  uuid NOT NULL REFERENCES track(id) ON DELETE CASCADE,
    artist_id uuid NOT NULL REFERENCES artist(id),
    position  int NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, artist_id)
);
CREATE INDEX track_artist_artist_idx ON track_artist(artist_id);

-- One row per stored rendition of a track's audio (HLS playlist root, whole files).
CREATE TABLE track_rendition (
    track_id    uuid NOT NULL REFERENCES track(id) ON DELETE CASCADE,
    kind        text NOT NULL,              -- e.g. 'hls-aac-128', 'hls-aac-256', 'mp3-320', 'flac'
    storage_key text NOT NULL,              -- S3 key (for HLS: the playlist key; segments share its prefix)
    premium     boolean NOT NULL DEFAULT false,
    bytes       bigint,
    PRIMARY KEY (track_id, kind)
);

-- +goose Down
DROP TABLE track_rendition;
DROP TABLE track_artist;
DROP TABLE track;
DROP TABLE album;
DROP TABLE artist;
DROP TABLE genre;
