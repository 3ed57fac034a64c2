package recommend

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// ALSConfig tunes implicit-feedback matrix factorisation.
type ALSConfig struct {
	// Factors is the latent dimension.
	Factors int
	// Iterations is how many user-then-item sweeps run.
	Iterations int
	// Alpha scales a weight into confidence: c = 1 + Alpha·|weight|.
	Alpha float64
	// Lambda is the L2 regularisation.
	Lambda float64
	// CGSteps is how many conjugate-gradient steps solve each row, warm
	// started from the previous sweep (3 is what Takács et al. found
	// enough).
	CGSteps int
	// Seed makes the random initial factors, and so the model, repeatable.
	Seed uint64
	// Workers is how many goroutines solve rows.
	Workers int
}

// DefaultALS is what the recompute uses: 32 factors, 15 sweeps, α 5, λ 1 —
// the best of a small grid on the planted data, and on MovieLens-100K as
// well (docs/recommendations.md).
func DefaultALS(workers int) ALSConfig {
	return ALSConfig{Factors: 32, Iterations: 15, Alpha: 5, Lambda: 1, CGSteps: 3, Seed: 1, Workers: workers}
}

// ALS is a trained factorisation: listener u's score of track i is
// X[u]·Y[i].
type ALS struct {
	F    int
	X, Y []float32 // rows × F, row-major
	// yt is Y transposed (F × tracks): scoring a listener is then F axpys
	// over the whole catalogue, three times faster than a dot product per
	// track at F = 32.
	yt []float32
}

// TrainALS factorises the listener × track matrix r (Hu, Koren, Volinsky
// 2008): a positive weight v is a preference of 1 held with confidence
// 1 + α·v; a negative one (mostly skipped) a preference of 0 held with
// confidence 1 + α·|v|; every other cell a preference of 0 with confidence
// 1. Each sweep solves every listener's factors given the tracks', then every
// track's given the listeners', by a few conjugate-gradient steps on the
// normal equations (YᵀY + Yᵀ(Cu − I)Y + λI)x = YᵀCu·p(u), with YᵀY computed
// once per sweep so a row costs O(nnz(u)·F + F²) per step. It stops early
// with ctx's error.
func TrainALS(ctx context.Context, r *Matrix, cfg ALSConfig) (*ALS, error) {
	f := cfg.Factors
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x0f7e5c0de))
	x, y := make([]float64, r.Rows*f), make([]float64, r.NCols*f)
	for k := range x {
		x[k] = 0.01 * rng.NormFloat64()
	}
	for k := range y {
		y[k] = 0.01 * rng.NormFloat64()
	}
	rt := r.Transpose()
	for it := 0; it < cfg.Iterations; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		solveRows(r, x, y, cfg)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		solveRows(rt, y, x, cfg)
	}
	m := &ALS{F: f, X: make([]float32, len(x)), Y: make([]float32, len(y))}
	for k, v := range x {
		m.X[k] = float32(v)
	}
	for k, v := range y {
		m.Y[k] = float32(v)
	}
	n := r.NCols
	m.yt = make([]float32, len(y))
	for i := 0; i < n; i++ {
		for d := 0; d < f; d++ {
			m.yt[d*n+i] = m.Y[i*f+d]
		}
	}
	return m, nil
}

// gram returns YᵀY + λI (F × F) of the rows × F matrix y.
func gram(y []float64, rows, f int, lambda float64) blas64.General {
	g := blas64.General{Rows: f, Cols: f, Stride: f, Data: make([]float64, f*f)}
	a := blas64.General{Rows: rows, Cols: f, Stride: f, Data: y}
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, a, a, 0, g)
	for d := 0; d < f; d++ {
		g.Data[d*f+d] += lambda
	}
	return g
}

// solveRows updates every row of x (one per row of r) given the fixed
// factors y of r's columns.
func solveRows(r *Matrix, x, y []float64, cfg ALSConfig) {
	f := cfg.Factors
	g := gram(y, r.NCols, f, cfg.Lambda)
	parallel(r.Rows, cfg.Workers, func(lo, hi int) {
		res := make([]float64, f)
		dir := make([]float64, f)
		ap := make([]float64, f)
		vec := func(v []float64) blas64.Vector { return blas64.Vector{N: f, Inc: 1, Data: v} }
		for u := lo; u < hi; u++ {
			cols, vals := r.Row(u)
			xu := x[u*f : (u+1)*f]
			// res = b − A·x with A = G + Σ (c−1) y yᵀ and b = Σ c·p·y
			blas64.Gemv(blas.NoTrans, -1, g, vec(xu), 0, vec(res))
			for k, c := range cols {
				yi := y[int(c)*f : (int(c)+1)*f]
				conf, pref := confidence(vals[k], cfg.Alpha)
				floats.AddScaled(res, conf*pref-(conf-1)*floats.Dot(yi, xu), yi)
			}
			copy(dir, res)
			rs := floats.Dot(res, res)
			for step := 0; step < cfg.CGSteps && rs > 1e-20; step++ {
				blas64.Gemv(blas.NoTrans, 1, g, vec(dir), 0, vec(ap))
				for k, c := range cols {
					yi := y[int(c)*f : (int(c)+1)*f]
					conf, _ := confidence(vals[k], cfg.Alpha)
					floats.AddScaled(ap, (conf-1)*floats.Dot(yi, dir), yi)
				}
				denom := floats.Dot(dir, ap)
				if denom <= 0 {
					break
				}
				a := rs / denom
				floats.AddScaled(xu, a, dir)
				floats.AddScaled(res, -a, ap)
				rsNew := floats.Dot(res, res)
				floats.AddScaledTo(dir, res, rsNew/rs, dir)
				rs = rsNew
			}
		}
	})
}

func confidence(v float32, alpha float64) (conf, pref float64) {
	if v > 0 {
		return 1 + alpha*float64(v), 1
	}
	return 1 + alpha*math.Abs(float64(v)), 0
}

// Name implements [Model].
func (m *ALS) Name() string { return "als" }

// Scores implements [Model].
func (m *ALS) Scores(u int, dst []float32) {
	if (u+1)*m.F > len(m.X) {
		return
	}
	n := len(m.Y) / m.F
	blas32.Gemv(blas.Trans, 1, blas32.General{Rows: m.F, Cols: n, Stride: n, Data: m.yt}, blas32.Vector{N: m.F, Inc: 1, Data: m.X[u*m.F : (u+1)*m.F]}, 0, blas32.Vector{N: n, Inc: 1, Data: dst})
}

// Bytes is the memory the factors take.
func (m *ALS) Bytes() int64 { return int64(len(m.X)+len(m.Y)+len(m.yt)) * 4 }

// TrackFactors is the track side of a trained factorisation: what scoring a
// listener the recompute did not train needs (issue 14's per-listener
// refresh). Folding a listener in solves their factors against the fixed
// track factors, as one user step of a sweep does, so it costs
// O(nnz·F² + F³ + tracks·F) and trains nothing.
type TrackFactors struct {
	F             int
	Y             []float32 // tracks × F, row-major
	Alpha, Lambda float64
	gram          *mat.SymDense // YᵀY + λI
	yt            []float32
}

// NewTrackFactors prepares y (tracks × f, row-major) for folding in: YᵀY
// and the transpose are computed once.
func NewTrackFactors(f int, y []float32, alpha, lambda float64) (*TrackFactors, error) {
	if f <= 0 || len(y)%f != 0 {
		return nil, fmt.Errorf("track factors: %d values are not tracks × %d factors", len(y), f)
	}
	n := len(y) / f
	t := &TrackFactors{F: f, Y: y, Alpha: alpha, Lambda: lambda, yt: make([]float32, len(y))}
	y64 := make([]float64, len(y))
	for k, v := range y {
		y64[k] = float64(v)
	}
	g := gram(y64, n, f, lambda)
	t.gram = mat.NewSymDense(f, g.Data)
	for i := 0; i < n; i++ {
		for d := 0; d < f; d++ {
			t.yt[d*n+i] = y[i*f+d]
		}
	}
	return t, nil
}

// Tracks is the number of tracks.
func (t *TrackFactors) Tracks() int { return len(t.Y) / t.F }

// Bytes is the memory the factors take.
func (t *TrackFactors) Bytes() int64 { return int64(len(t.Y)+len(t.yt))*4 + int64(t.F*t.F)*8 }

// FoldIn solves one listener's factors from their row (tracks cols, ALS
// weights vals: positive listened, negative mostly skipped), exactly: the
// normal equations (YᵀY + λI + Yᵀ(Cu − I)Y)x = YᵀCu·p(u) by Cholesky.
func (t *TrackFactors) FoldIn(cols []int32, vals []float32) ([]float32, error) {
	f := t.F
	a := mat.NewSymDense(f, nil)
	a.CopySym(t.gram)
	b := mat.NewVecDense(f, nil)
	yi := make([]float64, f)
	for k, c := range cols {
		for d := 0; d < f; d++ {
			yi[d] = float64(t.Y[int(c)*f+d])
		}
		conf, pref := confidence(vals[k], t.Alpha)
		v := mat.NewVecDense(f, yi)
		a.SymRankOne(a, conf-1, v)
		b.AddScaledVec(b, conf*pref, v)
	}
	var ch mat.Cholesky
	if !ch.Factorize(a) {
		return nil, fmt.Errorf("track factors: the listener's system is not positive definite")
	}
	var x mat.VecDense
	if err := ch.SolveVecTo(&x, b); err != nil {
		return nil, fmt.Errorf("track factors: solving a listener's factors: %w", err)
	}
	out := make([]float32, f)
	for d := range out {
		out[d] = float32(x.AtVec(d))
	}
	return out, nil
}

// Scores writes the score x·Y[i] of every track into dst.
func (t *TrackFactors) Scores(x []float32, dst []float32) {
	n := t.Tracks()
	blas32.Gemv(blas.Trans, 1, blas32.General{Rows: t.F, Cols: n, Stride: n, Data: t.yt}, blas32.Vector{N: t.F, Inc: 1, Data: x}, 0, blas32.Vector{N: n, Inc: 1, Data: dst})
}
