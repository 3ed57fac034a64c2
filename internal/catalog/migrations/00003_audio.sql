-- +goose Up
-- What ingestion (internal/ingest) learns about a track's audio, and the
-- codec and bit rate of each rendition. Loudness is measured, never applied:
-- players apply replay_gain_db (ReplayGain 2.0 style, reference -18 LUFS).
ALTER TABLE track
    ADD COLUMN isrc             text,
    ADD COLUMN loudness_lufs    double precision,
    ADD COLUMN loudness_range   double precision,
    ADD COLUMN true_peak_dbtp   double precision,
    ADD COLUMN replay_gain_db   double precision,
    ADD COLUMN cover_key        text,
    ADD COLUMN peaks_key        text,
    ADD COLUMN source_object    text;            -- s3://bucket/key#etag of the upload it was made from
ALTER TABLE track_rendition
    ADD COLUMN codec   text,                     -- RFC 6381, e.g. 'mp4a.40.2', 'fLaC'
    ADD COLUMN bitrate int;                      -- bits per second

-- +goose Down
ALTER TABLE track_rendition DROP COLUMN codec, DROP COLUMN bitrate;
ALTER TABLE track DROP COLUMN isrc, DROP COLUMN loudness_lufs, DROP COLUMN loudness_range, DROP COLUMN true_peak_dbtp,
    DROP COLUMN replay_gain_db, DROP COLUMN cover_key, DROP COLUMN peaks_key, DROP COLUMN source_object;
