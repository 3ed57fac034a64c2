package media

import (
	"math"
	"strings"
	"testing"
)

func FuzzParseLoudnorm(f *testing.F) {
	f.Add("[Parsed_loudnorm_0 @ 0x1] [info] \n{\n\t\"input_i\" : \"-19.05\",\n\t\"input_tp\" : \"-inf\",\n\t\"input_lra\" : \"0.00\",\n\t\"input_thresh\" : \"-29.05\"\n}\n")
	f.Add(`{"input_i":"nan","input_tp":"1e400","input_lra":"-0","input_thresh":"x"}`)
	f.Add(`}"input_i"{`)
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseLoudnorm(s)
		if err != nil {
			return
		}
		for _, v := range []float64{l.IntegratedLUFS, l.RangeLU, l.TruePeakDBTP, l.ThresholdLUFS, l.GainDB} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite figure in %+v from %q", l, s)
			}
		}
		if l.IntegratedLUFS < silenceLUFS || l.TruePeakDBTP < silenceDBTP {
			t.Fatalf("below the floors: %+v", l)
		}
	})
}

func FuzzProbe(f *testing.F) {
	f.Add([]byte(`{"streams":[{"index":0,"codec_name":"flac","codec_type":"audio","sample_rate":"44100","channels":2,"bits_per_raw_sample":"24","duration":"7.000000"},{"index":1,"codec_name":"mjpeg","codec_type":"video","disposition":{"attached_pic":1},"width":320,"height":240}],"format":{"format_name":"flac","duration":"7.0","bit_rate":"900000","tags":{"ARTIST":"A;B","TRACK":"1/2","DATE":"1999"}}}`))
	f.Add([]byte(`{"streams":[{"codec_type":"video","codec_name":"h264"}],"format":{"format_name":"mov,mp4"}}`))
	f.Add([]byte(`{"streams":[],"format":{}}`))
	f.Add([]byte(`{"streams":[{"codec_type":"audio","codec_name":"mp3","duration":"-1e999","sample_rate":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := parseProbe(b)
		if err != nil {
			return
		}
		pr, err := interpret(out)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if pr.probe.Duration < 0 || pr.probe.SampleRate < 0 || pr.probe.BitDepth < 0 {
			t.Fatalf("negative figure: %+v", pr.probe)
		}
		if pr.audio < 0 {
			t.Fatal("accepted without an audio stream")
		}
		if !pr.probe.Lossless && pr.probe.BitDepth != 0 {
			t.Fatalf("bit depth on a lossy codec: %+v", pr.probe)
		}
	})
}

func FuzzSplitArtists(f *testing.F) {
	for _, s := range []string{"AC/DC", "A; B", "A / B feat. C", "A (ft. B)", "Simon & Garfunkel", ";;", " / ", "feat."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seen := map[string]bool{}
		for _, a := range SplitArtists(s) {
			if a == "" || a != strings.TrimSpace(a) {
				t.Fatalf("untrimmed or empty name %q from %q", a, s)
			}
			if strings.Contains(a, ";") {
				t.Fatalf("%q still holds a separator (from %q)", a, s)
			}
			if seen[a] {
				t.Fatalf("duplicate %q from %q", a, s)
			}
			seen[a] = true
		}
		if !strings.Contains(s, ";") && !strings.Contains(s, "/") && !strings.ContainsAny(strings.ToLower(s), "f") {
			if got := SplitArtists(s); len(got) > 1 {
				t.Fatalf("split %q without a separator: %q", s, got)
			}
		}
	})
}
