package media

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Floors that keep every Loudness field finite (JSON and most columns have
// no -Inf): silence measures -inf everywhere.
const (
	silenceLUFS = -70.0  // the EBU R128 absolute gate: nothing quieter is measured
	silenceDBTP = -144.0 // below the quietest 24-bit sample
)

// loudnormArgs measures without changing anything: the filter's output is
// thrown away (anullsink) and only the JSON it prints when it closes is read.
// I, TP and LRA are targets for a second (normalising) pass that Overture
// never runs; they do not change the input_* figures.
const loudnormArgs = "loudnorm=I=-18:TP=-1:LRA=11:print_format=json"

// parseLoudnorm finds the JSON object loudnorm prints to stderr when it
// closes (after its "[Parsed_loudnorm_N @ 0x…]" line) and converts the
// input_* figures. The last object wins: it is printed once, at the end.
func parseLoudnorm(stderr string) (Loudness, error) {
	i := strings.LastIndex(stderr, `"input_i"`)
	if i < 0 {
		return Loudness{}, fmt.Errorf("no loudnorm measurement in ffmpeg output")
	}
	start := strings.LastIndex(stderr[:i], "{")
	end := strings.Index(stderr[i:], "}")
	if start < 0 || end < 0 {
		return Loudness{}, fmt.Errorf("unterminated loudnorm measurement in ffmpeg output")
	}
	var raw map[string]string
	if err := json.Unmarshal([]byte(stderr[start:i+end+1]), &raw); err != nil {
		return Loudness{}, fmt.Errorf("decoding loudnorm measurement: %w", err)
	}
	num := func(key string, floor float64) (float64, error) {
		s, ok := raw[key]
		if !ok {
			return 0, fmt.Errorf("loudnorm measurement has no %s", key)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, fmt.Errorf("loudnorm %s: %w", key, err)
		}
		if math.IsNaN(f) || f < floor {
			return floor, nil
		}
		if math.IsInf(f, 1) {
			return 0, fmt.Errorf("loudnorm %s is %s", key, s)
		}
		return f, nil
	}
	var l Loudness
	var err error
	if l.IntegratedLUFS, err = num("input_i", silenceLUFS); err != nil {
		return Loudness{}, err
	}
	if l.TruePeakDBTP, err = num("input_tp", silenceDBTP); err != nil {
		return Loudness{}, err
	}
	if l.RangeLU, err = num("input_lra", 0); err != nil {
		return Loudness{}, err
	}
	if l.ThresholdLUFS, err = num("input_thresh", silenceLUFS); err != nil {
		return Loudness{}, err
	}
	if l.IntegratedLUFS > silenceLUFS {
		l.GainDB = math.Round((ReferenceLUFS-l.IntegratedLUFS)*100) / 100
	}
	return l, nil
}
