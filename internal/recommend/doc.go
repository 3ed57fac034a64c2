// Package recommend turns listens into recommendations and proves, offline,
// that they are better than showing everyone the charts.
//
// Recommendations are computed ahead of the request that shows them (issue
// 14): a batch job reads the listening statistics, builds an interaction
// matrix, trains the models and stores every listener's results. This
// package is that computation, kept free of storage and transport so that
// the same code runs in the recompute function, the offline evaluation and
// the benchmark.
//
// # Interactions
//
// [Builder] folds listens into a sparse listener × track matrix ([Matrix],
// compressed sparse rows with int32 column indices and float32 values: 10
// million listens by 100,000 listeners over 50,000 tracks is a few hundred
// MB). The counting rules are the statistics' ones, whose flags
// the statistics store keeps with every listen: a scrobble (played at least
// half the track or four minutes) adds one, a skip
// that did not reach a scrobble subtracts [Weighting.Skip] (a weak negative),
// anything else (a stream that was neither) adds nothing. Every contribution
// is decayed by its age with a half-life, so last month's taste weighs more
// than last year's.
//
// # Models
//
//   - [Popularity]: the recency-weighted charts of the training window, the
//     same list for everyone; the baseline every other model must beat.
//   - [Cooccurrence]: item-item cosine similarity over listeners, the top k
//     neighbours kept per item; a listener's score for a track is the sum of
//     its similarities to what they played, so every recommendation has a
//     "because you listened to X" ([Cooccurrence.Because]). Trained over
//     tracks, or over artists ([ArtistCooccurrence]), which scores a track by
//     its artist's similarity to the artists the listener plays.
//   - [ALS]: implicit-feedback matrix factorisation (Hu, Koren, Volinsky 2008:
//     confidence 1 + α·weight; skips are observed zeros with confidence)
//     solved by alternating least squares with a few conjugate-gradient steps
//     per row (Takács, Pilászy, Tikk 2011), parallel over workers.
//
// Every model is deterministic for a given input and seed: ties are broken by
// index and parallel work writes disjoint rows.
//
// # Evaluation
//
// [Split] divides listens by time (train before a cutoff, test in the window
// after it); [Evaluate] ranks the whole catalogue for every test listener,
// without the tracks they played in training, and reports precision@10,
// recall@50, NDCG@10 and catalogue coverage. docs/recommendations.md has the
// figures on planted data and on MovieLens-100K.
package recommend
